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

	// A refused flow proves something only if the name resolved and the
	// destination answers: each one has a control, a probe the policies let
	// reach the same destination, which must connect to the same address
	// right before and right after the refused attempts.
	type flow struct {
		name, from, to string
		allowed        bool
		control        string // refused flows: a probe allowed to reach the same destination
	}
	flows := []flow{
		{name: "order_to_payment_internal", from: probeOrderNoTLS, to: s.svcHost("payment") + ":9443", allowed: true},
		{name: "order_to_inventory_internal", from: probeOrderNoTLS, to: s.svcHost("inventory") + ":9443", allowed: true},
		{name: "gateway_to_user_public", from: probeGateway, to: s.svcHost("user") + ":8443", allowed: true},
		{name: "monitoring_to_payment_ops", from: probeMonitoring, to: s.svcHost("payment") + ":8081", allowed: true},
		{name: "payment_to_inventory_internal", from: probeAsPayment, to: s.svcHost("inventory") + ":9443", control: probeOrderNoTLS},
		{name: "unlabelled_to_postgres", from: probePlain, to: s.svcHost("postgres-rw") + ":5432", control: probeOrderNoTLS},
		{name: "unlabelled_to_redis", from: probePlain, to: s.svcHost("redis-master") + ":6379", control: probeOrderNoTLS},
		{name: "unlabelled_to_order_public", from: probePlain, to: s.svcHost("order") + ":8443", control: probeGateway},
		{name: "gateway_to_payment_internal", from: probeGateway, to: s.svcHost("payment") + ":9443", control: probeOrderNoTLS},
		{name: "monitoring_to_user_public", from: probeMonitoring, to: s.svcHost("user") + ":8443", control: probeGateway},
		{name: "order_to_user_public", from: probeOrderNoTLS, to: s.svcHost("user") + ":8443", control: probeGateway},
	}
	// connects: from reaches to (the enforcer may take a moment to know a
	// new pod: retry).
	connects := func(t *testing.T, from, to string) (tcpResult, bool) {
		t.Helper()
		var res tcpResult
		if !s.mustProbe(t, ctx, from, time.Minute, &res, "tcp", "-attempts", "15", "-timeout", "2s", "-interval", "1s", "-until-connected", to) {
			return res, false
		}
		if res.Connected == 0 || res.Resolved == "" {
			t.Errorf("FAIL: %s -> %s (resolved %q) does not connect in %d attempts: %s", from, to, res.Resolved, res.Attempts, res.failures())
			return res, false
		}
		return res, true
	}
	t.Run("flows", func(t *testing.T) {
		for _, f := range flows {
			t.Run(f.name, func(t *testing.T) {
				t.Parallel()
				if f.allowed {
					if res, ok := connects(t, f.from, f.to); ok {
						t.Logf("PASS: declared flow %s -> %s (%s) connects (attempt %d)", f.from, f.to, res.Resolved, res.Attempts)
					}
					return
				}
				before, ok := connects(t, f.control, f.to)
				if !ok {
					t.Errorf("FAIL: control %s cannot reach %s, so refusing %s proves nothing", f.control, f.to, f.from)
					return
				}
				var res tcpResult
				if !s.mustProbe(t, ctx, f.from, time.Minute, &res, "tcp", "-attempts", "3", "-timeout", "3s", "-interval", "1s", f.to) {
					return
				}
				after, ok := connects(t, f.control, f.to)
				if !ok {
					t.Errorf("FAIL: control %s stopped reaching %s during the check, so refusing %s proves nothing", f.control, f.to, f.from)
					return
				}
				switch {
				case res.Connected > 0:
					t.Errorf("FAIL: undeclared flow %s -> %s (%s) connected %d of %d times", f.from, f.to, res.Resolved, res.Connected, res.Attempts)
				case res.Resolved == "" || res.DNSError != "":
					t.Errorf("FAIL: %s could not resolve %s (%s): a DNS failure is not a policy refusal", f.from, f.to, res.failures())
				case res.Resolved != before.Resolved || res.Resolved != after.Resolved:
					t.Errorf("FAIL: %s resolved %s to %s, the control %s to %s then %s: not the same destination",
						f.from, f.to, res.Resolved, f.control, before.Resolved, after.Resolved)
				case !res.onlyDenials():
					t.Errorf("FAIL: undeclared flow %s -> %s (%s) failed, but not as a policy refusal (refused, timeout or unreachable): %s",
						f.from, f.to, res.Resolved, res.failures())
				default:
					t.Logf("PASS: undeclared flow %s -> %s (%s) denied %d of %d times (%s), while %s connected to %s right before and after",
						f.from, f.to, res.Resolved, res.Attempts, res.Attempts, res.failures(), f.control, res.Resolved)
				}
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
