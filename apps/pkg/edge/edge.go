// Package edge guards a service's public listener the way the gateway would
// be trusted to: it finds the end user's address in the forwarded-for header
// the gateway adds, and (under mesh none, where no Istio policy does it)
// refuses sources outside the Shop's allowedSourceRanges.
package edge

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/redisx"
)

// Environment variables.
const (
	// EnvAllowedSourceRanges is the operator's spec.gateway.allowedSourceRanges,
	// comma-separated; empty lets every source in.
	EnvAllowedSourceRanges = "SHOPSTACK_ALLOWED_SOURCE_RANGES"
	// EnvForwardedHops is how many X-Forwarded-For entries, from the right,
	// our own proxies wrote (1: the gateway).
	EnvForwardedHops = "SHOPSTACK_FORWARDED_HOPS"
)

// Config is how the public listener identifies and admits clients.
type Config struct {
	SourceRanges  []netip.Prefix
	ForwardedHops int
}

// FromEnv reads the configuration; a malformed range or hop count is an
// error naming the variable.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	cfg := Config{ForwardedHops: 1}
	if v, ok := lookup(EnvForwardedHops); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 8 {
			return Config{}, fmt.Errorf("%s: want a number of proxies from 0 to 8, got %q", EnvForwardedHops, v)
		}
		cfg.ForwardedHops = n
	}
	v, _ := lookup(EnvAllowedSourceRanges)
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %q is not a CIDR range such as 10.0.0.0/8: %w", EnvAllowedSourceRanges, s, err)
		}
		cfg.SourceRanges = append(cfg.SourceRanges, p.Masked())
	}
	return cfg, nil
}

// ClientIP is the end user's address under this configuration.
func (c Config) ClientIP(r *http.Request) string {
	return redisx.ClientIP(r, c.ForwardedHops, nil)
}

// Guard refuses, with 403 source_not_allowed, a client whose address is in
// none of the ranges. Without ranges it lets everyone through.
func (c Config) Guard() httpx.Middleware {
	return func(next http.Handler) http.Handler {
		if len(c.SourceRanges) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, err := netip.ParseAddr(c.ClientIP(r))
			if err == nil {
				ip = ip.Unmap()
				for _, p := range c.SourceRanges {
					if p.Contains(ip) {
						next.ServeHTTP(w, r)
						return
					}
				}
			}
			httpx.WriteError(w, r, &httpx.Error{Status: http.StatusForbidden, Code: "source_not_allowed",
				Message: "requests from this address are not allowed"})
		})
	}
}
