//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// checkNetworkPolicies checks the call graph at the network: declared flows
// connect, undeclared ones never do, and DNS works from every probe pod,
// including those the Shop's default-deny policy selects.
func (s *suite) checkNetworkPolicies(t *testing.T, ctx context.Context) {
	s.need(t, stageReady, stageProbes)

	t.Run("dns_from_every_probe", func(t *testing.T) {
		names := []string{"kubernetes.default.svc.cluster.local"}
		for _, n := range []string{"user", "order", "payment", "inventory", "postgres-rw", "redis-master"} {
			names = append(names, s.svcHost(n)+".cluster.local")
		}
		for _, p := range s.probeSpecs() {
			t.Run(p.role, func(t *testing.T) {
				t.Parallel()
				var res dnsResult
				if !s.mustProbe(t, ctx, p.role, time.Minute, &res, append([]string{"dns", "-timeout", "5s"}, names...)...) {
					return
				}
				for _, r := range res.Results {
					if r.Error != "" || len(r.Addrs) == 0 {
						t.Errorf("FAIL: %s cannot resolve %s: %s (%d ms)", p.role, r.Name, r.Error, r.MS)
					}
				}
				if !t.Failed() {
					t.Logf("PASS: %s resolves %d names", p.role, len(res.Results))
				}
			})
		}
	})

	type flow struct {
		name, from, to string
		allowed        bool
	}
	flows := []flow{
		{"order_to_payment_internal", probeOrderNoTLS, s.svcHost("payment") + ":9443", true},
		{"order_to_inventory_internal", probeOrderNoTLS, s.svcHost("inventory") + ":9443", true},
		{"gateway_to_user_public", probeGateway, s.svcHost("user") + ":8443", true},
		{"monitoring_to_payment_ops", probeMonitoring, s.svcHost("payment") + ":8081", true},
		{"payment_to_inventory_internal", probeAsPayment, s.svcHost("inventory") + ":9443", false},
		{"unlabelled_to_postgres", probePlain, s.svcHost("postgres-rw") + ":5432", false},
		{"unlabelled_to_redis", probePlain, s.svcHost("redis-master") + ":6379", false},
		{"unlabelled_to_order_public", probePlain, s.svcHost("order") + ":8443", false},
		{"gateway_to_payment_internal", probeGateway, s.svcHost("payment") + ":9443", false},
		{"monitoring_to_user_public", probeMonitoring, s.svcHost("user") + ":8443", false},
		{"order_to_user_public", probeOrderNoTLS, s.svcHost("user") + ":8443", false},
	}
	t.Run("flows", func(t *testing.T) {
		for _, f := range flows {
			t.Run(f.name, func(t *testing.T) {
				t.Parallel()
				var res tcpResult
				if f.allowed {
					// The enforcer may take a moment to know a new pod: retry.
					if !s.mustProbe(t, ctx, f.from, time.Minute, &res, "tcp", "-attempts", "15", "-timeout", "2s", "-interval", "1s", "-until-connected", f.to) {
						return
					}
					if res.Connected == 0 {
						t.Errorf("FAIL: declared flow %s -> %s does not connect: %v", f.from, f.to, res.Errors)
						return
					}
					t.Logf("PASS: declared flow %s -> %s connects (attempt %d)", f.from, f.to, res.Attempts)
					return
				}
				if !s.mustProbe(t, ctx, f.from, time.Minute, &res, "tcp", "-attempts", "3", "-timeout", "3s", "-interval", "1s", f.to) {
					return
				}
				if res.Connected > 0 {
					t.Errorf("FAIL: undeclared flow %s -> %s connected %d of %d times", f.from, f.to, res.Connected, res.Attempts)
					return
				}
				t.Logf("PASS: undeclared flow %s -> %s refused %d of %d times: %s", f.from, f.to, res.Attempts, res.Attempts, summarize(res.Errors))
			})
		}
	})
}

// summarize shortens a list of identical errors.
func summarize(errs []string) string {
	if len(errs) == 0 {
		return "no error"
	}
	n := 0
	for _, e := range errs {
		if e == errs[0] {
			n++
		}
	}
	if n == len(errs) {
		return fmt.Sprintf("%dx %s", n, errs[0])
	}
	return fmt.Sprintf("%v", errs)
}
