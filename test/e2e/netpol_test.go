//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
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
	// right before and right after the refused attempts. A refused flow to a
	// Service is checked at the Service's address and at each of its pods',
	// so that control and subject meet the same pod.
	//
	// The probes carrying payment's and order's labels are held by those
	// services' egress rules as well as by the target's ingress rules. The
	// "-open" probes carry the same labels plus one that a policy of the
	// suite opens all egress for (NetworkPolicies add up): a flow they are
	// refused is refused by the target's ingress rules alone. A first flow
	// shows the opening works, and that payment's own egress rules refuse
	// what the target would admit: CoreDNS's readiness port, which no policy
	// guards.
	type flow struct {
		name, from, to string
		component      string // the Shop's pods behind to; empty: to is not a Shop Service
		allowed        bool
		control        string // refused flows: a probe allowed to reach the same destination
	}
	dnsReady, err := s.coreDNSReadyAddr(ctx)
	if err != nil {
		t.Fatalf("FAIL: %v", err)
	}
	svc := func(name, port string) string { return s.svcHost(name) + ":" + port }
	const (
		user, order, payment, inventory = string(shopv1.ServiceUser), string(shopv1.ServiceOrder), string(shopv1.ServicePayment), string(shopv1.ServiceInventory)
		postgres, redis                 = builder.ComponentPostgres, builder.ComponentRedis
	)
	flows := []flow{
		{name: "order_to_payment_internal", from: probeOrderNoTLS, to: svc(payment, "9443"), allowed: true},
		{name: "order_to_inventory_internal", from: probeOrderNoTLS, to: svc(inventory, "9443"), allowed: true},
		{name: "gateway_to_user_public", from: probeGateway, to: svc(user, "8443"), allowed: true},
		{name: "monitoring_to_payment_ops", from: probeMonitoring, to: svc(payment, "8081"), allowed: true},
		{name: "payment_egress_to_coredns_ready", from: probeAsPayment, to: dnsReady, control: probeAsPaymentOpen},
		{name: "payment_to_inventory_internal", from: probeAsPayment, to: svc(inventory, "9443"), component: inventory, control: probeOrderNoTLS},
		{name: "payment_to_inventory_internal_by_ingress", from: probeAsPaymentOpen, to: svc(inventory, "9443"), component: inventory, control: probeOrderNoTLS},
		{name: "unlabelled_to_postgres", from: probePlain, to: svc("postgres-rw", "5432"), component: postgres, control: probeOrderNoTLS},
		{name: "unlabelled_to_redis", from: probePlain, to: svc("redis-master", "6379"), component: redis, control: probeOrderNoTLS},
		{name: "unlabelled_to_order_public", from: probePlain, to: svc(order, "8443"), component: order, control: probeGateway},
		{name: "gateway_to_payment_internal", from: probeGateway, to: svc(payment, "9443"), component: payment, control: probeOrderNoTLS},
		{name: "monitoring_to_user_public", from: probeMonitoring, to: svc(user, "8443"), component: user, control: probeGateway},
		{name: "order_to_user_public", from: probeOrderNoTLS, to: svc(user, "8443"), component: user, control: probeGateway},
		{name: "order_to_user_public_by_ingress", from: probeOrderOpen, to: svc(user, "8443"), component: user, control: probeGateway},
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
	// refused: from never reaches to, while control reaches the same
	// address right before and after.
	refused := func(t *testing.T, from, control, to string) {
		t.Helper()
		before, ok := connects(t, control, to)
		if !ok {
			t.Errorf("FAIL: control %s cannot reach %s, so refusing %s proves nothing", control, to, from)
			return
		}
		var res tcpResult
		if !s.mustProbe(t, ctx, from, time.Minute, &res, "tcp", "-attempts", "3", "-timeout", "3s", "-interval", "1s", to) {
			return
		}
		after, ok := connects(t, control, to)
		if !ok {
			t.Errorf("FAIL: control %s stopped reaching %s during the check, so refusing %s proves nothing", control, to, from)
			return
		}
		switch {
		case res.Connected > 0:
			t.Errorf("FAIL: undeclared flow %s -> %s (%s) connected %d of %d times", from, to, res.Resolved, res.Connected, res.Attempts)
		case res.Resolved == "" || res.DNSError != "":
			t.Errorf("FAIL: %s could not resolve %s (%s): a DNS failure is not a policy refusal", from, to, res.failures())
		case res.Resolved != before.Resolved || res.Resolved != after.Resolved:
			t.Errorf("FAIL: %s resolved %s to %s, the control %s to %s then %s: not the same destination",
				from, to, res.Resolved, control, before.Resolved, after.Resolved)
		case !res.onlyDenials():
			t.Errorf("FAIL: undeclared flow %s -> %s (%s) failed, but not as a policy refusal (refused, timeout or unreachable): %s",
				from, to, res.Resolved, res.failures())
		default:
			t.Logf("PASS: undeclared flow %s -> %s (%s) denied %d of %d times (%s), while %s connected to %s right before and after",
				from, to, res.Resolved, res.Attempts, res.Attempts, res.failures(), control, res.Resolved)
		}
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
				refused(t, f.from, f.control, f.to)
				if f.component == "" {
					return
				}
				pods, err := s.pods(ctx, f.component)
				if err != nil {
					t.Fatalf("FAIL: the pods of %s: %v", f.component, err)
				}
				_, port, _ := net.SplitHostPort(f.to)
				checked := 0
				for _, p := range pods {
					// The Service's pods: a pod not Ready yet (an HPA's new
					// one) has no endpoint to compare with.
					if podReady(&p) && p.Status.PodIP != "" {
						refused(t, f.from, f.control, net.JoinHostPort(p.Status.PodIP, port))
						checked++
					}
				}
				if checked == 0 {
					t.Errorf("FAIL: %s has no Ready pod to check (%d pods)", f.component, len(pods))
				}
			})
		}
	})
}

// coreDNSReadyAddr is the address of a Ready cluster DNS pod's readiness
// port (CoreDNS's ready plugin, 8181), which no NetworkPolicy of the suite's
// namespaces allows the Shop's pods to reach.
func (s *suite) coreDNSReadyAddr(ctx context.Context) (string, error) {
	var pods corev1.PodList
	if err := s.c.List(ctx, &pods, client.InNamespace("kube-system"), client.MatchingLabels{"k8s-app": "kube-dns"}); err != nil {
		return "", fmt.Errorf("listing the cluster's DNS pods: %w", err)
	}
	for _, p := range pods.Items {
		if podReady(&p) && p.Status.PodIP != "" {
			return net.JoinHostPort(p.Status.PodIP, "8181"), nil
		}
	}
	return "", fmt.Errorf("no Ready pod labelled k8s-app=kube-dns in kube-system (of %d)", len(pods.Items))
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
