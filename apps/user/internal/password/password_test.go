package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// cheap parameters keep the tests fast; the production ones are tested once.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t *testing.T, cfg Config) *Hasher {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, Config{}) // the production parameters
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("not a PHC argon2id string with the expected parameters: %s", encoded)
	}
	t.Run("the right password verifies", func(t *testing.T) {
		if ok, err := h.Verify(ctx, "correct horse battery staple", encoded); !ok || err != nil {
			t.Fatalf("got %v, %v", ok, err)
		}
	})
	t.Run("a wrong password does not", func(t *testing.T) {
		if ok, err := h.Verify(ctx, "correct horse battery stapler", encoded); ok || err != nil {
			t.Fatalf("got %v, %v", ok, err)
		}
	})
	t.Run("salts differ", func(t *testing.T) {
		again, err := h.Hash(ctx, "correct horse battery staple")
		if err != nil || again == encoded {
			t.Fatalf("same hash twice (%v)", err)
		}
	})
	t.Run("the dummy never verifies", func(t *testing.T) {
		if err := h.DummyVerify(ctx, "anything"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestVerifyRefusesMalformedAndCostlyHashes(t *testing.T) {
	h := newHasher(t, Config{Params: cheap})
	good, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$abcdefghijklmnopqrstuu5Y1kP0.Vq9vj8JtYQH8jT6k4bTQ1iW",
		"argon2i":          strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":      strings.Replace(good, "v=19", "v=16", 1),
		"more memory":      strings.Replace(good, "m=64", "m=4194304", 1),
		"more threads":     strings.Replace(good, "p=1", "p=8", 1),
		"bad base64":       good[:len(good)-4] + "!!!!",
		"missing segments": "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.Verify(context.Background(), "pw", enc); !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("got %v, want ErrMalformedHash", err)
			}
		})
	}
}

func TestConcurrencyFitsTheMemoryBudget(t *testing.T) {
	t.Run("production parameters in the default budget", func(t *testing.T) {
		h := newHasher(t, Config{})
		if got := h.Concurrency(); got != 6 { // 128 MiB / 19 MiB
			t.Fatalf("concurrency %d, want 6", got)
		}
		if per := int64(h.Params().Memory) << 10; per*int64(h.Concurrency()) > DefaultMemoryBudget {
			t.Fatalf("%d hashes of %d bytes exceed the budget", h.Concurrency(), per)
		}
	})
	t.Run("a budget smaller than one hash is refused", func(t *testing.T) {
		if _, err := New(Config{MemoryBudget: 18 << 20}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("many goroutines never exceed the bound", func(t *testing.T) {
		const limit, workers = 3, 24
		// Enough passes that hashes overlap.
		p := Params{Memory: 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
		h := newHasher(t, Config{Params: p, MemoryBudget: limit*1024<<10 + 1000})
		if h.Concurrency() != limit {
			t.Fatalf("concurrency %d, want %d", h.Concurrency(), limit)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := range workers {
			wg.Go(func() {
				enc, err := h.Hash(ctx, strings.Repeat("x", i+1))
				if err == nil {
					_, err = h.Verify(ctx, "y", enc)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := h.MaxInFlight(); got > limit || got < 1 {
			t.Fatalf("at most %d hashes ran at once, want 1..%d", got, limit)
		}
		if h.InFlight() != 0 {
			t.Fatalf("%d hashes still counted as running", h.InFlight())
		}
	})
	t.Run("waiting for a slot is bounded", func(t *testing.T) {
		h := newHasher(t, Config{Params: cheap, MemoryBudget: 64 << 10, MaxWait: 50 * time.Millisecond})
		h.slots <- struct{}{} // every slot taken
		defer func() { <-h.slots }()
		if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
			t.Fatalf("got %v, want ErrBusy", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}
