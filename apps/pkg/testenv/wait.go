package testenv

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// errExited stops a wait for a process that is gone.
var errExited = errors.New("the process exited")

// poll calls check until it succeeds, returns errExited, or timeout passes;
// each call gets a two-second context. It tries at most 2000 times.
func poll(timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for range 2000 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = check(ctx)
		cancel()
		if last == nil || errors.Is(last, errExited) {
			return last
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("gave up after %s: %w", timeout, last)
}

// waitFor polls check and fails the test when it does not succeed in time.
func waitFor(t testing.TB, timeout time.Duration, what string, check func(context.Context) error) {
	t.Helper()
	if err := poll(timeout, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
