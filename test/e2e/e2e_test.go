//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// TestE2E runs the checks in order: each builds on the state the ones before
// left (the operator, the Shop, the probe pods, the journey's customer). A
// check whose prerequisite failed is skipped, saying which.
func TestE2E(t *testing.T) {
	s := newSuite(t)
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		// The checks stop in time for the teardown, which gets a context
		// of its own.
		suiteDeadline = d.Add(-teardownReserve)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, suiteDeadline)
		defer cancel()
	}
	t.Logf("cluster from KUBECONFIG, kubectl %q, Shop %s/%s version %s -> %s, pull policy %s",
		s.cfg.kubectl, s.cfg.namespace, shopName, s.cfg.version, s.cfg.nextVersion, s.cfg.pullPolicy)

	s.requireCertManager(t, ctx)
	// Cleanups run last-registered first: the diagnostics see the Shop
	// before the teardown removes it.
	t.Cleanup(func() { s.teardown(t, context.WithoutCancel(ctx)) })
	t.Cleanup(func() {
		if t.Failed() && !s.diagnosedRecently() {
			t.Log("=== diagnostics after a failure")
			s.diagnose(t, context.WithoutCancel(ctx))
		}
	})

	t.Run("0_install_operator", func(t *testing.T) { s.checkInstall(t, ctx) })
	t.Run("1_shop_ready_and_readyz", func(t *testing.T) { s.checkShopReady(t, ctx) })
	t.Run("2_user_journey", func(t *testing.T) { s.checkJourney(t, ctx) })
	t.Run("3_network_policies", func(t *testing.T) { s.checkNetworkPolicies(t, ctx) })
	t.Run("4_mtls", func(t *testing.T) { s.checkMTLS(t, ctx) })
	// The probes carrying a service's labels would count among its pods for
	// the autoscaler and the disruption budget.
	if err := s.deleteProbes(ctx, serviceIdentityProbes...); err != nil {
		t.Errorf("FAIL: deleting the service-labelled probe pods: %v", err)
	}
	t.Run("5_autoscaling", func(t *testing.T) { s.checkAutoscaling(t, ctx) })
	t.Run("6_self_healing_and_rollout", func(t *testing.T) { s.checkSelfHealing(t, ctx) })
	t.Run("7_eviction_respects_pdbs", func(t *testing.T) { s.checkEviction(t, ctx) })
	t.Run("8_containment", func(t *testing.T) { s.checkContainment(t, ctx) })
}

// teardownReserve is the time kept for the diagnostics and the teardown
// (the Shop, the namespaces and the operator, each bounded) after the last
// check.
const teardownReserve = 15 * time.Minute

// requireCertManager stops the suite at once on a cluster without
// cert-manager: every certificate of the Shop comes from it.
func (s *suite) requireCertManager(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, _, err := s.kubectl(ctx, 30*time.Second, "get", "crd", "certificates.cert-manager.io", "issuers.cert-manager.io"); err != nil {
		t.Fatalf("FAIL: the cluster has no cert-manager CRDs (certificates.cert-manager.io, issuers.cert-manager.io); "+
			"the suite needs a cluster that runs cert-manager: %v", err)
	}
}

// checkInstall installs the operator as an admin would and waits for it.
func (s *suite) checkInstall(t *testing.T, ctx context.Context) {
	// What was there before decides what the teardown may delete: deleting
	// config/default deletes the Shop CRD, and with it every Shop in the
	// cluster.
	existing := []string{}
	for _, args := range [][]string{
		{"get", "crd", "shops.shopstack.dev", "--ignore-not-found", "-o", "name"},
		{"-n", operatorNamespace, "get", "deployment", operatorDeployment, "--ignore-not-found", "-o", "name"},
	} {
		out, _, err := s.kubectl(ctx, 30*time.Second, args...)
		if err != nil {
			t.Fatalf("FAIL: cannot tell whether the operator is already installed: %v", err)
		}
		if name := strings.TrimSpace(out); name != "" {
			existing = append(existing, name)
		}
	}
	if len(existing) > 0 {
		t.Logf("the cluster already has %s: applying config/default over it; the teardown will leave the operator in place", strings.Join(existing, ", "))
	}
	s.mu.Lock()
	s.operatorInstalled = len(existing) == 0
	s.mu.Unlock()
	out, _, err := s.kubectl(ctx, 2*time.Minute, "apply", "-k", "config/default")
	if err != nil {
		t.Fatalf("FAIL: kubectl apply -k config/default: %v", err)
	}
	t.Logf("kubectl apply -k config/default:\n%s", out)
	if _, _, err := s.kubectl(ctx, time.Minute, "wait", "--for=condition=Established", "--timeout=50s", "crd/shops.shopstack.dev"); err != nil {
		t.Fatalf("FAIL: the Shop CRD is not established: %v", err)
	}
	if _, _, err := s.kubectl(ctx, 4*time.Minute, "-n", operatorNamespace, "wait", "--for=condition=Available",
		"--timeout=180s", "deployment/"+operatorDeployment); err != nil {
		t.Errorf("FAIL: the operator Deployment is not Available: %v", err)
		for _, args := range [][]string{
			{"-n", operatorNamespace, "get", "pods", "-o", "wide"},
			{"-n", operatorNamespace, "get", "events", "--sort-by=.lastTimestamp"},
			{"-n", operatorNamespace, "logs", "-l", "control-plane=controller-manager", "--tail=40", "--prefix"},
		} {
			out, _, err := s.kubectl(ctx, 30*time.Second, args...)
			t.Logf("$ kubectl %v\n%s%v", args, out, err)
		}
		return
	}
	t.Logf("PASS: the operator is Available in %s", operatorNamespace)
	s.pass(stageInstall)
}

// resources are small requests: the whole Shop must fit a 2-core machine.
func resources(cpu string) *shopv1.Resources {
	return &shopv1.Resources{
		Requests: &shopv1.ResourceAmounts{CPU: ptr.To(resource.MustParse(cpu)), Memory: ptr.To(resource.MustParse("64Mi"))},
		Limits:   &shopv1.ResourceAmounts{Memory: ptr.To(resource.MustParse("256Mi"))},
	}
}

// newShop is the Shop under test. user and order are autoscaled from one
// pod (user is the one check 5 loads: its token endpoint hashes passwords
// with argon2id, real CPU work); payment has a single pod and inventory
// two, so check 7 evicts both kinds.
func (s *suite) newShop() *shopv1.Shop {
	autoscaled := func() *shopv1.ServiceSpec {
		return &shopv1.ServiceSpec{
			Autoscaling: &shopv1.AutoscalingSpec{MinReplicas: 1, MaxReplicas: 3, TargetCPUUtilizationPercentage: 50},
			Resources:   resources("50m"),
		}
	}
	return &shopv1.Shop{
		ObjectMeta: metav1.ObjectMeta{Name: shopName, Namespace: s.cfg.namespace},
		Spec: shopv1.ShopSpec{
			Version:         s.cfg.version,
			ImagePullPolicy: s.cfg.pullPolicy,
			Services: shopv1.ServicesSpec{
				User:      autoscaled(),
				Order:     autoscaled(),
				Payment:   &shopv1.ServiceSpec{Replicas: ptr.To[int32](1), Resources: resources("50m")},
				Inventory: &shopv1.ServiceSpec{Replicas: ptr.To[int32](2), Resources: resources("50m")},
			},
			Postgres: shopv1.PostgresSpec{
				Instances: 1,
				Image:     shopv1.Image(s.cfg.postgresImage),
				Storage:   &shopv1.StorageSpec{Size: resource.MustParse("1Gi")},
			},
			Redis: shopv1.RedisSpec{
				Replicas: 1,
				Image:    shopv1.Image(s.cfg.redisImage),
				Storage:  &shopv1.StorageSpec{Size: resource.MustParse("256Mi")},
			},
			Security:       shopv1.SecuritySpec{Mesh: shopv1.MeshNone, NetworkPolicies: ptr.To(true)},
			DeletionPolicy: shopv1.DeletionDelete,
		},
	}
}

// namespaces are the Shop's and the monitoring one, both under the
// restricted Pod Security Standard.
func (s *suite) namespaces() []*corev1.Namespace {
	restricted := func(name string, extra map[string]string) *corev1.Namespace {
		l := map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
			suiteLabel:                           "true",
		}
		for k, v := range extra {
			l[k] = v
		}
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	return []*corev1.Namespace{
		restricted(s.cfg.namespace, nil),
		restricted(s.cfg.monitoringNS, map[string]string{"shopstack.dev/monitoring": "true"}),
	}
}

// suiteLabel marks the namespaces the suite created, which it may delete.
const suiteLabel = "e2e.shopstack.dev/suite"

// createNamespaces creates the namespaces, first removing ones a kept
// earlier run left behind (only those the suite labelled).
func (s *suite) createNamespaces(t *testing.T, ctx context.Context) bool {
	t.Helper()
	for _, ns := range s.namespaces() {
		old := &corev1.Namespace{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(ns), old); err == nil {
			if old.Labels[suiteLabel] != "true" {
				t.Errorf("FAIL: namespace %s exists and was not created by this suite; set E2E_NAMESPACE to another name", ns.Name)
				return false
			}
			t.Logf("deleting namespace %s left by an earlier run", ns.Name)
			if err := s.c.Delete(ctx, old); ignoreNotFound(err) != nil {
				t.Errorf("FAIL: %v", err)
				return false
			}
			if err := s.waitGone(ctx, old, 4*time.Minute); err != nil {
				t.Errorf("FAIL: %v", err)
				return false
			}
		}
		if err := s.c.Create(ctx, ns); err != nil {
			t.Errorf("FAIL: creating namespace %s: %v", ns.Name, err)
			return false
		}
	}
	return true
}

// teardown deletes what the suite created, unless E2E_KEEP=1: the Shop and
// the namespaces that carry the suite's label, and the operator only when
// check 0 installed it into a cluster that had none.
func (s *suite) teardown(t *testing.T, ctx context.Context) {
	if s.cfg.keep {
		t.Logf("E2E_KEEP=1: leaving the operator, Shop %s/%s and namespaces %s, %s in place",
			s.cfg.namespace, shopName, s.cfg.namespace, s.cfg.monitoringNS)
		return
	}
	start := time.Now()
	// Only namespaces whose live object carries the suite's label are the
	// suite's (createNamespaces refuses any other).
	var ours []*corev1.Namespace
	for _, ns := range s.namespaces() {
		live := &corev1.Namespace{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(ns), live)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			t.Errorf("teardown: reading namespace %s: %v; leaving it", ns.Name, err)
		case live.Labels[suiteLabel] != "true":
			t.Logf("teardown: namespace %s does not carry %s=true, the suite did not create it: leaving it", ns.Name, suiteLabel)
		default:
			ours = append(ours, live)
		}
	}
	shopNSOurs := slices.ContainsFunc(ours, func(ns *corev1.Namespace) bool { return ns.Name == s.cfg.namespace })
	if shopNSOurs {
		shop := &shopv1.Shop{ObjectMeta: metav1.ObjectMeta{Name: shopName, Namespace: s.cfg.namespace}}
		if err := s.c.Delete(ctx, shop); ignoreNotFound(err) != nil && !isNoKind(err) {
			t.Errorf("teardown: deleting the Shop: %v", err)
		} else if err == nil {
			if err := s.waitGone(ctx, shop, 2*time.Minute); err != nil {
				t.Errorf("teardown: %v", err)
			}
		}
	}
	for _, ns := range ours {
		if err := s.c.Delete(ctx, ns, client.Preconditions{UID: &ns.UID}); ignoreNotFound(err) != nil {
			t.Errorf("teardown: deleting namespace %s: %v", ns.Name, err)
		}
	}
	for _, ns := range ours {
		if err := s.waitGone(ctx, ns, 4*time.Minute); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
	s.mu.Lock()
	installed := s.operatorInstalled
	s.mu.Unlock()
	operator := "operator left in place (the suite did not install it)"
	if installed {
		if _, _, err := s.kubectl(ctx, 5*time.Minute, "delete", "-k", "config/default", "--ignore-not-found", "--wait=true", "--timeout=4m"); err != nil {
			t.Errorf("teardown: kubectl delete -k config/default: %v", err)
		}
		operator = "operator deleted"
	}
	t.Logf("teardown in %s: %d namespaces of the suite deleted (Shop deleted: %v); %s",
		time.Since(start).Round(time.Second), len(ours), shopNSOurs, operator)
}

// isNoKind: the Shop CRD is not installed (the install failed early).
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }
