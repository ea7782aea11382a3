//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"
)

// checkContainment checks that a pod has no way out of the cluster: no route
// leads outside the pod and Service ranges, and a name outside the cluster
// fails to resolve with NXDOMAIN, fast (the cluster's DNS has no upstream),
// while a name inside it resolves in the same call. It runs in the
// gateway's probe, whose egress no NetworkPolicy restricts, in the unlabelled
// one and in the monitoring namespace's.
func (s *suite) checkContainment(t *testing.T, ctx context.Context) {
	if s.cfg.skipContainment {
		t.Skip("SKIP: E2E_SKIP_CONTAINMENT=1 (a cluster with a way out, such as kind)")
	}
	s.need(t, stageProbes)
	allowed := s.cfg.podCIDR + "," + s.cfg.serviceCIDR
	for _, role := range []string{probeGateway, probePlain, probeMonitoring} {
		t.Run(role, func(t *testing.T) {
			var routes routesResult
			if s.mustProbe(t, ctx, role, time.Minute, &routes, "routes", "-allowed", allowed) {
				switch {
				case routes.Error != "":
					t.Errorf("FAIL: reading the routing table: %s", routes.Error)
				case len(routes.Routes) == 0:
					t.Errorf("FAIL: the pod has no routes at all, which cannot be right")
				case len(routes.Violations) > 0:
					t.Errorf("FAIL: routes lead outside %s: %+v (all routes: %+v)", allowed, routes.Violations, routes.Routes)
				default:
					t.Logf("PASS: every route stays inside %s: %+v", allowed, routes.Routes)
				}
			}
			// In the same call, a cluster name must resolve: an outside name
			// failing proves nothing when the cluster's DNS is not answering.
			// The outside name must fail with NXDOMAIN (not a timeout or a
			// server failure), fast.
			inside := "kubernetes.default.svc.cluster.local"
			var dns dnsResult
			if !s.mustProbe(t, ctx, role, time.Minute, &dns, "dns", "-timeout", "10s", inside, "example.com") {
				return
			}
			if len(dns.Results) != 2 {
				t.Fatalf("FAIL: the probe answered %d results for 2 names", len(dns.Results))
			}
			in, out := dns.Results[0], dns.Results[1]
			switch {
			case in.Error != "" || len(in.Addrs) == 0:
				t.Errorf("FAIL: %s does not resolve (%d ms): %s; the cluster's DNS does not answer, so an outside name failing proves nothing", inside, in.MS, in.Error)
			case out.Error == "":
				t.Errorf("FAIL: example.com resolved to %v from inside the cluster", out.Addrs)
			case !out.NotFound:
				t.Errorf("FAIL: resolving example.com failed (%d ms), but not with NXDOMAIN: %s", out.MS, out.Error)
			case out.MS >= 2000:
				t.Errorf("FAIL: example.com is NXDOMAIN, but only after %d ms (want < 2000): %s", out.MS, out.Error)
			default:
				t.Logf("PASS: %s resolves to %v (%d ms); example.com is NXDOMAIN in %d ms: %s", inside, in.Addrs, in.MS, out.MS, out.Error)
			}
		})
	}
}
