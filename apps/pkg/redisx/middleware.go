package redisx

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// FailureMode says what Middleware does when Redis cannot decide.
type FailureMode int

const (
	// FailOpen serves the request, counts the error in the decisions metric
	// and logs it. It is the default because the limiter protects capacity,
	// not secrets: during a Redis outage or failover (seconds, usually)
	// refusing every request would turn a degraded cache tier into a full
	// outage of the shop, while each replica's own bounds (request size,
	// timeouts, connection pools) still hold.
	FailOpen FailureMode = iota
	// FailClosed refuses the request with 503 Unavailable. Use it where the
	// limit is a security control, such as login attempts per account,
	// whose point is lost if an attacker can wait for (or cause) an outage.
	FailClosed
)

func (m FailureMode) String() string {
	if m == FailClosed {
		return "closed"
	}
	return "open"
}

// MiddlewareOptions tune Middleware; the zero value keys by the
// connection's remote address and fails open.
type MiddlewareOptions struct {
	// ForwardedHops is how many proxies in front of the service append the
	// address they saw to X-Forwarded-For. Behind the Shop's gateway it is
	// 1. Zero ignores the header.
	ForwardedHops int
	// TrustedProxies, when not empty, are the only remote addresses whose
	// X-Forwarded-For is believed. In a Shop the NetworkPolicy already lets
	// only the gateway reach the public port.
	TrustedProxies []netip.Prefix
	// Key overrides how a request is mapped to a bucket.
	Key func(*http.Request) string
	// OnError is the FailureMode.
	OnError FailureMode
}

// Middleware limits requests per client. A refused request gets 429 with
// Retry-After (whole seconds, at least 1) and the services' JSON error body;
// allowed requests pass unchanged.
func (l *Limiter) Middleware(opts MiddlewareOptions) httpx.Middleware {
	key := opts.Key
	if key == nil {
		key = func(r *http.Request) string {
			return BucketKey(ClientIP(r, opts.ForwardedHops, opts.TrustedProxies))
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := l.Allow(r.Context(), key(r))
			switch {
			case err != nil && opts.OnError == FailClosed:
				l.logError(r.Context(), err, opts.OnError)
				httpx.WriteError(w, r, httpx.Wrap(httpx.ErrUnavailable, err, "the rate limiter is unavailable, try again later"))
			case err != nil:
				l.logError(r.Context(), err, opts.OnError)
				next.ServeHTTP(w, r)
			case !res.Allowed:
				secs := max(1, int(math.Ceil(res.RetryAfter.Seconds())))
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				httpx.WriteError(w, r, httpx.Errorf(httpx.ErrRateLimited, "too many requests, retry in %d s", secs))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// ClientIP is the address a request came from. With hops > 0 and a remote
// address that is a trusted proxy (any, when trusted is empty), it is the
// entry of X-Forwarded-For that many places from the right: the address the
// outermost of our proxies saw. Entries further left were written by the
// client and prove nothing. Without such an entry it is the remote address.
func ClientIP(r *http.Request, hops int, trusted []netip.Prefix) string {
	remote := parseAddr(r.RemoteAddr)
	if !remote.IsValid() {
		return r.RemoteAddr
	}
	if hops <= 0 || (len(trusted) > 0 && !contains(trusted, remote)) {
		return remote.String()
	}
	var entries []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for e := range strings.SplitSeq(h, ",") {
			entries = append(entries, strings.TrimSpace(e))
		}
	}
	if len(entries) < hops {
		return remote.String()
	}
	if client := parseAddr(entries[len(entries)-hops]); client.IsValid() {
		return client.String()
	}
	return remote.String()
}

// BucketKey is the bucket of a client address: the address itself for
// IPv4, its /64 for IPv6, since one subscriber usually holds a whole /64 and
// could otherwise rotate through it to escape the limit.
func BucketKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port".
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
