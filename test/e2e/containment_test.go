//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"
)

// checkContainment checks that a pod has no way out of the cluster: no route
// leads outside the pod and Service ranges, and a name outside the cluster
// fails to resolve, fast (the cluster's DNS has no upstream). It runs in the
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
			var dns dnsResult
			if !s.mustProbe(t, ctx, role, time.Minute, &dns, "dns", "-timeout", "10s", "example.com") {
				return
			}
			r := dns.Results[0]
			switch {
			case r.Error == "":
				t.Errorf("FAIL: example.com resolved to %v from inside the cluster", r.Addrs)
			case r.MS >= 2000:
				t.Errorf("FAIL: resolving example.com failed, but only after %d ms (want < 2000): %s", r.MS, r.Error)
			default:
				t.Logf("PASS: example.com does not resolve (%d ms): %s", r.MS, r.Error)
			}
		})
	}
}
