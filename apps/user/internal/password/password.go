// Package password hashes and verifies passwords with argon2id, encoded in
// the PHC string format ($argon2id$v=19$m=19456,t=2,p=1$salt$hash) so the
// parameters travel with each hash and can be raised later.
//
// Argon2id is memory-hard on purpose: each hash holds Params.Memory KiB for
// its whole run. A burst of logins must not push the pod past its memory
// limit, so a Hasher runs at most MemoryBudget / Params.Memory hashes at a
// time; the others wait (up to MaxWait) for a slot.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are OWASP's recommended argon2id minimum: 19 MiB, two
// passes, one lane.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// DefaultMemoryBudget is how much memory concurrent hashing may use.
const DefaultMemoryBudget = 128 << 20

// DefaultMaxWait is how long a hash waits for a free slot before giving up
// with ErrBusy: a client should get a 503 rather than hang.
const DefaultMaxWait = 10 * time.Second

// ErrBusy means every hashing slot stayed taken for MaxWait.
var ErrBusy = errors.New("password hashing is at capacity")

// ErrMalformedHash means a stored hash is not an argon2id PHC string this
// Hasher accepts.
var ErrMalformedHash = errors.New("malformed password hash")

// Config configures a Hasher.
type Config struct {
	Params       Params        // zero: DefaultParams
	MemoryBudget int64         // bytes; zero: DefaultMemoryBudget; must fit one hash
	MaxWait      time.Duration // zero: DefaultMaxWait
}

// Hasher hashes and verifies passwords with bounded concurrency.
type Hasher struct {
	params  Params
	slots   chan struct{}
	maxWait time.Duration
	dummy   string // a hash of a random password, for DummyVerify

	inFlight    atomic.Int64
	maxInFlight atomic.Int64 // high-water mark, for tests and metrics
}

// New returns a Hasher. It computes one hash (for DummyVerify) before it
// returns, so it takes as long as a login.
func New(cfg Config) (*Hasher, error) {
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	p := cfg.Params
	if p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 {
		return nil, fmt.Errorf("password: argon2id parameters %+v are too weak", p)
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	perHash := int64(p.Memory) << 10
	slots := cfg.MemoryBudget / perHash
	if slots < 1 {
		return nil, fmt.Errorf("password: a memory budget of %d bytes does not fit one hash of %d bytes", cfg.MemoryBudget, perHash)
	}
	h := &Hasher{params: p, slots: make(chan struct{}, slots), maxWait: cfg.MaxWait}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	dummy, err := h.Hash(context.Background(), base64.RawStdEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Concurrency is how many hashes may run at once.
func (h *Hasher) Concurrency() int { return cap(h.slots) }

// InFlight is how many hashes are running now.
func (h *Hasher) InFlight() int64 { return h.inFlight.Load() }

// MaxInFlight is the most hashes that ever ran at once.
func (h *Hasher) MaxInFlight() int64 { return h.maxInFlight.Load() }

// Params are the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, comparing
// in constant time. A hash this Hasher cannot verify is ErrMalformedHash.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := h.decode(encoded)
	if err != nil {
		return false, err
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// DummyVerify does the work of a Verify and always fails, so a login for an
// account that does not exist takes as long as one with a wrong password.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, password, h.dummy)
	return err
}

// derive runs argon2id once a slot is free.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	wait := time.NewTimer(h.maxWait)
	defer wait.Stop()
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, ErrBusy
	}
	defer func() { <-h.slots }()
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		m := h.maxInFlight.Load()
		if n <= m || h.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string. Hashes asking for more memory or threads than
// this Hasher's parameters are refused: the concurrency bound assumes no
// hash costs more than Params.Memory.
func (h *Hasher) decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	if p.Memory > h.params.Memory || p.Threads > h.params.Threads || p.Time > 16*h.params.Time || p.Time < 1 || p.Threads < 1 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q exceed this service's limits", ErrMalformedHash, parts[3])
	}
	salt, err1 := b64.Strict().DecodeString(parts[4])
	key, err2 := b64.Strict().DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, fmt.Errorf("%w: salt or hash", ErrMalformedHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
