package redisx_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/redisx"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

func TestOpenSingleServer(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	order := openClient(t, serviceConfig(t, r, "order"))
	ctx := testContext(t)

	if err := redisx.Ping(ctx, order); err != nil {
		t.Fatal(err)
	}
	if err := order.Set(ctx, "order:42", "paid", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := order.Get(ctx, "order:42").Result(); err != nil || v != "paid" {
		t.Errorf("GET order:42 = %q, %v", v, err)
	}
	if who, err := order.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "order" {
		t.Errorf("ACL WHOAMI = %q, %v; want the service's own user", who, err)
	}

	t.Run("another service's keys and channels are off limits", func(t *testing.T) {
		for name, err := range map[string]error{
			"SET inventory:stock": order.Set(ctx, "inventory:stock", "0", 0).Err(),
			"GET user:1":          order.Get(ctx, "user:1").Err(),
			"DEL user:1":          order.Del(ctx, "user:1").Err(),
			"PUBLISH inventory:x": order.Publish(ctx, "inventory:x", "hi").Err(),
			"FLUSHALL":            order.FlushAll(ctx).Err(),
		} {
			if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
				t.Errorf("%s as order: %v, want NOPERM", name, err)
			}
		}
	})

	t.Run("a wrong password", func(t *testing.T) {
		cfg := serviceConfig(t, r, "order")
		cfg.Password, cfg.PasswordFile = "wrong", ""
		err := openClient(t, cfg).Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("PING with a wrong password: %v", err)
		}
	})

	t.Run("a server from another CA", func(t *testing.T) {
		cfg := serviceConfig(t, r, "order")
		cfg.TLSDir = testenv.NewCA(t).TLSDir(t, nil)
		err := openClient(t, cfg).Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("PING a server the CA did not sign: %v", err)
		}
	})
}

// The Sentinels fail the master over; the client follows them and writes
// succeed again within a bounded time, without a restart.
func TestOpenFollowsASentinelFailover(t *testing.T) {
	r := testenv.StartRedisWithSentinels(t, testenv.RedisOptions{})
	cfg := serviceConfig(t, r, "inventory")
	if len(cfg.Sentinels) != 3 || cfg.MasterName != testenv.RedisMasterName {
		t.Fatalf("config = %+v", cfg)
	}
	rdb := openClient(t, cfg)
	ctx := testContext(t)
	if err := rdb.Set(ctx, "inventory:before", "1", 0).Err(); err != nil {
		t.Fatalf("writing through the Sentinels: %v", err)
	}
	limiter := newLimiter(t, rdb, "inventory", redisx.Limit{Rate: 100, Burst: 100}, redisx.LimiterOptions{})
	if _, err := limiter.Allow(ctx, "warm-up"); err != nil {
		t.Fatal(err)
	}

	old := r.KillMaster(t)
	killed := time.Now()
	const bound = 30 * time.Second
	var lastErr error
	recovered := false
	for i := 0; i < 600 && time.Since(killed) < bound; i++ {
		wctx, cancel := context500ms(t)
		lastErr = rdb.Set(wctx, "inventory:after", i, 0).Err()
		cancel()
		if lastErr == nil {
			recovered = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !recovered {
		t.Fatalf("no successful write within %s of the master's death: %v", bound, lastErr)
	}
	t.Logf("writes succeeded again %s after the master was killed", time.Since(killed).Round(time.Millisecond))

	// Every Sentinel agrees on the new master (they learn it from the
	// leader within a hello period), and the write landed there.
	master := r.WaitForNewMaster(t, old.Addr, 20*time.Second)
	direct := serviceConfig(t, r, "inventory")
	direct.Sentinels, direct.MasterName, direct.Addr = nil, "", master
	if got, err := openClient(t, direct).Get(ctx, "inventory:after").Result(); err != nil || got == "" {
		t.Errorf("the write is not on the new master %s: %q, %v", master, got, err)
	}
	// The script is not cached on the new master; the limiter loads it again.
	if res, err := limiter.Allow(ctx, "after-failover"); err != nil || !res.Allowed {
		t.Errorf("the limiter after the failover: %+v, %v", res, err)
	}
	if err := redisx.Ping(ctx, rdb); err != nil {
		t.Errorf("Ping after the failover: %v", err)
	}
}
