package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// LoadResult counts the answers of a load run.
type LoadResult struct {
	Final     bool           `json:"final"`
	ElapsedS  float64        `json:"elapsed_s"`
	Requests  int            `json:"requests"`
	Statuses  map[string]int `json:"statuses"`
	Errors    int            `json:"errors"`
	ErrorSeen []string       `json:"error_samples,omitempty"`
}

// Upper bounds of a load run, whatever the flags say.
const (
	maxLoadDuration    = 10 * time.Minute
	maxLoadConcurrency = 16
	maxLoadRPS         = 200
)

// runLoad sends the same request from -concurrency workers at most -rps times
// a second until -duration has passed, -max-requests were sent, or SIGTERM
// arrives. It prints a progress line every -progress and the summary last.
func runLoad(args []string, out io.Writer) (any, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var tf tlsFlags
	var bf bodyFlags
	tf.register(fs)
	bf.register(fs)
	method := fs.String("method", http.MethodGet, "HTTP method")
	duration := fs.Duration("duration", 60*time.Second, "how long to send (at most 10m)")
	concurrency := fs.Int("concurrency", 2, "parallel workers (1 to 16)")
	rps := fs.Float64("rps", 5, "requests per second, all workers together (0 < rps <= 200)")
	maxRequests := fs.Int("max-requests", 10000, "stop after this many requests")
	timeout := fs.Duration("timeout", 10*time.Second, "per request")
	progress := fs.Duration("progress", 10*time.Second, "progress line interval")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(rest) != 1:
		return nil, errors.New("want one URL")
	case *duration <= 0 || *duration > maxLoadDuration:
		return nil, errors.New("-duration must be above 0 and at most 10m")
	case *concurrency < 1 || *concurrency > maxLoadConcurrency:
		return nil, errors.New("-concurrency must be between 1 and 16")
	case *rps <= 0 || *rps > maxLoadRPS:
		return nil, errors.New("-rps must be above 0 and at most 200")
	case *maxRequests < 1:
		return nil, errors.New("-max-requests must be at least 1")
	case *progress < time.Second:
		return nil, errors.New("-progress must be at least 1s")
	}
	req, err := bf.build(*method, rest[0])
	if err != nil {
		return nil, err
	}
	c, err := newClient(tf, *timeout, *concurrency)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	go func() {
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	var mu sync.Mutex
	res := LoadResult{Statuses: map[string]int{}}
	snapshot := func(final bool) LoadResult {
		mu.Lock()
		defer mu.Unlock()
		s := res
		s.Final = final
		s.ElapsedS = time.Since(start).Round(100 * time.Millisecond).Seconds()
		s.Statuses = make(map[string]int, len(res.Statuses))
		for k, v := range res.Statuses {
			s.Statuses[k] = v
		}
		s.ErrorSeen = append([]string(nil), res.ErrorSeen...)
		return s
	}

	// One token per request, at the rate asked for, never more than
	// maxRequests in all.
	tokens := make(chan struct{})
	go func() {
		defer close(tokens)
		tick := time.NewTicker(time.Duration(float64(time.Second) / *rps))
		defer tick.Stop()
		for range *maxRequests {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-ctx.Done():
				return
			case tokens <- struct{}{}:
			}
		}
	}()

	var wg sync.WaitGroup
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				r := req.do(ctx, c)
				if ctx.Err() != nil && r.Status == 0 {
					return // cut short by the end of the run: not an answer
				}
				mu.Lock()
				res.Requests++
				if r.Status != 0 {
					res.Statuses[strconv.Itoa(r.Status)]++
				} else {
					res.Errors++
					if len(res.ErrorSeen) < 5 {
						res.ErrorSeen = append(res.ErrorSeen, r.Error)
					}
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(*progress)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return snapshot(true), nil
		case <-tick.C:
			if err := writeJSON(out, snapshot(false)); err != nil {
				return nil, err
			}
		}
	}
}
