package redisx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/pkg/redisx"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// newLimiter is NewLimiter with a timeout generous enough for a busy test
// machine (a race-detector build, parallel packages), unless opts sets one.
func newLimiter(t *testing.T, rdb redis.Scripter, service string, limit redisx.Limit, opts redisx.LimiterOptions) *redisx.Limiter {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	l, err := redisx.NewLimiter(rdb, service, limit, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterBurstThenRefill(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := openClient(t, serviceConfig(t, r, "order"))
	// 4 tokens a second: one every 250 ms, slow enough that a busy machine
	// does not refill a token between two calls of the burst.
	l := newLimiter(t, rdb, "order", redisx.Limit{Rate: 4, Burst: 5}, redisx.LimiterOptions{})
	ctx := testContext(t)

	for i := range 5 {
		res, err := l.Allow(ctx, "203.0.113.7")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || res.RetryAfter != 0 {
			t.Fatalf("request %d of the burst: %+v", i+1, res)
		}
		if want := 4 - i; res.Remaining != want {
			t.Errorf("request %d: %d remaining, want %d", i+1, res.Remaining, want)
		}
	}
	res, err := l.Allow(ctx, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > 250*time.Millisecond {
		t.Fatalf("the request after the burst: %+v, want refused with a retry within 250ms", res)
	}
	if other, _ := l.Allow(ctx, "198.51.100.1"); !other.Allowed {
		t.Error("another client shares the exhausted bucket")
	}

	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	if res, _ := l.Allow(ctx, "203.0.113.7"); !res.Allowed {
		t.Errorf("after waiting RetryAfter: %+v, want allowed", res)
	}
	if res, _ := l.Allow(ctx, "203.0.113.7"); res.Allowed {
		t.Errorf("the refilled token was spent, yet: %+v", res)
	}

	// Idle long enough, the bucket is full again, never fuller.
	time.Sleep(5*250*time.Millisecond + 50*time.Millisecond)
	allowed := 0
	for range 8 {
		if res, _ := l.Allow(ctx, "203.0.113.7"); res.Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("%d allowed after a full refill, want the burst of 5", allowed)
	}
}

// Replicas each have their own client and limiter; they draw from one bucket.
func TestLimiterReplicasShareABucket(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	limit := redisx.Limit{Rate: 0.001, Burst: 10}
	replicas := make([]*redisx.Limiter, 4)
	for i := range replicas {
		replicas[i] = newLimiter(t, openClient(t, serviceConfig(t, r, "order")), "order", limit, redisx.LimiterOptions{})
	}
	ctx := testContext(t)

	t.Run("taking turns", func(t *testing.T) {
		allowed := 0
		for i := range 20 {
			res, err := replicas[i%2].Allow(ctx, "turns")
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed {
				allowed++
			}
		}
		if allowed != 10 {
			t.Errorf("two replicas allowed %d requests, want the one burst of 10", allowed)
		}
	})

	t.Run("all at once", func(t *testing.T) {
		var allowed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, l := range replicas {
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for range 5 {
						if res, err := l.Allow(ctx, "stampede"); err == nil && res.Allowed {
							allowed.Add(1)
						}
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		if n := allowed.Load(); n != 10 {
			t.Errorf("200 concurrent requests through 4 replicas: %d allowed, want exactly 10", n)
		}
	})

	t.Run("buckets are the service's keys and expire", func(t *testing.T) {
		rdb := openClient(t, serviceConfig(t, r, "order"))
		ttl, err := rdb.PTTL(ctx, "order:ratelimit:turns").Result()
		if err != nil {
			t.Fatal(err)
		}
		// Full again after burst/rate = 10000 s; the key lives no longer.
		if ttl <= 0 || ttl > 10001*time.Second {
			t.Errorf("bucket TTL %s", ttl)
		}
	})
}

func TestLimiterStaysInsideTheServicesKeys(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	order := openClient(t, serviceConfig(t, r, "order"))
	// A limiter named after another service would write inventory:* keys,
	// which order's ACL user may not touch.
	l := newLimiter(t, order, "inventory", redisx.Limit{Rate: 1, Burst: 1}, redisx.LimiterOptions{})
	_, err := l.Allow(testContext(t), "x")
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("order limiting in inventory's keys: %v", err)
	}
	for _, bad := range []string{"", "order:x", "*"} {
		if _, err := redisx.NewLimiter(order, bad, redisx.Limit{Rate: 1, Burst: 1}, redisx.LimiterOptions{}); err == nil {
			t.Errorf("service name %q accepted", bad)
		}
	}
	for _, bad := range []redisx.Limit{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}} {
		if _, err := redisx.NewLimiter(order, "order", bad, redisx.LimiterOptions{}); err == nil {
			t.Errorf("limit %+v accepted", bad)
		}
	}
}

func TestMiddleware(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	reg := prometheus.NewRegistry()
	l := newLimiter(t, openClient(t, serviceConfig(t, r, "order")), "order",
		redisx.Limit{Rate: 0.5, Burst: 2}, redisx.LimiterOptions{Registerer: reg})
	var served atomic.Int32
	h := l.Middleware(redisx.MiddlewareOptions{ForwardedHops: 1})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	request := func(xff string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/orders", nil)
		req.RemoteAddr = "10.0.0.9:40000" // the gateway
		req.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	for i := range 2 {
		if rec := request("198.51.100.1"); rec.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d", i+1, rec.Code)
		}
	}
	// A client cannot escape its bucket by writing its own X-Forwarded-For.
	rec := request("1.2.3.4, 198.51.100.1")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", rec.Code)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 seconds", rec.Header().Get("Retry-After"))
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != "rate_limited" || body.Error.Message == "" {
		t.Errorf("body %s (%v)", rec.Body, err)
	}
	if served.Load() != 2 {
		t.Errorf("the handler ran %d times, want 2", served.Load())
	}
	if rec := request("198.51.100.2"); rec.Code != http.StatusNoContent {
		t.Errorf("another client behind the same gateway: %d", rec.Code)
	}
	for decision, want := range map[string]float64{"allowed": 3, "limited": 1, "error": 0} {
		if got := decisions(t, reg, decision); got != want {
			t.Errorf("decisions{decision=%q} = %v, want %v", decision, got, want)
		}
	}
}

// When Redis cannot decide, FailOpen serves (and counts the error) and
// FailClosed answers 503; neither waits longer than the limiter's timeout.
func TestMiddlewareWhenRedisIsDown(t *testing.T) {
	ca := testenv.NewCA(t)
	rdb := openClient(t, redisx.Config{
		Addr:   "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), // nothing listens
		TLSDir: ca.TLSDir(t, nil),
	})
	reg := prometheus.NewRegistry()
	l := newLimiter(t, rdb, "order", redisx.Limit{Rate: 1, Burst: 1}, redisx.LimiterOptions{Registerer: reg, Timeout: 200 * time.Millisecond})
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

	for mode, want := range map[redisx.FailureMode]int{redisx.FailOpen: http.StatusOK, redisx.FailClosed: http.StatusServiceUnavailable} {
		t.Run(mode.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			start := time.Now()
			l.Middleware(redisx.MiddlewareOptions{OnError: mode})(ok).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != want {
				t.Errorf("status %d, want %d", rec.Code, want)
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("the decision took %s", elapsed)
			}
			if mode == redisx.FailClosed && (rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"unavailable"`)) {
				t.Errorf("503 without Retry-After or JSON error: %v %s", rec.Header(), rec.Body)
			}
		})
	}
	if got := decisions(t, reg, "error"); got != 2 {
		t.Errorf("decisions{decision=error} = %v, want 2", got)
	}
}

// Two limiters of one service register the same counter once.
func TestLimitersShareTheMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"requests", "login"} {
		if _, err := redisx.NewLimiter(nil, "user", redisx.Limit{Rate: 1, Burst: 1}, redisx.LimiterOptions{Name: name, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

// decisions sums the decision counter for one decision over all limiters.
func decisions(t *testing.T, reg *prometheus.Registry, decision string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "shopstack_ratelimit_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "decision" && lp.GetValue() == decision {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
