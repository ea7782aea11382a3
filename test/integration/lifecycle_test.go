package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/builder"
)

// reconciles counts the Shop controller's finished reconciles in this process.
func reconciles(t *testing.T) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "shop" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func resourceVersions(t *testing.T, shop *shopv1.Shop) map[string]string {
	t.Helper()
	rvs := map[string]string{"Shop": getShop(t, shop.Namespace, shop.Name).ResourceVersion}
	for _, o := range waitForChildren(t, shop) {
		rvs[o.GetKind()+"/"+o.GetName()] = o.GetResourceVersion()
	}
	for _, kind := range builder.AllCredentials {
		s := &corev1.Secret{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: shop.Namespace, Name: builder.CredentialSecretName(shop, kind)}, s); err != nil {
			t.Fatal(err)
		}
		rvs["Secret/"+s.Name] = s.ResourceVersion
	}
	return rvs
}

func TestAnIdleShopWritesNothing(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns, withMesh(shopv1.MeshIstio), withAutoscaling(shopv1.ServiceOrder, 2, 5)))
	waitForChildren(t, shop)
	// Let the first passes (children created, status written) settle.
	eventually(t, converge, "the status settles", func() error {
		a := getShop(t, ns, "acme").ResourceVersion
		time.Sleep(4 * requeue)
		if b := getShop(t, ns, "acme").ResourceVersion; a != b {
			return fmt.Errorf("the Shop still changes (%s -> %s)", a, b)
		}
		return nil
	})

	before := resourceVersions(t, shop)
	n0 := reconciles(t)
	// The Shop is not Ready (no pods here), so it is reconciled every requeue.
	time.Sleep(8 * requeue)
	if n := reconciles(t) - n0; n < 3 {
		t.Fatalf("only %.0f reconciles happened while idle; the test proves nothing", n)
	}
	after := resourceVersions(t, shop)
	for k, rv := range before {
		if after[k] != rv {
			t.Errorf("%s was written while the Shop was unchanged (resourceVersion %s -> %s)", k, rv, after[k])
		}
	}
}

func secretData(t *testing.T, ns, name string) map[string][]byte {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("reading Secret %s: %v", name, err)
	}
	return s.Data
}

func TestCredentialsAreCreatedOnceAndSurviveTheShop(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)
	first := map[string]map[string][]byte{}
	for _, kind := range builder.AllCredentials {
		name := builder.CredentialSecretName(shop, kind)
		first[name] = secretData(t, ns, name)
	}

	// A change to the spec never regenerates them.
	updateShop(t, ns, withReplicas(shopv1.ServiceUser, 3))
	time.Sleep(3 * requeue)

	// Deleting the Shop under Retain leaves them; a new Shop of the same name adopts them.
	if err := k8sClient.Delete(ctx, getShop(t, ns, "acme")); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, "the Shop is gone", func() error {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme"}, &shopv1.Shop{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	again := createShop(t, testShop(ns))
	waitForChildren(t, again)
	for name, data := range first {
		got := secretData(t, ns, name)
		for k, v := range data {
			if string(got[k]) != string(v) {
				t.Errorf("Secret %s key %s changed", name, k)
			}
		}
	}
	cm := &corev1.ConfigMap{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-jwks"}, cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["jwks.json"], string(first["acme-jwt-signing"]["kid"])) {
		t.Errorf("the adopted signing key is not the one published")
	}
}

func TestCredentialsUnderDeletePolicyAreOwned(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns, withDeletionPolicy(shopv1.DeletionDelete)))
	waitForChildren(t, shop)
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme-postgres-credentials"}, s); err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != shop.UID {
		t.Errorf("owner references %+v, want the Shop", s.OwnerReferences)
	}
}

func TestALostCredentialsSecretWithDataIsReportedNotRegenerated(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)

	// The volume the StatefulSet controller would have made for instance 0.
	postgresClaim(t, shop)
	if err := k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-postgres-credentials", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, "Degraded names the lost Secret", func() error {
		c := condition(t, ns, shopv1.ConditionDegraded)
		if c.Status != metav1.ConditionTrue || c.Reason != shopv1.ReasonCredentialsLost || !strings.Contains(c.Message, "acme-postgres-credentials") {
			return fmt.Errorf("Degraded %s %s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	time.Sleep(3 * requeue)
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-postgres-credentials"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a new credentials Secret was generated over existing data (%v)", err)
	}
	// The payment key is still there: only what is lost is reported.
	secretData(t, ns, "acme-payment-key")
}

func TestARestoredSecretWithoutLabelsIsUsedNotReportedLost(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)
	original := secretData(t, ns, "acme-postgres-credentials")
	postgresClaim(t, shop)
	// An admin restores the Secret from a backup that dropped its labels: it
	// is invisible to the operator's label-selected cache.
	if err := k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-postgres-credentials", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	restored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-postgres-credentials", Namespace: ns}, Data: original}
	if err := k8sClient.Create(ctx, restored); err != nil {
		t.Fatal(err)
	}
	updateShop(t, ns, withReplicas(shopv1.ServiceUser, 3)) // make sure a reconcile runs
	eventually(t, converge, "the change lands", func() error {
		if r := ptr.Deref(deployment(t, ns, "acme-user").Spec.Replicas, 0); r != 3 {
			return fmt.Errorf("replicas %d", r)
		}
		return nil
	})
	if c := condition(t, ns, shopv1.ConditionDegraded); c.Status != metav1.ConditionFalse {
		t.Errorf("Degraded %s %s: %s", c.Status, c.Reason, c.Message)
	}
	got := secretData(t, ns, "acme-postgres-credentials")
	for k, v := range original {
		if string(got[k]) != string(v) {
			t.Errorf("the restored Secret's key %s was changed", k)
		}
	}
}

// postgresClaim creates the (unbound) volume claim of Postgres instance 0, as
// the StatefulSet controller would: proof that the Shop's data exists.
func postgresClaim(t *testing.T, shop *shopv1.Shop) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-acme-postgres-0", Namespace: shop.Namespace, Labels: builder.Labels(shop, builder.ComponentPostgres)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if err := k8sClient.Create(context.Background(), pvc); err != nil {
		t.Fatal(err)
	}
}

func ownedByShop(s *corev1.Secret) bool {
	for _, ref := range s.OwnerReferences {
		if ref.Kind == "Shop" {
			return true
		}
	}
	return false
}

func TestCredentialsOwnershipFollowsTheDeletionPolicy(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	shop := createShop(t, testShop(ns, withDeletionPolicy(shopv1.DeletionDelete)))
	waitForChildren(t, shop)
	before := secretData(t, ns, "acme-admin")
	for _, policy := range []shopv1.DeletionPolicy{shopv1.DeletionRetain, shopv1.DeletionDelete} {
		updateShop(t, ns, withDeletionPolicy(policy))
		eventually(t, converge, "every credentials Secret follows deletionPolicy "+string(policy), func() error {
			for _, kind := range builder.AllCredentials {
				s := &corev1.Secret{}
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: builder.CredentialSecretName(shop, kind)}, s); err != nil {
					return err
				}
				if owned := ownedByShop(s); owned != (policy == shopv1.DeletionDelete) {
					return fmt.Errorf("Secret %s owned by the Shop: %v", s.Name, owned)
				}
			}
			return nil
		})
	}
	after := secretData(t, ns, "acme-admin")
	if string(after["password"]) != string(before["password"]) {
		t.Error("changing the owner changed the admin password")
	}
}

func TestAnUnusableCredentialsSecretIsReportedNotOverwritten(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	// An admin applied empty Secrets (say, from a rendered manifest) before the Shop.
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-payment-key", Namespace: ns}}
	if err := k8sClient.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	createShop(t, testShop(ns))
	eventually(t, converge, "Degraded names the unusable Secret", func() error {
		c := condition(t, ns, shopv1.ConditionDegraded)
		if c.Status != metav1.ConditionTrue || c.Reason != shopv1.ReasonCredentialsInvalid ||
			!strings.Contains(c.Message, "acme-payment-key") || !strings.Contains(c.Message, "encryption.key") {
			return fmt.Errorf("Degraded %s %s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	if got := secretData(t, ns, "acme-payment-key"); len(got) != 0 {
		t.Errorf("the operator wrote into an existing Secret: %v", got)
	}
}

func TestAProblemTheSchemaCannotCatchIsReportedByField(t *testing.T) {
	ns := newNamespace(t)
	shop := testShop(ns)
	shop.Spec.Scheduling.NodeSelector = map[string]string{"bad key!": "x"}
	createShop(t, shop)
	eventually(t, converge, "Degraded names the bad node selector key", func() error {
		c := condition(t, ns, shopv1.ConditionDegraded)
		if c.Status != metav1.ConditionTrue || c.Reason != shopv1.ReasonInvalidSpec ||
			!strings.Contains(c.Message, `spec.scheduling.nodeSelector: key "bad key!"`) {
			return fmt.Errorf("Degraded %s %s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme-user"}, &corev1.ServiceAccount{}); !apierrors.IsNotFound(err) {
		t.Errorf("children were applied for a spec that cannot be carried out (%v)", err)
	}
}
