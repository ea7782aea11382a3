package testenv

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"slices"

	"github.com/redis/go-redis/v9"
)

// The helpers below are the test helpers without a *testing.T, for programs
// that run the stack outside `go test` (a local launcher, a benchmark) and
// for TestMain functions. Their callers own the lifetime of what they start.

// NewCAOrError creates a certificate authority valid for a day.
func NewCAOrError() (*CA, error) { return newCA() }

// IssueOrError signs a certificate as Issue does.
func (ca *CA) IssueOrError(spec CertSpec) (*KeyPair, error) { return ca.issue(spec) }

// WriteTLSDir writes ca.crt and, when kp is not nil, tls.crt and tls.key
// into dir, which must exist: the layout of SHOPSTACK_TLS_DIR.
func (ca *CA) WriteTLSDir(dir string, kp *KeyPair) error { return ca.writeTLSDir(dir, kp) }

// FreePortOrError is FreePort without a test.
func FreePortOrError() (int, error) { return freePort() }

// NewRedis starts one TLS-only Redis server with the operator's ACL users in
// dir (which must exist and stays the caller's), as StartRedis does; the
// caller must Stop it. RedisOptions.Replicas is ignored.
func NewRedis(dir string, opts RedisOptions) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server not found on PATH: install the redis-server package")
	}
	ca := opts.CA
	if ca == nil {
		var err error
		if ca, err = newCA(); err != nil {
			return nil, err
		}
	}
	services := opts.Services
	if services == nil {
		services = DefaultRedisServices
	}
	admin, err := ca.issue(CertSpec{CommonName: "testenv"})
	if err != nil {
		return nil, err
	}
	r := &Redis{
		CA:         ca,
		MasterName: RedisMasterName,
		dir:        dir,
		passwords:  map[string]string{},
		admin:      admin,
		extra:      opts.Config,
		clients:    map[string]*redis.Client{},
		sentinels:  map[string]*redis.SentinelClient{},
	}
	for _, u := range append([]string{RedisReplicationUser, RedisSentinelUser}, services...) {
		r.passwords[u] = rand.Text()
	}
	server, err := ca.issue(CertSpec{CommonName: "127.0.0.1", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	if err := ca.writeTLSDir(r.dir, server); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.aclPath(), []byte(RedisACL(r.passwords, services)), 0o600); err != nil {
		return nil, err
	}
	if _, err := r.startServerProcess(""); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// Stop stops every server and Sentinel and closes the harness's clients. It
// is safe to call more than once.
func (r *Redis) Stop() {
	for _, s := range slices.Concat(r.Sentinels, r.Servers) {
		s.Stop()
	}
	r.closeClients()
}
