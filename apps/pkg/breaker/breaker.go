// Package breaker is a small circuit breaker for calls to other services.
// While a dependency is failing, callers get ErrOpen at once instead of
// piling up on timeouts; after a cooldown one trial call finds out whether
// it has recovered.
//
//	closed --(N failures in a row, or failure ratio over the window)--> open
//	open --(cooldown passed, next call)--> half-open: one trial call
//	half-open --(trial succeeds)--> closed;  --(trial fails)--> open
package breaker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrOpen is returned, wrapped with the breaker's name, instead of making a
// call while the breaker is open.
var ErrOpen = errors.New("circuit breaker is open")

// State is the state of a breaker.
type State int

// The states of a breaker.
const (
	Closed   State = iota // calls go through
	Open                  // calls fail fast with ErrOpen
	HalfOpen              // one trial call goes through
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Result is the outcome of a call, as the breaker counts it.
type Result int

// The outcomes of a call.
const (
	Success Result = iota
	Failure
	// Ignored calls count neither way, e.g. when the caller gave up.
	Ignored
)

// Config tunes a breaker. Zero values take the defaults.
type Config struct {
	Name string // the dependency, for errors and state-change reports

	// ConsecutiveFailures trips the breaker after this many failures in a
	// row (default 5).
	ConsecutiveFailures int
	// FailureRatio trips the breaker when this share of the calls in Window
	// failed, once there were at least MinRequests (default 0: off). It
	// catches a dependency that fails often but not always in a row.
	FailureRatio float64
	MinRequests  int           // default 20
	Window       time.Duration // default 10s, counted in 10 buckets
	Cooldown     time.Duration // time open before a trial call; default 5s

	Now           func() time.Time                  // nil: time.Now
	OnStateChange func(name string, from, to State) // called outside the lock
}

const buckets = 10

type bucket struct {
	epoch           int64 // which Window/buckets slice of time this counts
	total, failures int
}

// Breaker is a circuit breaker. Its methods are safe for concurrent use.
type Breaker struct {
	cfg      Config
	width    time.Duration // of one bucket
	mu       sync.Mutex
	state    State
	inARow   int
	window   [buckets]bucket
	openedAt time.Time
	trial    bool   // a half-open trial call is in flight
	gen      uint64 // bumped on every state change, to drop stale reports
}

// New returns a closed breaker.
func New(cfg Config) *Breaker {
	if cfg.ConsecutiveFailures <= 0 {
		cfg.ConsecutiveFailures = 5
	}
	if cfg.MinRequests <= 0 {
		cfg.MinRequests = 20
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breaker{cfg: cfg, width: max(cfg.Window/buckets, time.Nanosecond)}
}

// State is the current state; an open breaker whose cooldown has passed
// reports HalfOpen only once a call tries it.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow asks to make a call. It returns ErrOpen (wrapped) when the call must
// not be made; otherwise the caller makes it and reports the outcome with
// done exactly once (later reports are ignored).
func (b *Breaker) Allow() (done func(Result), err error) {
	b.mu.Lock()
	var change func()
	defer func() {
		b.mu.Unlock()
		if change != nil {
			change()
		}
	}()
	now := b.cfg.Now()
	switch b.state {
	case Open:
		if now.Sub(b.openedAt) < b.cfg.Cooldown {
			return nil, b.errOpen()
		}
		change = b.setState(HalfOpen)
		fallthrough
	case HalfOpen:
		if b.trial {
			return nil, b.errOpen()
		}
		b.trial = true
	}
	gen := b.gen
	var once sync.Once
	return func(r Result) { once.Do(func() { b.report(gen, r) }) }, nil
}

func (b *Breaker) errOpen() error {
	if b.cfg.Name == "" {
		return ErrOpen
	}
	return fmt.Errorf("%s: %w", b.cfg.Name, ErrOpen)
}

// Do runs fn if the breaker allows it, counting any error as a failure.
func (b *Breaker) Do(fn func() error) error {
	done, err := b.Allow()
	if err != nil {
		return err
	}
	err = fn()
	if err != nil {
		done(Failure)
	} else {
		done(Success)
	}
	return err
}

func (b *Breaker) report(gen uint64, r Result) {
	b.mu.Lock()
	var change func()
	defer func() {
		b.mu.Unlock()
		if change != nil {
			change()
		}
	}()
	if gen != b.gen {
		return // the call started in an earlier state; its outcome is old news
	}
	now := b.cfg.Now()
	switch b.state {
	case HalfOpen:
		b.trial = false
		switch r {
		case Success:
			change = b.setState(Closed)
		case Failure:
			b.openedAt = now
			change = b.setState(Open)
		}
	case Closed:
		if r == Ignored {
			return
		}
		total, failures := b.record(now, r == Failure)
		if r == Success {
			b.inARow = 0
			return
		}
		b.inARow++
		ratioTripped := b.cfg.FailureRatio > 0 && total >= b.cfg.MinRequests &&
			float64(failures) >= b.cfg.FailureRatio*float64(total)
		if b.inARow >= b.cfg.ConsecutiveFailures || ratioTripped {
			b.openedAt = now
			change = b.setState(Open)
		}
	}
}

// record counts a call in the rolling window and returns the window's totals.
func (b *Breaker) record(now time.Time, failed bool) (total, failures int) {
	epoch := now.UnixNano() / int64(b.width)
	cur := &b.window[epoch%buckets]
	if cur.epoch != epoch {
		*cur = bucket{epoch: epoch}
	}
	cur.total++
	if failed {
		cur.failures++
	}
	for _, bk := range b.window {
		if epoch-bk.epoch < buckets {
			total += bk.total
			failures += bk.failures
		}
	}
	return total, failures
}

// setState changes state under the lock and returns the notification to
// send after it is released.
func (b *Breaker) setState(to State) func() {
	from := b.state
	b.state = to
	b.gen++
	b.trial = false
	if to == Closed || to == Open {
		b.inARow = 0
		b.window = [buckets]bucket{}
	}
	if b.cfg.OnStateChange == nil {
		return nil
	}
	name, cb := b.cfg.Name, b.cfg.OnStateChange
	return func() { cb(name, from, to) }
}
