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
	if err := s.c.Create(ctx, s.egressOpenPolicy()); err != nil {
		t.Fatalf("FAIL: creating the suite's NetworkPolicy %s: %v", s.egressOpenPolicy().Name, err)
	}
	if err := s.c.Create(ctx, s.newShop()); err != nil {
		t.Fatalf("FAIL: creating the Shop: %v", err)
	}
	// The probe pods start while the Shop comes up (each once the Secrets it
	// mounts exist), so they can also help tell why it does not.
	probesCreated := s.createProbes(t, ctx, s.probeSpecs())
	if !s.waitShopReady(t, ctx, 6*time.Minute) {
		if probesCreated {
			s.diagnoseNetwork(t, ctx)
		}
		return
	}
	t.Log("PASS: the Shop is Ready=True")
	s.pass(stageReady)

	t.Run("probe_pods_running", func(t *testing.T) {
		if probesCreated && s.waitProbes(t, ctx, s.probeSpecs()) {
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

// diagnoseNetwork asks, from probe pods, the questions a Shop that does not
// come up most often needs answered: can a pod the Shop's NetworkPolicies
// select (order's labels) resolve names and reach Postgres, and can a pod
// no policy selects resolve them.
func (s *suite) diagnoseNetwork(t *testing.T, ctx context.Context) {
	t.Helper()
	names := []string{s.svcHost("postgres-rw") + ".cluster.local", "kubernetes.default.svc.cluster.local"}
	resolves := map[string]bool{}
	for _, role := range []string{probeOrderNoTLS, probePlain} {
		if err := s.waitProbeRunning(ctx, s.probeNamespace(role), probePodName(role), 30*time.Second); err != nil {
			t.Logf("network diagnosis: %v", err)
			continue
		}
		var dns dnsResult
		if err := s.probe(ctx, role, time.Minute, &dns, append([]string{"dns", "-timeout", "5s"}, names...)...); err != nil {
			t.Logf("network diagnosis: %v", err)
			continue
		}
		resolves[role] = true
		for _, r := range dns.Results {
			if r.Error != "" {
				resolves[role] = false
				t.Logf("network diagnosis: probe %q cannot resolve %s: %s", role, r.Name, r.Error)
			} else {
				t.Logf("network diagnosis: probe %q resolves %s to %v", role, r.Name, r.Addrs)
			}
		}
	}
	var tcp tcpResult
	if err := s.probe(ctx, probeOrderNoTLS, time.Minute, &tcp, "tcp", "-attempts", "1", "-timeout", "3s", s.svcHost("postgres-rw")+":5432"); err == nil {
		t.Logf("network diagnosis: probe %q (order's labels) to Postgres: %d of %d connected %v", probeOrderNoTLS, tcp.Connected, tcp.Attempts, tcp.Errors)
	}
	if resolves[probePlain] && !resolves[probeOrderNoTLS] {
		t.Log("network diagnosis: DNS works outside the Shop's NetworkPolicies but not under them: the default-deny policy " +
			"lets the Shop's pods send DNS only to pods labelled k8s-app=kube-dns in kube-system, and this cluster's DNS " +
			"server is not such a pod (a host process or a node-local cache, for example)")
	}
}
