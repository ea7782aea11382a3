package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	shop "github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/credentials"
)

// The tests below run the data images the way the operator's pods do, from
// the tarballs in $SHOPSTACK_IMAGES (a -out directory), without a cluster:
// the layer is unpacked into a directory, the pod's volumes are files in it,
// and the containers' commands run there under chroot as uid 999. They need
// root and are skipped otherwise:
//
//	go run ./hack/images -out /tmp/images postgres redis
//	SHOPSTACK_IMAGES=/tmp/images go test ./hack/images -run Data -v

func imagesDir(t *testing.T, file string) string {
	t.Helper()
	dir := os.Getenv("SHOPSTACK_IMAGES")
	if dir == "" {
		t.Skip("SHOPSTACK_IMAGES is not set")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for chroot")
	}
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	return path
}

// rootfs unpacks the image into a fresh directory and returns it with the
// image's environment. It adds the few device nodes a runtime would, and
// mounts /proc until the test ends.
func rootfs(t *testing.T, path, ref string) (string, []string) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "shopstack-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	t.Cleanup(func() {
		if mounted {
			if err := syscall.Unmount(filepath.Join(dir, "proc"), syscall.MNT_DETACH); err != nil {
				t.Errorf("unmounting %s/proc: %v; leaving %s", dir, err, dir)
				return
			}
		}
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	untar := exec.Command("tar", "--numeric-owner", "-xpf", "-", "-C", dir)
	untar.Stdin = rc
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v: %s", ref, err, out)
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"random", 1, 8}, {"urandom", 1, 9}} {
		p := filepath.Join(dir, "dev", d.name)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int((d.major<<8)|d.minor)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	// What runc adds besides: /proc, and /dev/fd and friends (bash's
	// process substitution needs them).
	for link, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dir, "dev", link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("proc", filepath.Join(dir, "proc"), "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		t.Fatal(err)
	}
	mounted = true
	shm := filepath.Join(dir, "dev", "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shm, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir, cf.Config.Env
}

// put writes a file into the root filesystem, creating its directory.
func put(t *testing.T, root, path string, mode os.FileMode, uid, gid int, data []byte) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// secretDir writes a Secret volume: owned by root, group 999 (fsGroup),
// mode 0440 (the operator's defaultMode).
func secretDir(t *testing.T, root, dir string, data map[string][]byte) {
	for k, v := range data {
		put(t, root, dir+"/"+k, 0o440, 0, 999, v)
	}
}

// podEnv is the container's environment: the image's, then the pod's
// (which win), then what the kubelet adds.
func podEnv(image []string, c corev1.Container, hostname string) []string {
	env := append([]string{}, image...)
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	return append(env, "HOSTNAME="+hostname)
}

// inRoot is a command in the root filesystem as uid 999 with exactly env.
func inRoot(root string, env []string, args ...string) *exec.Cmd {
	full := append([]string{"--userspec=999:999", root, "/usr/bin/env", "-i"}, env...)
	return exec.Command("chroot", append(full, args...)...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a long-running command; stop sends sig and waits.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v after %v:\n%s", p.cmd.Args[len(p.cmd.Args)-1], err, sig, p.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after %v:\n%s", sig, p.out)
	}
}

// waitFor runs check until it succeeds, failing the test if the process
// exits first or a minute passes.
func (p *process) waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case exit := <-p.done:
			p.done <- exit
			t.Fatalf("exited (%v) before %s:\n%s", exit, what, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute (%v):\n%s", what, err, p.out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func output(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testTLS is a CA and a certificate for 127.0.0.1 it signed, usable by
// servers and clients, as the tls volume holds them.
func testTLS(t *testing.T) map[string][]byte {
	t.Helper()
	key := func() (*ecdsa.PrivateKey, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	certPEM := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	now := time.Now()
	caKey, _ := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, srvKeyPEM := key()
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"ca.crt": certPEM(caDER), "tls.crt": certPEM(srvDER), "tls.key": srvKeyPEM}
}

var testShop = &shopv1.Shop{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "default"}}

// TestDataPostgres starts the first instance of the operator's Postgres
// StatefulSet: its start script, the image's entrypoint creating the
// cluster and running the operator's init script, then the server with TLS.
// It connects as each service over TLS, then restarts on the same data.
func TestDataPostgres(t *testing.T) {
	tarPath := imagesDir(t, "postgres.tar")
	root, imageEnv := rootfs(t, tarPath, postgresImage().ref)

	sts := shop.PostgresStatefulSet(testShop)
	c := sts.Spec.Template.Spec.Containers[0]
	cm := shop.PostgresConfigMap(testShop)
	creds, err := credentials.Generate(shop.CredPostgres)
	if err != nil {
		t.Fatal(err)
	}
	secretDir(t, root, shop.MountTLS, testTLS(t))
	secretDir(t, root, "/etc/shopstack/credentials", creds)
	for k, v := range cm.Data {
		put(t, root, "/etc/shopstack/postgres-config/"+k, 0o555, 0, 999, []byte(v))
	}
	put(t, root, "/docker-entrypoint-initdb.d/10-shopstack.sh", 0o555, 0, 999, []byte(cm.Data["10-shopstack.sh"]))
	// More init files of each kind the entrypoint runs.
	put(t, root, "/docker-entrypoint-initdb.d/20-sourced.sh", 0o444, 0, 0,
		[]byte(`psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c 'CREATE TABLE sourced (x int)'`+"\n"))
	put(t, root, "/docker-entrypoint-initdb.d/30-plain.sql", 0o444, 0, 0, []byte("CREATE TABLE plain (x int);\n"))

	port := freePort(t)
	args := []string{}
	for _, a := range c.Args {
		args = append(args, strings.Replace(a, "listen_addresses=*", "listen_addresses=127.0.0.1", 1))
	}
	args = append(args, "-c", fmt.Sprintf("port=%d", port))
	env := podEnv(imageEnv, c, "shop-postgres-0")
	cmdline := append(append([]string{}, c.Command...), args...)

	ready := func() error {
		// The pod's probe, on the test's port.
		_, err := output(inRoot(root, imageEnv, append(c.StartupProbe.Exec.Command, "--port", fmt.Sprint(port))...))
		return err
	}
	query := func(user, db, sql string) (string, error) {
		conn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s/ca.crt", port, user, db, shop.MountTLS)
		return output(inRoot(root, append(imageEnv, "PGPASSWORD="+string(creds[user])), "psql", conn, "-XtAc", sql))
	}

	t0 := time.Now()
	pg := start(t, inRoot(root, env, cmdline...))
	pg.waitFor(t, "ready server", ready)
	t.Logf("first start (initdb, init scripts, server) ready in %s", time.Since(t0).Round(time.Millisecond))

	for _, svc := range []string{"user", "order", "payment", "inventory"} {
		got, err := query(svc, svc, "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		if err != nil || got != svc+" true" {
			t.Errorf("as %s over TLS: %q, %v", svc, got, err)
		}
	}
	// The superuser over the socket with peer authentication, as the init script does.
	local := func(sql string) (string, error) {
		return output(inRoot(root, imageEnv, "psql", "-h", "/var/run/postgresql", "-p", fmt.Sprint(port), "-U", "postgres", "-d", "postgres", "-XtAc", sql))
	}
	checks := map[string]string{
		"SELECT current_setting('data_checksums')":                                                  "on",
		"SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'postgres'":          "UTF8",
		"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate": "inventory,order,payment,postgres,user",
		"SELECT count(*) FROM pg_tables WHERE tablename IN ('sourced', 'plain')":                    "2",
		"SELECT pg_has_role('operator', 'pg_monitor', 'MEMBER')":                                    "t",
		"SELECT rolreplication FROM pg_roles WHERE rolname = 'replication'":                         "t",
		"SELECT split_part(version(), ' ', 2)":                                                      "",
	}
	for sql, want := range checks {
		got, err := local(sql)
		if err != nil || (want != "" && got != want) {
			t.Errorf("%s: got %q, %v; want %q", sql, got, err, want)
		}
		if want == "" {
			t.Logf("server version %s", got)
		}
	}
	// Only TLS from the network.
	if _, err := output(inRoot(root, append(imageEnv, "PGPASSWORD="+string(creds["user"])), "psql",
		fmt.Sprintf("host=127.0.0.1 port=%d user=user dbname=user sslmode=disable", port), "-XtAc", "SELECT 1")); err == nil {
		t.Error("a connection without TLS was accepted")
	}
	pg.stop(t, syscall.SIGINT)
	if testing.Verbose() {
		t.Logf("first start:\n%s", pg.out)
	}
	if !strings.Contains(pg.out.String(), "running /docker-entrypoint-initdb.d/10-shopstack.sh") {
		t.Errorf("the init script did not run:\n%s", pg.out)
	}

	// Second start: the cluster exists, nothing is initialised again.
	t0 = time.Now()
	pg = start(t, inRoot(root, env, cmdline...))
	pg.waitFor(t, "ready server after restart", ready)
	t.Logf("restart ready in %s", time.Since(t0).Round(time.Millisecond))
	if got, err := query("order", "order", "SELECT 'again'"); err != nil || got != "again" {
		t.Errorf("after restart: %q, %v", got, err)
	}
	pg.stop(t, syscall.SIGINT)
	if strings.Contains(pg.out.String(), "creating a cluster") {
		t.Errorf("initialised again on restart:\n%s", pg.out)
	}
}

// TestDataRedis runs the operator's Redis pod: the configure init container,
// then redis-server and redis-sentinel with TLS and the ACL file, and the
// image's entrypoint on its own.
func TestDataRedis(t *testing.T) {
	tarPath := imagesDir(t, "redis.tar")
	root, imageEnv := rootfs(t, tarPath, redisImage().ref)

	sts := shop.RedisStatefulSet(testShop)
	pod := sts.Spec.Template.Spec
	configure, server, sentinel := pod.InitContainers[0], pod.Containers[0], pod.Containers[1]
	creds, err := credentials.Generate(shop.CredRedis)
	if err != nil {
		t.Fatal(err)
	}
	secretDir(t, root, shop.MountTLS, testTLS(t))
	secretDir(t, root, "/etc/shopstack/credentials", creds)
	for k, v := range shop.RedisConfigMap(testShop).Data {
		put(t, root, "/etc/shopstack/redis-scripts/"+k, 0o555, 0, 999, []byte(v))
	}
	conf := filepath.Join(root, "etc/shopstack/redis-conf")
	if err := os.MkdirAll(conf, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o777); err != nil {
		t.Fatal(err)
	}

	hostname := "shop-redis-0"
	if out, err := output(inRoot(root, podEnv(imageEnv, configure, hostname), configure.Command...)); err != nil {
		t.Fatalf("configure: %v %s", err, out)
	}
	// The test's ports, and the master by address: its DNS name does not
	// resolve outside a cluster.
	port, sport := freePort(t), freePort(t)
	master := fmt.Sprintf("%s.%s.%s.svc.cluster.local", hostname, shop.Name(testShop, shop.ComponentRedis), testShop.Namespace)
	rewrite := func(file string, pairs ...string) {
		data, err := os.ReadFile(filepath.Join(conf, file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("%s has no %q:\n%s", file, pairs[i], s)
			}
			s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
		}
		if err := os.WriteFile(filepath.Join(conf, file), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback only: the servers run on the host's network here.
	loopback := "bind 127.0.0.1\n"
	rewrite("redis.conf", "tls-port 6379", fmt.Sprintf("tls-port %d", port), "port 0\n", "port 0\n"+loopback)
	rewrite("sentinel.conf", "tls-port 26379", fmt.Sprintf("tls-port %d", sport),
		master+" 6379", fmt.Sprintf("127.0.0.1 %d", port), "port 0\n", "port 0\n"+loopback)

	cli := func(p int, args ...string) (string, error) {
		base := []string{"redis-cli", "--tls", "--cacert", shop.MountTLS + "/ca.crt",
			"--cert", shop.MountTLS + "/tls.crt", "--key", shop.MountTLS + "/tls.key",
			"-h", "127.0.0.1", "-p", fmt.Sprint(p), "--no-auth-warning"}
		return output(inRoot(root, imageEnv, append(base, args...)...))
	}
	listening := func(p int) func() error {
		return func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}
	}

	srv := start(t, inRoot(root, podEnv(imageEnv, server, hostname), server.Command...))
	srv.waitFor(t, "redis-server listening", listening(port))
	auth := []string{"--user", "order", "--pass", string(creds["order"])}
	if got, err := cli(port, append(auth, "PING")...); err != nil || got != "PONG" {
		t.Errorf("PING as order over TLS: %q, %v", got, err)
	}
	if got, err := cli(port, append(auth, "SET", "order:k", "v")...); err != nil || got != "OK" {
		t.Errorf("SET order:k: %q, %v", got, err)
	}
	if got, _ := cli(port, append(auth, "SET", "user:k", "v")...); !strings.Contains(got, "NOPERM") {
		t.Errorf("SET user:k as order: %q, want NOPERM", got)
	}

	sen := start(t, inRoot(root, podEnv(imageEnv, sentinel, hostname), sentinel.Command...))
	sen.waitFor(t, "redis-sentinel listening", listening(sport))
	sen.waitFor(t, "sentinel connected to the master", func() error {
		got, err := cli(sport, "SENTINEL", "master", shop.RedisMasterName)
		if err != nil {
			return err
		}
		if !strings.Contains(got, "flags\nmaster\n") {
			return fmt.Errorf("master: %s", got)
		}
		return nil
	})
	if got, err := cli(sport, "SENTINEL", "get-master-addr-by-name", shop.RedisMasterName); err != nil || got != fmt.Sprintf("127.0.0.1\n%d", port) {
		t.Errorf("get-master-addr-by-name: %q, %v", got, err)
	}
	sen.stop(t, syscall.SIGTERM)
	srv.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(root, "data/appendonlydir")); err != nil {
		t.Errorf("no append-only files in /data: %v", err)
	}

	// The entrypoint on its own: options go to redis-server.
	plain := freePort(t)
	ep := start(t, inRoot(root, imageEnv, "sh", "-c", fmt.Sprintf("cd /data && exec docker-entrypoint.sh --bind 127.0.0.1 --port %d --save ''", plain)))
	ep.waitFor(t, "redis-server from the entrypoint", listening(plain))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := exec.CommandContext(ctx, "chroot", "--userspec=999:999", root, "redis-cli", "-p", fmt.Sprint(plain), "PING").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "PONG" {
		t.Errorf("PING without TLS: %q, %v", got, err)
	}
	ep.stop(t, syscall.SIGTERM)
	if v, err := output(inRoot(root, imageEnv, "redis-server", "--version")); err == nil {
		t.Log(v)
	}
}
