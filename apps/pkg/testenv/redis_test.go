package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// serviceClient connects as a service would: TLS with its own client
// certificate and its ACL user.
func serviceClient(t *testing.T, r *Redis, addr, user, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, Username: user, Password: password, MaxRetries: -1, DisableIdentity: true,
		TLSConfig: &tls.Config{RootCAs: r.CA.Pool(), Certificates: []tls.Certificate{r.CA.ClientCert(t, user).TLS}},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	r := StartRedis(t, RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	order := serviceClient(t, r, r.Addr(), "order", r.Password("order"))

	t.Run("a service reaches its own keys and channels", func(t *testing.T) {
		if err := order.Set(ctx, "order:1", "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := order.Publish(ctx, "order:events", "x").Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("and nothing else", func(t *testing.T) {
		for name, err := range map[string]error{
			"SET inventory:1":   order.Set(ctx, "inventory:1", "x", 0).Err(),
			"GET user:1":        order.Get(ctx, "user:1").Err(),
			"SET unprefixed":    order.Set(ctx, "orders", "x", 0).Err(),
			"PUBLISH user:ch":   order.Publish(ctx, "user:ch", "x").Err(),
			"FLUSHALL":          order.FlushAll(ctx).Err(),
			"CONFIG GET":        order.ConfigGet(ctx, "*").Err(),
			"KEYS (dangerous)":  order.Keys(ctx, "order:*").Err(),
			"ACL LIST (admin)":  order.Do(ctx, "ACL", "LIST").Err(),
			"SHUTDOWN (admin)":  order.Do(ctx, "SHUTDOWN").Err(),
			"REPLICAOF (admin)": order.Do(ctx, "REPLICAOF", "NO", "ONE").Err(),
		} {
			if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
				t.Errorf("%s as order: %v, want NOPERM", name, err)
			}
		}
	})

	t.Run("the default user is off", func(t *testing.T) {
		anon := serviceClient(t, r, r.Addr(), "", "")
		if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("PING without AUTH: %v", err)
		}
		wrong := serviceClient(t, r, r.Addr(), "order", "wrong")
		if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("PING with a wrong password: %v", err)
		}
	})

	t.Run("plain TCP gets no answer", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write([]byte("PING\r\n"))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err == nil || strings.Contains(line, "PONG") {
			t.Errorf("plain-text PING answered %q (%v)", line, err)
		}
	})

	t.Run("service env", func(t *testing.T) {
		env := r.ServiceEnv(t, "inventory")
		if env["SHOPSTACK_REDIS_ADDR"] != r.Addr() || env["SHOPSTACK_REDIS_USER"] != "inventory" || env["SHOPSTACK_REDIS_PASSWORD_FILE"] == "" {
			t.Errorf("env = %v", env)
		}
		if _, ok := env["SHOPSTACK_REDIS_SENTINELS"]; ok {
			t.Error("a deployment without Sentinels names Sentinels")
		}
	})
}

func TestRedisWithSentinelsFailsOver(t *testing.T) {
	start := time.Now()
	r := StartRedisWithSentinels(t, RedisOptions{})
	t.Logf("started in %s", time.Since(start))
	if len(r.Servers) != 3 || len(r.Sentinels) != 3 {
		t.Fatalf("%d servers and %d sentinels, want 3 and 3", len(r.Servers), len(r.Sentinels))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := r.MasterAddr(ctx)
	if err != nil || old != r.Addr() {
		t.Fatalf("master = %q (%v), want %s", old, err, r.Addr())
	}
	env := r.ServiceEnv(t, "order")
	if got := strings.Split(env["SHOPSTACK_REDIS_SENTINELS"], ","); !slices.Equal(got, r.SentinelAddrs()) || env["SHOPSTACK_REDIS_MASTER_NAME"] != RedisMasterName {
		t.Errorf("env = %v", env)
	}

	start = time.Now()
	promoted := r.Failover(t)
	t.Logf("failed over in %s", time.Since(start))
	if promoted == old || r.Server(promoted) == nil {
		t.Fatalf("after SENTINEL FAILOVER the master is %q (was %q)", promoted, old)
	}
	order := serviceClient(t, r, promoted, "order", r.Password("order"))
	if err := order.Set(ctx, "order:after-failover", "1", time.Minute).Err(); err != nil {
		t.Fatalf("writing to the promoted master: %v", err)
	}
}

func TestRedisStopLeavesNothing(t *testing.T) {
	r := StartRedis(t, RedisOptions{})
	s := r.Servers[0]
	pid := s.proc.cmd.Process.Pid
	s.Stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("redis-server %d is still there after Stop: %v", pid, err)
	}
	if s.Running() {
		t.Error("Running() after Stop")
	}
}
