//go:build e2e

package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// checkShopReady applies the Shop, waits for Ready, starts the probe pods and
// asks every service pod for /readyz on its ops port.
//
// The ops port (8081) is admitted by the Shops' NetworkPolicies only from
// namespaces labelled shopstack.dev/monitoring=true (the call graph's
// Monitoring peer), so the request comes from a probe pod in such a
// namespace: the path Prometheus would take. A port-forward or the API
// server's pod proxy would enter from the node instead, a path the policies
// do not describe.
func (s *suite) checkShopReady(t *testing.T, ctx context.Context) {
	s.need(t, stageInstall)
	if !s.createNamespaces(t, ctx) {
		return
	}
	if err := s.c.Create(ctx, s.newShop()); err != nil {
		t.Fatalf("FAIL: creating the Shop: %v", err)
	}
	if !s.waitShopReady(t, ctx, 6*time.Minute) {
		return
	}
	t.Log("PASS: the Shop is Ready=True")
	s.pass(stageReady)

	t.Run("probe_pods_running", func(t *testing.T) {
		if s.startProbes(t, ctx, s.probeSpecs()) {
			t.Log("PASS: every probe pod runs")
			s.pass(stageProbes)
		}
	})
	t.Run("readyz_on_every_service_pod", func(t *testing.T) {
		s.need(t, stageProbes)
		for _, svc := range shopv1.AllServices {
			pods, err := s.pods(ctx, string(svc))
			if err != nil {
				t.Fatal(err)
			}
			if len(pods) == 0 {
				t.Errorf("FAIL: %s has no pods", svc)
			}
			for _, p := range pods {
				url := "http://" + net.JoinHostPort(p.Status.PodIP, "8081") + "/readyz"
				var res httpResult
				if !s.mustProbe(t, ctx, probeMonitoring, time.Minute, &res, "http", "-attempts", "5", "-want-status", "200", url) {
					continue
				}
				if res.Status != 200 {
					t.Errorf("FAIL: %s pod %s %s: %s", svc, p.Name, url, res)
					continue
				}
				t.Logf("PASS: %s pod %s answers /readyz 200 (%d ms)", svc, p.Name, res.MS)
			}
		}
	})
}
