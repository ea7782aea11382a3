package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Rate limit settings the operator sets on every service from the Shop's
// spec.gateway.rateLimit.
const (
	EnvRateLimitRPS   = "SHOPSTACK_RATE_LIMIT_RPS"
	EnvRateLimitBurst = "SHOPSTACK_RATE_LIMIT_BURST"
)

// Limit is a token bucket: a client may send Burst requests at once, and
// the bucket refills at Rate tokens per second.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultLimit is the operator's default rate limit.
var DefaultLimit = Limit{Rate: 50, Burst: 100}

// LimitFromEnv reads SHOPSTACK_RATE_LIMIT_RPS and SHOPSTACK_RATE_LIMIT_BURST,
// each defaulting to DefaultLimit's.
func LimitFromEnv(lookup func(string) (string, bool)) (Limit, error) {
	l := DefaultLimit
	var errs []error
	if v, ok := lookup(EnvRateLimitRPS); ok && strings.TrimSpace(v) != "" {
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || r <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive number, got %q", EnvRateLimitRPS, v))
		}
		l.Rate = r
	}
	if v, ok := lookup(EnvRateLimitBurst); ok && strings.TrimSpace(v) != "" {
		b, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || b < 1 {
			errs = append(errs, fmt.Errorf("%s: must be a positive integer, got %q", EnvRateLimitBurst, v))
		}
		l.Burst = b
	}
	return l, errors.Join(errs...)
}

// Result is one decision.
type Result struct {
	// Allowed says whether the request may go ahead.
	Allowed bool
	// Remaining is how many more requests the client may send right away.
	Remaining int
	// RetryAfter is how long a refused client must wait for a token; zero
	// when allowed.
	RetryAfter time.Duration
}

// LimiterOptions tune a Limiter; the zero value is ready to use.
type LimiterOptions struct {
	// Name tells limiters of one service apart in metrics and logs
	// ("requests" when empty), e.g. "login" for per-account login attempts.
	Name string
	// Timeout bounds one decision, so a slow Redis delays requests by at
	// most this much (default 250ms).
	Timeout time.Duration
	// Registerer receives the decision counter
	// shopstack_ratelimit_decisions_total{limiter,decision}; nil skips it.
	Registerer prometheus.Registerer
	// Logger reports Redis errors (at most one line per ten seconds);
	// nil means slog.Default().
	Logger *slog.Logger
}

// Limiter enforces a Limit per client with token buckets kept in Redis, so
// every replica of a service draws from the same bucket. Each decision is
// one atomic Lua script run on the master, timed by the Redis server's clock
// so that replicas on hosts with skewed clocks still agree.
type Limiter struct {
	rdb       redis.Scripter
	prefix    string
	limit     Limit
	name      string
	timeout   time.Duration
	logger    *slog.Logger
	decisions *prometheus.CounterVec
	lastLog   atomic.Int64 // unix nanoseconds of the last error logged
}

// NewLimiter returns a limiter whose buckets are the keys
// <service>:ratelimit:<client>, inside the prefix the service's ACL user may
// touch. Limiters of one service that must not share buckets use distinct
// client keys (e.g. "login:" + account).
func NewLimiter(rdb redis.Scripter, service string, limit Limit, opts LimiterOptions) (*Limiter, error) {
	if service == "" || strings.ContainsAny(service, ":*") {
		return nil, fmt.Errorf("rate limiter: %q is not a service name", service)
	}
	if limit.Rate <= 0 || limit.Burst < 1 {
		return nil, fmt.Errorf("rate limiter: rate %v and burst %d must be positive", limit.Rate, limit.Burst)
	}
	l := &Limiter{
		rdb:     rdb,
		prefix:  service + ":ratelimit:",
		limit:   limit,
		name:    opts.Name,
		timeout: opts.Timeout,
		logger:  opts.Logger,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shopstack_ratelimit_decisions_total",
			Help: "Rate limiter decisions: allowed, limited, or error (Redis unavailable; see the failure mode).",
		}, []string{"limiter", "decision"}),
	}
	if l.name == "" {
		l.name = "requests"
	}
	if l.timeout == 0 {
		l.timeout = 250 * time.Millisecond
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(l.decisions); err != nil {
			// A second limiter in the same process shares the counter.
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, fmt.Errorf("rate limiter metrics: %w", err)
			}
			existing, ok := already.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("rate limiter metrics: %w", err)
			}
			l.decisions = existing
		}
	}
	return l, nil
}

// Limit is the limiter's bucket size and refill rate.
func (l *Limiter) Limit() Limit { return l.limit }

// tokenBucket takes one token from the bucket KEYS[1] if it has one.
// ARGV[1] is the refill rate in tokens per second, ARGV[2] the burst. It
// returns {allowed (0/1), whole tokens left, microseconds until the next
// token}. A bucket untouched until it would be full again is equivalent to
// a missing one, so it expires then.
var tokenBucket = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if tokens == nil or ts == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000000)
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), wait}
`)

// Allow takes a token for client. An error means Redis could not decide
// (unreachable, failing over, timed out); the caller chooses between
// serving and refusing, as Middleware does with its FailureMode.
func (l *Limiter) Allow(ctx context.Context, client string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	reply, err := tokenBucket.Run(ctx, l.rdb, []string{l.prefix + client},
		strconv.FormatFloat(l.limit.Rate, 'g', -1, 64), l.limit.Burst).Int64Slice()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	if err != nil {
		l.decisions.WithLabelValues(l.name, "error").Inc()
		return Result{}, fmt.Errorf("rate limiter %s: %w", l.name, err)
	}
	res := Result{Allowed: reply[0] == 1, Remaining: int(reply[1]), RetryAfter: time.Duration(reply[2]) * time.Microsecond}
	decision := "allowed"
	if !res.Allowed {
		decision = "limited"
	}
	l.decisions.WithLabelValues(l.name, decision).Inc()
	return res, nil
}

// logError logs err unless another error was logged in the last ten
// seconds: an outage must not flood the logs with one line per request.
func (l *Limiter) logError(ctx context.Context, err error, mode FailureMode) {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(10*time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.logger.WarnContext(ctx, "rate limiter unavailable", slog.String("limiter", l.name),
		slog.String("failure_mode", mode.String()), slog.Any("error", err))
}
