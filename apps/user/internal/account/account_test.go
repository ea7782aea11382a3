package account

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/user/internal/domain"
)

// countingHasher records which kind of work each login did.
type countingHasher struct{ verifies, dummies atomic.Int32 }

func (h *countingHasher) Hash(_ context.Context, pw string) (string, error) {
	return "$argon2id$" + pw, nil
}
func (h *countingHasher) Verify(_ context.Context, pw, enc string) (bool, error) {
	h.verifies.Add(1)
	return enc == "$argon2id$"+pw, nil
}
func (h *countingHasher) DummyVerify(context.Context, string) error { h.dummies.Add(1); return nil }

// memStore keeps one customer and counts failures without windows.
type memStore struct {
	domain.Store // unimplemented methods panic
	failures     map[string]int
}

func (s *memStore) CredentialsByLogin(_ context.Context, login string) (domain.Credentials, error) {
	if login != "ann@example.com" {
		return domain.Credentials{}, domain.ErrUserNotFound
	}
	return domain.Credentials{User: domain.User{ID: "u1", Roles: []domain.Role{domain.RoleCustomer}}, PasswordHash: "$argon2id$right password"}, nil
}
func (s *memStore) LoginLock(_ context.Context, account string, maxFailures int, window time.Duration) (time.Duration, error) {
	if s.failures[account] >= maxFailures {
		return window, nil
	}
	return 0, nil
}
func (s *memStore) RecordLoginFailure(_ context.Context, account string, _ time.Duration) error {
	s.failures[account]++
	return nil
}
func (s *memStore) ResetLoginFailures(_ context.Context, account string) error {
	delete(s.failures, account)
	return nil
}

type fakeSigner struct{}

func (fakeSigner) Issue(sub string, _ []string) (auth.Token, error) {
	return auth.Token{Value: "t-" + sub}, nil
}

func TestLoginSpendsOneHashWhateverTheOutcome(t *testing.T) {
	h := &countingHasher{}
	svc, err := New(Config{Store: &memStore{failures: map[string]int{}}, Hasher: h, Signer: fakeSigner{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name, login, pw string
		want            error
		verifies        int32
		dummies         int32
	}{
		{"unknown account", "nobody@example.com", "right password", domain.ErrInvalidCredentials, 0, 1},
		{"wrong password", "ann@example.com", "wrong password", domain.ErrInvalidCredentials, 1, 0},
		{"right password", "ann@example.com", "right password", nil, 1, 0},
		{"absurdly long login", string(make([]byte, 1000)), "x", domain.ErrInvalidCredentials, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v0, d0 := h.verifies.Load(), h.dummies.Load()
			_, _, err := svc.Login(ctx, tc.login, tc.pw)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if dv, dd := h.verifies.Load()-v0, h.dummies.Load()-d0; dv != tc.verifies || dd != tc.dummies {
				t.Fatalf("%d verifies and %d dummy verifies, want %d and %d", dv, dd, tc.verifies, tc.dummies)
			}
		})
	}
	t.Run("a locked account costs no hash", func(t *testing.T) {
		for range DefaultMaxFailures {
			_, _, _ = svc.Login(ctx, "locked@example.com", "x")
		}
		v0, d0 := h.verifies.Load(), h.dummies.Load()
		_, _, err := svc.Login(ctx, "LOCKED@example.com", "x")
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindLocked || de.RetryAfter != DefaultLockoutWindow {
			t.Fatalf("got %v", err)
		}
		if h.verifies.Load() != v0 || h.dummies.Load() != d0 {
			t.Fatal("a locked login ran a hash")
		}
	})
}
