// Command bench-apps measures orders per second through the whole saga
// (order -> inventory -> payment over mTLS, every service a real process on
// loopback, see apps/internal/stack) against a floor measured in the same
// run: the database transactions one order causes, issued directly with pgx
// at the same concurrency (see floor.go for the statements). It then runs an
// open loop at half the measured saga maximum and reports p50 and p99.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// The targets the results are printed against.
const (
	targetRatio = 0.4
	targetP99   = 50 * time.Millisecond
)

type options struct {
	clients  int
	duration time.Duration
	warmup   time.Duration
	maxConns int
}

func main() {
	var o options
	flag.IntVar(&o.clients, "c", 8, "concurrent clients in the closed loops")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "duration of each measured phase")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before the saga phase")
	flag.IntVar(&o.maxConns, "pool", 0, "Postgres connections per service (0: the services' default)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-apps:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "shopstack-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	env := map[string]map[string]string{}
	if o.maxConns > 0 {
		for _, svc := range stack.Services {
			env[svc] = map[string]string{"SHOPSTACK_POSTGRES_MAX_CONNS": fmt.Sprint(o.maxConns)}
		}
	}
	fmt.Fprintln(os.Stderr, "starting PostgreSQL, Redis and the four services")
	// One machine is one client address: the per-client limit would cap
	// the benchmark, so it is set out of the way.
	st, err := stack.Start(ctx, stack.Options{Dir: dir, RateLimitRPS: 1 << 30, RateLimitBurst: 1 << 30, Env: env})
	if err != nil {
		return err
	}
	defer st.Close()

	skus := make([]string, o.clients)
	catalog := make([]stack.Product, o.clients)
	for i := range skus {
		skus[i] = fmt.Sprintf("bench-%d", i)
		catalog[i] = stack.Product{SKU: skus[i], Name: "Bench item", PriceCents: 100, Currency: "EUR", Stock: 10_000_000}
	}
	if err := st.Seed(ctx, catalog); err != nil {
		return err
	}
	tokens := make([]string, o.clients)
	for i := range tokens {
		if tokens[i], err = st.Keys.Token(fmt.Sprintf("bench-client-%d", i), []string{"customer"}, time.Hour); err != nil {
			return err
		}
	}
	b := &bench{st: st, skus: skus, tokens: tokens, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: st.TLSConfig(), MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024},
	}}

	fmt.Printf("shopstack app tier benchmark: %d clients, %s per phase, loopback, mTLS between services\n\n", o.clients, o.duration)

	fmt.Fprintln(os.Stderr, "warming up")
	b.closedLoop(ctx, o.clients, o.warmup)
	saga := b.closedLoop(ctx, o.clients, o.duration)
	fmt.Printf("saga (POST /v1/orders, closed loop)   %8.1f orders/s  (%d ok, %d failed, p50 %v, p99 %v)\n",
		saga.rate(), saga.ok, saga.failed, saga.percentile(50), saga.percentile(99))

	fl, err := newFloor(ctx, st, o.clients)
	if err != nil {
		return err
	}
	defer fl.close()
	floor := fl.closedLoop(ctx, o.clients, o.duration)
	fmt.Printf("floor (same transactions, direct pgx)  %8.1f orders/s  (%d ok, %d failed, p50 %v, p99 %v)\n",
		floor.rate(), floor.ok, floor.failed, floor.percentile(50), floor.percentile(99))
	ratio := 0.0
	if floor.rate() > 0 {
		ratio = saga.rate() / floor.rate()
	}
	fmt.Printf("ratio saga/floor                       %8.2f          target >= %.1f  %s\n\n", ratio, targetRatio, verdict(ratio >= targetRatio))

	rate := saga.rate() / 2
	if rate < 1 {
		return fmt.Errorf("the saga managed %.1f orders/s; too few for an open loop", saga.rate())
	}
	open := b.openLoop(ctx, rate, o.duration)
	p99 := open.percentile(99)
	fmt.Printf("open loop at %.1f orders/s (half the maximum): %d ok, %d failed, %d not sent (over %d in flight)\n",
		rate, open.ok, open.failed, open.dropped, maxInFlight)
	fmt.Printf("  p50 %v   p99 %v   target p99 < %v  %s\n", open.percentile(50), p99, targetP99, verdict(open.failed == 0 && open.dropped == 0 && p99 < targetP99))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// result is one phase: successes, failures and each success's latency.
type result struct {
	ok, failed, dropped int
	elapsed             time.Duration
	latencies           []time.Duration
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func (r *result) percentile(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(10 * time.Microsecond)
}

// closedLoop runs workers that each repeat op until duration is over and
// collects what they saw.
func closedLoop(ctx context.Context, workers int, duration time.Duration, op func(ctx context.Context, worker, n int) error) *result {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var mu sync.Mutex
	res := &result{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			ok, failed := 0, 0
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				err := op(context.WithoutCancel(ctx), w, n)
				if err != nil {
					failed++
					if failed <= 3 {
						fmt.Fprintf(os.Stderr, "worker %d: %v\n", w, err)
					}
					continue
				}
				ok++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ok += ok
			res.failed += failed
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// bench drives the saga through order's public API.
type bench struct {
	st     *stack.Stack
	skus   []string
	tokens []string
	client *http.Client
	seq    atomic.Int64
}

func (b *bench) order(ctx context.Context, i int) error {
	n := b.seq.Add(1)
	return postOrder(ctx, b.client, b.st.Service(stack.Order).PublicURL(), b.tokens[i%len(b.tokens)], b.skus[i%len(b.skus)], fmt.Sprintf("bench-%d", n))
}

func (b *bench) closedLoop(ctx context.Context, workers int, d time.Duration) *result {
	return closedLoop(ctx, workers, d, func(ctx context.Context, w, _ int) error { return b.order(ctx, w) })
}

// maxInFlight bounds the open loop: beyond it a request is counted as not
// sent rather than piling up goroutines.
const maxInFlight = 512

// openLoop sends orders at a constant rate, whatever the answers' pace; a
// latency counts from when the request was due, so a stall is not hidden.
func (b *bench) openLoop(ctx context.Context, rate float64, d time.Duration) *result {
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	res := &result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		if inFlight.Load() >= maxInFlight {
			mu.Lock()
			res.dropped++
			mu.Unlock()
			continue
		}
		inFlight.Add(1)
		wg.Go(func() {
			defer inFlight.Add(-1)
			err := b.order(ctx, i)
			took := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				return
			}
			res.ok++
			res.latencies = append(res.latencies, took)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}
