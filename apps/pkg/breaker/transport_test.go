package breaker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestTransport(t *testing.T) {
	var status atomic.Int32
	var hits atomic.Int32
	var delay atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if d := time.Duration(delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	newClient := func() (*http.Client, *Breaker, *fakeClock) {
		clk := newClock()
		b := New(Config{Name: "payment", ConsecutiveFailures: 2, Now: clk.now})
		return &http.Client{Transport: Transport(b, srv.Client().Transport)}, b, clk
	}
	get := func(c *http.Client, ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	t.Run("5xx responses are failures", func(t *testing.T) {
		c, b, _ := newClient()
		status.Store(503)
		get(c, t.Context())
		get(c, t.Context())
		if b.State() != Open {
			t.Fatalf("state %s", b.State())
		}
		before := hits.Load()
		err := get(c, t.Context())
		if !errors.Is(err, ErrOpen) || hits.Load() != before {
			t.Fatalf("open breaker: err %v, the server was called %d times", err, hits.Load()-before)
		}
	})
	t.Run("4xx responses are successes, 429 is ignored", func(t *testing.T) {
		c, b, _ := newClient()
		for _, code := range []int32{500, 404, 500, 409, 500, 429, 200} {
			status.Store(code)
			get(c, t.Context())
		}
		if b.State() != Closed {
			t.Fatalf("state %s", b.State())
		}
		status.Store(500)
		get(c, t.Context())
		status.Store(429)
		get(c, t.Context())
		status.Store(500)
		get(c, t.Context())
		if b.State() != Open {
			t.Fatalf("a 429 between two 500s broke the run: %s", b.State())
		}
	})
	t.Run("timeouts are failures", func(t *testing.T) {
		c, b, _ := newClient()
		status.Store(200)
		delay.Store(int64(time.Second))
		defer delay.Store(0)
		for range 2 {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			if err := get(c, ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v", err)
			}
			cancel()
		}
		if b.State() != Open {
			t.Fatalf("state %s", b.State())
		}
	})
	t.Run("connection errors are failures", func(t *testing.T) {
		clk := newClock()
		b := New(Config{ConsecutiveFailures: 2, Now: clk.now})
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		c := &http.Client{Transport: Transport(b, nil)}
		for range 2 {
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				t.Fatal("a closed server answered")
			}
		}
		if b.State() != Open {
			t.Fatalf("state %s", b.State())
		}
	})
	t.Run("a call the caller cancelled counts neither way", func(t *testing.T) {
		c, b, _ := newClient()
		status.Store(200)
		delay.Store(int64(time.Second))
		defer delay.Store(0)
		for range 3 {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(20*time.Millisecond, cancel)
			get(c, ctx)
			cancel()
		}
		if b.State() != Closed {
			t.Fatalf("state %s", b.State())
		}
	})
	t.Run("recovers through a trial call", func(t *testing.T) {
		c, b, clk := newClient()
		status.Store(500)
		get(c, t.Context())
		get(c, t.Context())
		clk.advance(time.Minute)
		status.Store(200)
		if err := get(c, t.Context()); err != nil || b.State() != Closed {
			t.Fatalf("err %v, state %s", err, b.State())
		}
	})
}
