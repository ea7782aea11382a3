//go:build e2e

package e2e

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// checkContainment checks that a pod has no way out of the cluster: no route
// leads outside the pod and Service ranges, a name outside the cluster
// fails to resolve with NXDOMAIN, fast (the cluster's DNS has no upstream),
// while a name inside it resolves in the same call, and no service of the
// node itself answers a pod but the API server (one that did could relay
// it anywhere). It runs in the gateway's probe, whose egress no
// NetworkPolicy restricts, in the unlabelled one and in the monitoring
// namespace's.
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
			s.checkHostServices(t, ctx, role, routes)
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

// checkHostServices: from the probe of role, the API server (through the
// kubernetes Service) connects, and a port the node listens on at every
// address does not, at the pod's gateway (the node's address on the pod
// network) nor at the node's address. The listener is the suite's own, so
// this runs only where the suite runs on the node (E2E_ON_NODE=1, set by
// make e2e-local); the host reaches it at 127.0.0.1 first, so it listens.
func (s *suite) checkHostServices(t *testing.T, ctx context.Context, role string, routes routesResult) {
	t.Helper()
	if !s.cfg.onNode {
		t.Log("the suite does not run on the node (E2E_ON_NODE unset): the node's services are not checked")
		return
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatalf("listening on the node: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 2*time.Second); err != nil {
		t.Fatalf("the suite's listener on port %s does not answer the node itself: %v", port, err)
	} else {
		c.Close()
	}
	pod := &corev1.Pod{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.probeNamespace(role), Name: probePodName(role)}, pod); err != nil {
		t.Errorf("FAIL: probe %s: %v", role, err)
		return
	}
	targets := map[string]bool{}
	for _, r := range routes.Routes {
		if r.Gateway != "" {
			targets[r.Gateway] = true
		}
	}
	if len(targets) == 0 {
		t.Errorf("FAIL: probe %s has no route through a gateway: %+v", role, routes.Routes)
		return
	}
	if pod.Status.HostIP != "" {
		targets[pod.Status.HostIP] = true
	}
	api := "kubernetes.default.svc.cluster.local:443"
	var control tcpResult
	if !s.mustProbe(t, ctx, role, time.Minute, &control, "tcp", "-attempts", "5", "-timeout", "2s", "-until-connected", api) {
		return
	}
	if control.Connected == 0 {
		t.Errorf("FAIL: the API server (%s, %s) does not connect from %s: %s", api, control.Resolved, role, control.failures())
		return
	}
	for addr := range targets {
		to := net.JoinHostPort(addr, port)
		var res tcpResult
		if !s.mustProbe(t, ctx, role, time.Minute, &res, "tcp", "-attempts", "2", "-timeout", "2s", to) {
			continue
		}
		switch {
		case res.Connected > 0:
			t.Errorf("FAIL: a port the node listens on answers probe %s at %s: the node's own services are within the pods' reach", role, to)
		case !res.onlyDenials():
			t.Errorf("FAIL: the node's port at %s failed from %s, but not as a refusal: %s", to, role, res.failures())
		default:
			t.Logf("PASS: the API server connects (%s); the node's own listener at %s does not (%s)", control.Resolved, to, res.failures())
		}
	}
}
