package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisMasterName is the name the Sentinels monitor the master under, as in
// the operator.
const RedisMasterName = "shopstack"

// RedisOptions tune a test Redis. The zero value is a working server.
type RedisOptions struct {
	// CA signs the servers' certificate; nil creates a new CA.
	CA *CA
	// Services get an ACL user each; nil means DefaultRedisServices.
	Services []string
	// Replicas is the number of replicas StartRedisWithSentinels starts
	// besides the master; 0 means 2.
	Replicas int
	// DownAfter is how long Sentinels wait before they call an unreachable
	// master down; 0 means one second.
	DownAfter time.Duration
	// Config lines are appended to every server's redis.conf.
	Config []string
}

// Redis is a running test deployment: one server, or a master with
// replicas and three Sentinels. Every port is TLS only; plain TCP is off.
type Redis struct {
	// CA signed the servers' certificate; use it to mint client certificates.
	CA *CA
	// MasterName is the name the Sentinels know the master by.
	MasterName string
	// Servers are the Redis servers; Servers[0] was the master at start.
	Servers []*RedisServer
	// Sentinels are empty for StartRedis.
	Sentinels []*RedisServer

	dir       string
	passwords map[string]string
	admin     *KeyPair
	extra     []string

	clientsMu sync.Mutex
	clients   map[string]*redis.Client
	sentinels map[string]*redis.SentinelClient
}

// RedisServer is one redis-server or Sentinel process.
type RedisServer struct {
	// Addr is 127.0.0.1:port (the TLS port).
	Addr string
	// Dir holds the server's configuration, data and log.
	Dir  string
	proc *process
	once sync.Once
}

// Running reports whether the process is still alive.
func (s *RedisServer) Running() bool { return !s.proc.exited() }

// Kill ends the process at once, as a crash or a lost node would.
func (s *RedisServer) Kill() { s.proc.kill() }

// Stop shuts the process down cleanly, or kills it after a grace period.
func (s *RedisServer) Stop() {
	s.once.Do(func() { s.proc.stop(5*time.Second, syscall.SIGTERM) })
}

// LogTail returns the last lines of the process's log.
func (s *RedisServer) LogTail(lines int) string { return s.proc.logTail(lines) }

// StartRedis starts one TLS-only Redis server with the operator's ACL users,
// stopped in t.Cleanup.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r := newRedis(t, opts)
	r.startServer(t, "")
	return r
}

// StartRedisWithSentinels starts a master, opts.Replicas replicas (2 by
// default) and three Sentinels monitoring them, all over TLS, and waits until
// every Sentinel knows the master, the replicas and the other Sentinels, so
// that a failover can start at once.
func StartRedisWithSentinels(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r := newRedis(t, opts)
	replicas := opts.Replicas
	if replicas == 0 {
		replicas = 2
	}
	master := r.startServer(t, "")
	for range replicas {
		r.startServer(t, master.Addr)
	}
	// Sentinels learn the replicas from the master's INFO, which they ask
	// for as soon as they connect and then only every ten seconds: start
	// them once the replicas are attached.
	for _, s := range r.Servers[1:] {
		waitFor(t, 20*time.Second, "replica "+s.Addr+" in sync", func(ctx context.Context) error {
			info, err := r.serverClient(s.Addr).Info(ctx, "replication").Result()
			if err == nil && !strings.Contains(info, "master_link_status:up") {
				err = errors.New("master link down")
			}
			return err
		})
	}
	downAfter := opts.DownAfter
	if downAfter == 0 {
		downAfter = time.Second
	}
	for range 3 {
		r.startSentinel(t, master.Addr, downAfter)
	}
	for _, s := range r.Sentinels {
		waitFor(t, 30*time.Second, "sentinel "+s.Addr+" to see the deployment", func(ctx context.Context) error {
			m, err := r.sentinelClient(s.Addr).Master(ctx, r.MasterName).Result()
			if err != nil {
				return err
			}
			if m["flags"] != "master" || m["num-other-sentinels"] != "2" || m["num-slaves"] != strconv.Itoa(replicas) {
				return fmt.Errorf("flags=%s sentinels=%s replicas=%s", m["flags"], m["num-other-sentinels"], m["num-slaves"])
			}
			return nil
		})
	}
	return r
}

func newRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	skipShort(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found on PATH: install the redis-server package")
	}
	ca := opts.CA
	if ca == nil {
		ca = NewCA(t)
	}
	services := opts.Services
	if services == nil {
		services = DefaultRedisServices
	}
	r := &Redis{
		CA:         ca,
		MasterName: RedisMasterName,
		dir:        t.TempDir(),
		passwords:  map[string]string{},
		admin:      ca.ClientCert(t, "testenv"),
		extra:      opts.Config,
		clients:    map[string]*redis.Client{},
		sentinels:  map[string]*redis.SentinelClient{},
	}
	for _, u := range append([]string{RedisReplicationUser, RedisSentinelUser}, services...) {
		r.passwords[u] = rand.Text()
	}
	server := ca.ServerCert(t, "127.0.0.1", "localhost")
	if err := ca.writeTLSDir(r.dir, server); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.aclPath(), []byte(RedisACL(r.passwords, services)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range slices.Concat(r.Sentinels, r.Servers) {
			if t.Failed() {
				t.Logf("%s log (last lines):\n%s", s.Addr, s.LogTail(25))
			}
			s.Stop()
		}
		r.closeClients()
	})
	return r
}

func (r *Redis) aclPath() string { return filepath.Join(r.dir, "users.acl") }

// tlsConf is common to servers and Sentinels: TLS only (port 0), every
// connection between them over TLS with the shared server certificate.
func (r *Redis) tlsConf(port int) string {
	return fmt.Sprintf(`port 0
tls-port %d
bind 127.0.0.1
tls-cert-file %s
tls-key-file %s
tls-ca-cert-file %s
tls-replication yes
daemonize no
logfile ""
`, port, filepath.Join(r.dir, "tls.crt"), filepath.Join(r.dir, "tls.key"), filepath.Join(r.dir, "ca.crt"))
}

func (r *Redis) startServer(t testing.TB, replicaOf string) *RedisServer {
	t.Helper()
	s, err := r.startServerProcess(replicaOf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *Redis) startServerProcess(replicaOf string) (*RedisServer, error) {
	name := fmt.Sprintf("redis-%d", len(r.Servers))
	s, err := r.startProcess(name, false, func(port int, dir string) string {
		conf := r.tlsConf(port) + fmt.Sprintf(`tls-auth-clients optional
aclfile %s
dir %s
save ""
appendonly no
repl-diskless-sync-delay 0
replica-announce-ip 127.0.0.1
masteruser %s
masterauth %s
`, r.aclPath(), dir, RedisReplicationUser, r.passwords[RedisReplicationUser])
		if replicaOf != "" {
			host, port, _ := net.SplitHostPort(replicaOf)
			conf += "replicaof " + host + " " + port + "\n"
		}
		return conf
	}, func(ctx context.Context, addr string) error {
		return r.serverClient(addr).Ping(ctx).Err()
	})
	if err != nil {
		return nil, err
	}
	r.Servers = append(r.Servers, s)
	return s, nil
}

func (r *Redis) startSentinel(t testing.TB, master string, downAfter time.Duration) *RedisServer {
	t.Helper()
	name := fmt.Sprintf("sentinel-%d", len(r.Sentinels))
	host, mport, _ := net.SplitHostPort(master)
	s := r.start(t, name, true, func(port int, dir string) string {
		return r.tlsConf(port) + fmt.Sprintf(`tls-auth-clients yes
dir %[1]s
sentinel announce-ip 127.0.0.1
sentinel monitor %[2]s %[3]s %[4]s 2
sentinel auth-user %[2]s %[5]s
sentinel auth-pass %[2]s %[6]s
sentinel down-after-milliseconds %[2]s %[7]d
sentinel failover-timeout %[2]s 5000
sentinel parallel-syncs %[2]s 1
`, dir, r.MasterName, host, mport, RedisSentinelUser, r.passwords[RedisSentinelUser], downAfter.Milliseconds())
	}, func(ctx context.Context, addr string) error {
		return r.sentinelClient(addr).Ping(ctx).Err()
	})
	r.Sentinels = append(r.Sentinels, s)
	return s
}

// start runs one redis-server (or Sentinel) with the configuration conf
// renders for a port, retrying on a new port when the bind fails.
func (r *Redis) start(t testing.TB, name string, sentinel bool, conf func(port int, dir string) string, ping func(context.Context, string) error) *RedisServer {
	t.Helper()
	s, err := r.startProcess(name, sentinel, conf, ping)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startProcess is start without a test: it reports what went wrong instead.
func (r *Redis) startProcess(name string, sentinel bool, conf func(port int, dir string) string, ping func(context.Context, string) error) (*RedisServer, error) {
	dir := filepath.Join(r.dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "redis.conf")
	logPath := filepath.Join(dir, "redis.log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(confPath, []byte(conf(port, dir)+strings.Join(r.extraConfig(sentinel), "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		args := []string{confPath}
		if sentinel {
			args = append(args, "--sentinel")
		}
		proc, err := startProcess(name, exec.Command("redis-server", args...), logPath, nil)
		if err != nil {
			return nil, err
		}
		s := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, proc: proc}
		err = poll(10*time.Second, func(ctx context.Context) error {
			if proc.exited() {
				return errExited
			}
			return ping(ctx, s.Addr)
		})
		if err == nil {
			return s, nil
		}
		s.Stop()
		if !logContains(logPath, "Address already in use") || attempt == 3 {
			return nil, fmt.Errorf("starting %s: %v\n%s", name, err, tail(logPath, 25))
		}
	}
}

// extraConfig holds RedisOptions.Config; Sentinels get none of it.
func (r *Redis) extraConfig(sentinel bool) []string {
	if sentinel {
		return nil
	}
	return r.extra
}

// Addr is the address of the server that was the master at start.
func (r *Redis) Addr() string { return r.Servers[0].Addr }

// SentinelAddrs are the Sentinels' addresses.
func (r *Redis) SentinelAddrs() []string {
	addrs := make([]string, len(r.Sentinels))
	for i, s := range r.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// Password is the ACL password of user (a service, "replication" or
// "sentinel").
func (r *Redis) Password(user string) string { return r.passwords[user] }

// ServiceEnv writes the service's password to a file and returns the
// SHOPSTACK_REDIS_* variables the operator would give it: the Sentinels and
// master name when there are Sentinels, else SHOPSTACK_REDIS_ADDR. The TLS
// directory (SHOPSTACK_TLS_DIR) is the caller's: see CA.TLSDir.
func (r *Redis) ServiceEnv(t testing.TB, service string) map[string]string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(r.passwords[service]), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SHOPSTACK_REDIS_USER":          service,
		"SHOPSTACK_REDIS_PASSWORD_FILE": file,
	}
	if len(r.Sentinels) > 0 {
		env["SHOPSTACK_REDIS_SENTINELS"] = strings.Join(r.SentinelAddrs(), ",")
		env["SHOPSTACK_REDIS_MASTER_NAME"] = r.MasterName
	} else {
		env["SHOPSTACK_REDIS_ADDR"] = r.Addr()
	}
	return env
}

// MasterAddr asks the Sentinels for the current master (the first that
// answers wins); without Sentinels it is Addr.
func (r *Redis) MasterAddr(ctx context.Context) (string, error) {
	if len(r.Sentinels) == 0 {
		return r.Addr(), nil
	}
	var errs []error
	for _, s := range r.Sentinels {
		if !s.Running() {
			continue
		}
		hp, err := r.sentinelClient(s.Addr).GetMasterAddrByName(ctx, r.MasterName).Result()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no sentinel answered: %w", errors.Join(errs...))
}

// Server returns the server listening on addr, or nil.
func (r *Redis) Server(addr string) *RedisServer {
	for _, s := range r.Servers {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// KillMaster kills the current master's process and returns it.
func (r *Redis) KillMaster(t testing.TB) *RedisServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := r.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Server(addr)
	if s == nil {
		t.Fatalf("the master %s is not one of the servers", addr)
	}
	s.Kill()
	return s
}

// Failover asks a Sentinel for a manual failover (SENTINEL FAILOVER) and
// waits until a replica has taken over; it returns the new master's address.
func (r *Redis) Failover(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	old, err := r.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A Sentinel refuses while it judges no replica fit (NOGOODSLAVE) or
	// while another failover runs (INPROG): both pass.
	waitFor(t, 20*time.Second, "SENTINEL FAILOVER to be accepted", func(ctx context.Context) error {
		return r.sentinelClient(r.Sentinels[0].Addr).Failover(ctx, r.MasterName).Err()
	})
	return r.WaitForNewMaster(t, old, 30*time.Second)
}

// WaitForNewMaster waits until every running Sentinel names a master other
// than old and that server says it is a master; it returns its address.
func (r *Redis) WaitForNewMaster(t testing.TB, old string, timeout time.Duration) string {
	t.Helper()
	var addr string
	waitFor(t, timeout, "a new master to replace "+old, func(ctx context.Context) error {
		addr = ""
		for _, s := range r.Sentinels {
			if !s.Running() {
				continue
			}
			hp, err := r.sentinelClient(s.Addr).GetMasterAddrByName(ctx, r.MasterName).Result()
			if err != nil {
				return err
			}
			got := net.JoinHostPort(hp[0], hp[1])
			switch {
			case got == old:
				return fmt.Errorf("sentinel %s still names %s", s.Addr, old)
			case addr != "" && got != addr:
				return fmt.Errorf("sentinels disagree: %s and %s", addr, got)
			}
			addr = got
		}
		info, err := r.serverClient(addr).Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "role:master") {
			err = fmt.Errorf("%s is not a master yet", addr)
		}
		return err
	})
	return addr
}

// serverClient connects to a Redis server as the Sentinel's ACL user, the
// only non-service user allowed INFO and PING. Clients are kept per address
// for the harness's polling and closed in the cleanup.
func (r *Redis) serverClient(addr string) *redis.Client {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	c, ok := r.clients[addr]
	if !ok {
		c = redis.NewClient(r.options(addr, RedisSentinelUser, r.passwords[RedisSentinelUser]))
		r.clients[addr] = c
	}
	return c
}

// sentinelClient connects to a Sentinel, which needs a client certificate
// and no password.
func (r *Redis) sentinelClient(addr string) *redis.SentinelClient {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	c, ok := r.sentinels[addr]
	if !ok {
		c = redis.NewSentinelClient(r.options(addr, "", ""))
		r.sentinels[addr] = c
	}
	return c
}

func (r *Redis) closeClients() {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	for _, c := range r.clients {
		_ = c.Close()
	}
	for _, c := range r.sentinels {
		_ = c.Close()
	}
}

func (r *Redis) options(addr, user, password string) *redis.Options {
	return &redis.Options{
		Addr:     addr,
		Username: user,
		Password: password,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			RootCAs:      r.CA.Pool(),
			Certificates: []tls.Certificate{r.admin.TLS},
		},
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		MaxRetries:      -1,
		PoolSize:        2,
		DisableIdentity: true,
	}
}
