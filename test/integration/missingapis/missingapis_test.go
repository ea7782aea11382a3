// Package missingapis runs the manager on a control plane without the
// cert-manager, Gateway API and Istio CRDs, then installs them while it runs.
package missingapis

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/localcp"
	"github.com/shopstack/shopstack/internal/operator"
)

func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMissingCRDsDegradeTheShopAndAreLaterPickedUp(t *testing.T) {
	env, cfg, err := localcp.Start(localcp.Options{ThirdParty: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := operator.New(cfg, operator.Options{
		Metrics: metricsserver.Options{BindAddress: "0"}, ProbeAddr: "0", RequeueAfter: 500 * time.Millisecond, SkipNameValidate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	shop := &shopv1.Shop{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "shop"},
		Spec: shopv1.ShopSpec{
			Security: shopv1.SecuritySpec{Mesh: shopv1.MeshIstio},
			Gateway:  shopv1.GatewaySpec{Hosts: []shopv1.Hostname{"shop.example.com"}},
		},
	}
	if err := c.Create(ctx, shop); err != nil {
		t.Fatal(err)
	}

	degraded := func() (*metav1.Condition, error) {
		s := &shopv1.Shop{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(shop), s); err != nil {
			return nil, err
		}
		d := meta.FindStatusCondition(s.Status.Conditions, shopv1.ConditionDegraded)
		if d == nil {
			return nil, fmt.Errorf("no Degraded condition yet")
		}
		return d, nil
	}
	eventually(t, "Degraded names each missing project", func() error {
		d, err := degraded()
		if err != nil {
			return err
		}
		for _, want := range []string{"cert-manager.io/v1 (cert-manager", "Certificate", "Issuer", "gateway.networking.k8s.io/v1 (Gateway API", "security.istio.io/v1 (Istio", "AuthorizationPolicy"} {
			if d.Status != metav1.ConditionTrue || d.Reason != shopv1.ReasonMissingAPIs || !strings.Contains(d.Message, want) {
				return fmt.Errorf("Degraded %s %s %q lacks %q", d.Status, d.Reason, d.Message, want)
			}
		}
		return nil
	})
	// The rest of the stack is applied all the same.
	for _, name := range []string{"acme-user", "acme-order", "acme-payment", "acme-inventory"} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, &appsv1.Deployment{}); err != nil {
			t.Errorf("Deployment %s: %v", name, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "acme-postgres"}, &appsv1.StatefulSet{}); err != nil {
		t.Errorf("Postgres StatefulSet: %v", err)
	}

	// cert-manager arrives while the manager runs: its objects follow and the message shrinks.
	root, err := localcp.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join(root, "config", "thirdparty", "cert-manager")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Certificates are created", func() error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("cert-manager.io/v1")
		u.SetKind("Certificate")
		return c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "acme-order-tls"}, u)
	})
	eventually(t, "Degraded no longer names cert-manager", func() error {
		d, err := degraded()
		if err != nil {
			return err
		}
		if strings.Contains(d.Message, "cert-manager") || !strings.Contains(d.Message, "Istio") {
			return fmt.Errorf("Degraded message %q", d.Message)
		}
		return nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("the manager stopped: %v", err)
	default:
	}
}
