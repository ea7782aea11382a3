package breaker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a settable time source safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var errBoom = errors.New("boom")

func fail() error    { return errBoom }
func succeed() error { return nil }

// run makes n calls with fn and returns how many reached fn.
func run(b *Breaker, n int, fn func() error) (reached int) {
	for range n {
		_ = b.Do(func() error {
			reached++
			return fn()
		})
	}
	return reached
}

func TestConsecutiveFailures(t *testing.T) {
	clk := newClock()
	b := New(Config{Name: "payment", ConsecutiveFailures: 3, Cooldown: 5 * time.Second, Now: clk.now})

	t.Run("successes reset the count", func(t *testing.T) {
		run(b, 2, fail)
		run(b, 1, succeed)
		run(b, 2, fail)
		if b.State() != Closed {
			t.Fatalf("state %s after failures that were not in a row", b.State())
		}
	})
	t.Run("N failures in a row open it", func(t *testing.T) {
		run(b, 1, fail)
		if b.State() != Open {
			t.Fatalf("state %s", b.State())
		}
	})
	t.Run("open fails fast without calling", func(t *testing.T) {
		if reached := run(b, 10, succeed); reached != 0 {
			t.Fatalf("%d calls went through an open breaker", reached)
		}
		err := b.Do(succeed)
		if !errors.Is(err, ErrOpen) || err.Error() != "payment: circuit breaker is open" {
			t.Fatalf("got %v", err)
		}
		clk.advance(4 * time.Second)
		if reached := run(b, 1, succeed); reached != 0 {
			t.Fatal("a call went through before the cooldown")
		}
	})
	t.Run("after the cooldown one trial call goes through", func(t *testing.T) {
		clk.advance(time.Second)
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		if b.State() != HalfOpen {
			t.Fatalf("state %s", b.State())
		}
		if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
			t.Fatal("a second call went through while the trial was in flight")
		}
		done(Success)
		if b.State() != Closed {
			t.Fatalf("state %s after a successful trial", b.State())
		}
		if reached := run(b, 5, succeed); reached != 5 {
			t.Fatalf("only %d calls went through a closed breaker", reached)
		}
	})
}

func TestFailedTrialReopens(t *testing.T) {
	clk := newClock()
	b := New(Config{ConsecutiveFailures: 1, Cooldown: 5 * time.Second, Now: clk.now})
	run(b, 1, fail)
	clk.advance(5 * time.Second)
	if reached := run(b, 1, fail); reached != 1 {
		t.Fatal("no trial call")
	}
	if b.State() != Open {
		t.Fatalf("state %s after a failed trial", b.State())
	}
	clk.advance(4 * time.Second)
	if reached := run(b, 1, succeed); reached != 0 {
		t.Fatal("the cooldown did not restart after the failed trial")
	}
	clk.advance(time.Second)
	if reached := run(b, 1, succeed); reached != 1 || b.State() != Closed {
		t.Fatalf("reached %d, state %s", reached, b.State())
	}
	if err := b.Do(succeed); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(New(Config{ConsecutiveFailures: 1}).Do(fail), errBoom) {
		t.Fatal("Do hides the call's error")
	}
}

func TestIgnoredTrialFreesTheSlot(t *testing.T) {
	clk := newClock()
	b := New(Config{ConsecutiveFailures: 1, Now: clk.now})
	run(b, 1, fail)
	clk.advance(time.Minute)
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(Ignored)
	if b.State() != HalfOpen {
		t.Fatalf("state %s", b.State())
	}
	if _, err := b.Allow(); err != nil {
		t.Fatal("an ignored trial kept the slot")
	}
}

func TestFailureRatio(t *testing.T) {
	clk := newClock()
	cfg := Config{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, Now: clk.now}

	t.Run("opens at the ratio once there are enough calls", func(t *testing.T) {
		b := New(cfg)
		for range 4 { // fail, succeed, fail, succeed...: never two in a row
			run(b, 1, fail)
			run(b, 1, succeed)
		}
		if b.State() != Closed {
			t.Fatal("opened below MinRequests")
		}
		run(b, 1, fail) // 9 calls, 5 failures
		if b.State() != Closed {
			t.Fatal("opened below MinRequests")
		}
		run(b, 1, succeed) // 10 calls, 5 failures: a success does not trip it
		run(b, 1, fail)    // 11 calls, 6 failures
		if b.State() != Open {
			t.Fatalf("state %s at 6/11 failures", b.State())
		}
	})
	t.Run("old calls leave the window", func(t *testing.T) {
		b := New(cfg)
		run(b, 9, fail) // would trip once a tenth call comes...
		clk.advance(11 * time.Second)
		run(b, 1, succeed) // ...but they are gone: 1 call, 0 failures
		run(b, 8, succeed)
		run(b, 1, fail)
		if b.State() != Closed {
			t.Fatalf("state %s: stale failures were counted", b.State())
		}
	})
	t.Run("the window rolls bucket by bucket", func(t *testing.T) {
		b := New(cfg)
		run(b, 5, succeed)
		clk.advance(5 * time.Second)
		run(b, 4, fail) // 9 calls, 4 failures
		clk.advance(6 * time.Second)
		// The 5 successes left the window; 4 failures remain.
		run(b, 4, succeed)
		run(b, 2, fail) // 10 calls, 6 failures
		if b.State() != Open {
			t.Fatalf("state %s", b.State())
		}
	})
}

func TestStaleReportsAreIgnored(t *testing.T) {
	clk := newClock()
	b := New(Config{ConsecutiveFailures: 2, Now: clk.now})
	slow, err := b.Allow() // a call that takes long
	if err != nil {
		t.Fatal(err)
	}
	run(b, 2, fail)
	slow(Success) // reported after the breaker opened
	if b.State() != Open {
		t.Fatalf("a stale success closed the breaker: %s", b.State())
	}
}

func TestReportOnce(t *testing.T) {
	clk := newClock()
	b := New(Config{ConsecutiveFailures: 2, Now: clk.now})
	done, _ := b.Allow()
	done(Failure)
	done(Failure)
	if b.State() != Closed {
		t.Fatal("one call counted twice")
	}
}

func TestStateChanges(t *testing.T) {
	clk := newClock()
	var got []string
	b := New(Config{Name: "inventory", ConsecutiveFailures: 1, Now: clk.now, OnStateChange: func(name string, from, to State) {
		got = append(got, fmt.Sprintf("%s %s->%s", name, from, to))
	}})
	run(b, 1, fail)
	clk.advance(time.Minute)
	run(b, 1, fail)
	clk.advance(time.Minute)
	run(b, 1, succeed)
	want := []string{
		"inventory closed->open", "inventory open->half-open", "inventory half-open->open",
		"inventory open->half-open", "inventory half-open->closed",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
}

func TestConcurrentTrial(t *testing.T) {
	clk := newClock()
	b := New(Config{ConsecutiveFailures: 1, Now: clk.now})
	run(b, 1, fail)
	clk.advance(time.Minute)
	var allowed atomic.Int32
	var asked, wg sync.WaitGroup
	asked.Add(20)
	for range 20 {
		wg.Go(func() {
			done, err := b.Allow()
			asked.Done()
			if err == nil {
				allowed.Add(1)
				asked.Wait() // hold the trial until every caller has asked
				done(Success)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 1 {
		t.Fatalf("%d trial calls in half-open, want 1", allowed.Load())
	}
}

func TestStateString(t *testing.T) {
	if Closed.String() != "closed" || Open.String() != "open" || HalfOpen.String() != "half-open" || State(9).String() != "State(9)" {
		t.Fatal("state names")
	}
}
