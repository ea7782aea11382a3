package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	"github.com/shopstack/shopstack/internal/builder"
)

const converge = 30 * time.Second

// expectedChildren is what the builders say the stored Shop should become.
func expectedChildren(shop *shopv1.Shop) []client.Object {
	return builder.Build(shop, builder.Inputs{OperatorVersion: "0.1.0", OperatorNamespace: "shopstack-system", JWKS: "known"})
}

// waitForChildren waits until every expected child exists and returns them as stored.
func waitForChildren(t *testing.T, shop *shopv1.Shop) []*unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	var live []*unstructured.Unstructured
	eventually(t, converge, "every child of the Shop exists", func() error {
		live = live[:0]
		var missing []string
		for _, want := range expectedChildren(shop) {
			gvk := want.GetObjectKind().GroupVersionKind()
			u, err := getObject(ctx, gvk.GroupVersion().String(), gvk.Kind, shop.Namespace, want.GetName())
			if apierrors.IsNotFound(err) {
				missing = append(missing, gvk.Kind+"/"+want.GetName())
				continue
			}
			if err != nil {
				return err
			}
			live = append(live, u)
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing %s", strings.Join(missing, ", "))
		}
		return nil
	})
	return live
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GetKind()]++
	}
	return m
}

func TestShopBecomesItsWholeStack(t *testing.T) {
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			ns := newNamespace(t)
			shop := createShop(t, testShop(ns, withMesh(mesh), withAutoscaling(shopv1.ServiceOrder, 2, 6)))
			live := waitForChildren(t, shop)

			got := kinds(live)
			want := map[string]int{
				"Issuer": 2, "Certificate": 8, "NetworkPolicy": 7, "ConfigMap": 3, "Service": 10,
				"StatefulSet": 2, "PodDisruptionBudget": 6, "ServiceAccount": 4, "Deployment": 4,
				"HorizontalPodAutoscaler": 1, "Gateway": 1, "HTTPRoute": 3,
			}
			if mesh == shopv1.MeshIstio {
				want["PeerAuthentication"], want["RequestAuthentication"], want["AuthorizationPolicy"] = 1, 1, 4
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("%d %s objects, want %d", got[k], k, n)
				}
			}

			for _, o := range live {
				refs := o.GetOwnerReferences()
				if len(refs) != 1 || refs[0].UID != shop.UID || !ptr.Deref(refs[0].Controller, false) || refs[0].Kind != "Shop" {
					t.Errorf("%s %s: owner references %+v, want the Shop as controller", o.GetKind(), o.GetName(), refs)
				}
				for _, l := range []string{builder.LabelName, builder.LabelInstance, builder.LabelComponent, builder.LabelPartOf, builder.LabelManagedBy} {
					if o.GetLabels()[l] == "" {
						t.Errorf("%s %s: label %s missing", o.GetKind(), o.GetName(), l)
					}
				}
			}

			// Istio's objects exist only under mesh istio.
			_, err := getObject(context.Background(), "security.istio.io/v1", "PeerAuthentication", ns, "acme-mtls")
			if exists := err == nil; exists != (mesh == shopv1.MeshIstio) {
				t.Errorf("PeerAuthentication exists=%v under mesh %s", exists, mesh)
			}

			// The credentials Secrets exist, without owner under Retain, and the
			// JWKS published matches the signing key.
			for _, kind := range builder.AllCredentials {
				s := &corev1.Secret{}
				if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: builder.CredentialSecretName(shop, kind)}, s); err != nil {
					t.Fatalf("credentials Secret %s: %v", kind, err)
				}
				if len(s.OwnerReferences) != 0 {
					t.Errorf("Secret %s has owner references under deletionPolicy Retain", s.Name)
				}
				if len(s.Data) == 0 {
					t.Errorf("Secret %s is empty", s.Name)
				}
			}
			jwt := &corev1.Secret{}
			_ = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme-jwt-signing"}, jwt)
			cm := &corev1.ConfigMap{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme-jwks"}, cm); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(cm.Data["jwks.json"], `"kid":"`+string(jwt.Data["kid"])+`"`) {
				t.Errorf("JWKS %s does not publish the signing key %s", cm.Data["jwks.json"], jwt.Data["kid"])
			}
		})
	}
}

func TestInvalidShopsAreRefusedWithTheFieldNamed(t *testing.T) {
	ns := newNamespace(t)
	cases := map[string]struct {
		mutate func(*shopv1.Shop)
		want   []string
	}{
		"min replicas above max": {
			func(s *shopv1.Shop) { withAutoscaling(shopv1.ServiceOrder, 5, 3)(s) },
			[]string{"spec.services.order.autoscaling.minReplicas", "must not be greater than maxReplicas"}},
		"synchronous standbys not below instances": {
			func(s *shopv1.Shop) {
				s.Spec.Postgres.Instances = 2
				s.Spec.Postgres.SynchronousStandbys = ptr.To[int32](2)
			},
			[]string{"spec.postgres.synchronousStandbys", "must be less than instances"}},
		"ten postgres instances": {
			func(s *shopv1.Shop) { s.Spec.Postgres.Instances = 10 },
			[]string{"spec.postgres.instances", "less than or equal to 9"}},
		"zero service replicas": {
			func(s *shopv1.Shop) { withReplicas(shopv1.ServiceUser, 0)(s) },
			[]string{"spec.services.user.replicas", "greater than or equal to 1"}},
		"negative redis replicas": {
			func(s *shopv1.Shop) { s.Spec.Redis.Replicas = -1 },
			[]string{"spec.redis.replicas", "greater than or equal to 1"}},
		"host name with an underscore": {
			func(s *shopv1.Shop) { s.Spec.Gateway.Hosts = []shopv1.Hostname{"shop_example.com"} },
			[]string{"spec.gateway.hosts[0]", "should match"}},
		"host name with upper case": {
			func(s *shopv1.Shop) { s.Spec.Gateway.Hosts = []shopv1.Hostname{"Shop.Example.com"} },
			[]string{"spec.gateway.hosts[0]"}},
		"zero storage": {
			func(s *shopv1.Shop) { s.Spec.Postgres.Storage = &shopv1.StorageSpec{Size: resourceQuantity("0")} },
			[]string{"spec.postgres.storage.size", "size must be greater than zero"}},
		"negative storage": {
			func(s *shopv1.Shop) { s.Spec.Redis.Storage = &shopv1.StorageSpec{Size: resourceQuantity("-1Gi")} },
			[]string{"spec.redis.storage.size", "size must be greater than zero"}},
		"unknown mesh": {
			func(s *shopv1.Shop) { s.Spec.Security.Mesh = "linkerd" },
			[]string{"spec.security.mesh", `supported values: "none", "istio"`}},
		"unknown deletion policy": {
			func(s *shopv1.Shop) { s.Spec.DeletionPolicy = "Orphan" },
			[]string{"spec.deletionPolicy", `supported values: "Retain", "Delete"`}},
		"name too long for its children": {
			func(s *shopv1.Shop) { s.Name = "a-shop-name-that-is-far-too-long" },
			[]string{"metadata.name", "must be at most 30 characters"}},
		"name starting with a digit": {
			func(s *shopv1.Shop) { s.Name = "1shop" },
			[]string{"metadata.name must start with a letter"}},
		"CPU target above 100 percent": {
			func(s *shopv1.Shop) {
				withAutoscaling(shopv1.ServiceUser, 1, 2)(s)
				s.Spec.Services.User.Autoscaling.TargetCPUUtilizationPercentage = 150
			},
			[]string{"spec.services.user.autoscaling.targetCPUUtilizationPercentage", "less than or equal to 100"}},
		"source range that is not a CIDR": {
			func(s *shopv1.Shop) { s.Spec.Gateway.AllowedSourceRanges = []shopv1.CIDR{"10.0.0.0/33"} },
			[]string{"spec.gateway.allowedSourceRanges[0]", "must be a CIDR range"}},
		"issuer of an unknown kind": {
			func(s *shopv1.Shop) { s.Spec.Security.IssuerRef = &shopv1.IssuerReference{Name: "ca", Kind: "Vault"} },
			[]string{"spec.security.issuerRef.kind", "supported values"}},
		"a version that cannot be a label value": {
			func(s *shopv1.Shop) { s.Spec.Version = "0.1.0-" },
			[]string{"spec.version", "should match"}},
		"an image with white space": {
			func(s *shopv1.Shop) { s.Spec.Postgres.Image = " postgres:17" },
			[]string{"spec.postgres.image", "should match"}},
		"a host label over 63 characters": {
			func(s *shopv1.Shop) {
				s.Spec.Gateway.Hosts = []shopv1.Hostname{shopv1.Hostname(strings.Repeat("a", 64) + ".com")}
			},
			[]string{"spec.gateway.hosts[0]", "should match"}},
		"an IP address as host": {
			func(s *shopv1.Shop) { s.Spec.Gateway.Hosts = []shopv1.Hostname{"1.2.3.4"} },
			[]string{"spec.gateway.hosts[0]", "must be a host name, not an IP address"}},
		"a wildcard first host": {
			func(s *shopv1.Shop) { s.Spec.Gateway.Hosts = []shopv1.Hostname{"*.example.com", "shop.example.com"} },
			[]string{"spec.gateway.hosts", "must not be a wildcard"}},
		"a fractional storage size": {
			func(s *shopv1.Shop) { s.Spec.Redis.Storage = &shopv1.StorageSpec{Size: resourceQuantity("0.5")} },
			[]string{"spec.redis.storage.size", "whole number of bytes"}},
		"a toleration with Exists and a value": {
			func(s *shopv1.Shop) {
				s.Spec.Scheduling.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "x"}}
			},
			[]string{"spec.scheduling.tolerations", "must not have a value"}},
		"a priority class name with upper case": {
			func(s *shopv1.Shop) { s.Spec.Scheduling.PriorityClassName = "Bad_Name" },
			[]string{"spec.scheduling.priorityClassName", "should match"}},
		"a request above its limit": {
			func(s *shopv1.Shop) {
				serviceOf(s, shopv1.ServiceUser).Resources = &shopv1.Resources{
					Requests: &shopv1.ResourceAmounts{Memory: ptr.To(resourceQuantity("1Gi"))},
					Limits:   &shopv1.ResourceAmounts{Memory: ptr.To(resourceQuantity("1Mi"))},
				}
			},
			[]string{"spec.services.user.resources.requests.memory", "must not exceed the memory limit"}},
		"failover faster than 5 seconds": {
			func(s *shopv1.Shop) { s.Spec.Postgres.FailoverAfterSeconds = 1 },
			[]string{"spec.postgres.failoverAfterSeconds", "greater than or equal to 5"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			shop := testShop(ns)
			shop.Name = "bad"
			tc.mutate(shop)
			err := k8sClient.Create(context.Background(), shop)
			if err == nil {
				t.Fatalf("the API server accepted the Shop")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err.Error(), w)
				}
			}
		})
	}
}

func TestStorageMayGrowButNotShrinkOrChangeClass(t *testing.T) {
	ns := newNamespace(t)
	shop := testShop(ns)
	shop.Spec.Postgres.Storage = &shopv1.StorageSpec{Size: resourceQuantity("10Gi"), StorageClassName: ptr.To("standard")}
	shop = createShop(t, shop)
	waitForChildren(t, shop)
	ctx := context.Background()

	// The volume the StatefulSet controller and a CSI driver made for
	// instance 0, in a class that allows expansion: the API server's
	// PersistentVolumeClaimResize admission checks exactly that.
	pvc := boundClaim(t, ns, "data-acme-postgres-0", builder.Labels(shop, builder.ComponentPostgres))
	old := &appsv1.StatefulSet{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-postgres"}, old); err != nil {
		t.Fatal(err)
	}

	grow := getShop(t, ns, "acme")
	if err := update(grow, func() { grow.Spec.Postgres.Storage.Size = resourceQuantity("20Gi") }); err != nil {
		t.Fatalf("growing the storage was refused: %v", err)
	}
	eventually(t, converge, "the volume is expanded and the StatefulSet released with its pods orphaned", func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pvc), pvc); err != nil {
			return err
		}
		if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "20Gi" {
			return fmt.Errorf("PVC requests %s", got.String())
		}
		sts := &appsv1.StatefulSet{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-postgres"}, sts)
		if err == nil && sts.UID == old.UID && sts.DeletionTimestamp.IsZero() {
			return errors.New("the StatefulSet was not released")
		}
		if err == nil && sts.UID == old.UID && !slices.Contains(sts.Finalizers, metav1.FinalizerOrphanDependents) {
			return fmt.Errorf("released without orphaning its pods (finalizers %v)", sts.Finalizers)
		}
		return client.IgnoreNotFound(err)
	})
	// The garbage collector (not running here) orphans the pods and lets the
	// StatefulSet go; the operator then creates it again with the new template.
	eventually(t, converge, "the old StatefulSet is gone", func() error {
		sts := &appsv1.StatefulSet{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-postgres"}, sts)
		if apierrors.IsNotFound(err) || (err == nil && sts.UID != old.UID) {
			return nil
		}
		if err != nil {
			return err
		}
		sts.Finalizers = nil
		return k8sClient.Update(ctx, sts)
	})
	eventually(t, converge, "the StatefulSet is back with 20Gi volumes", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-postgres"}, sts); err != nil {
			return err
		}
		got := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
		if sts.UID == old.UID || got.String() != "20Gi" {
			return fmt.Errorf("StatefulSet %s with %s volumes", sts.UID, got.String())
		}
		return nil
	})
	if d := condition(t, ns, shopv1.ConditionDegraded); d.Status != metav1.ConditionFalse {
		t.Errorf("Degraded %s: %s", d.Status, d.Message)
	}

	shrink := getShop(t, ns, "acme")
	err := update(shrink, func() { shrink.Spec.Postgres.Storage.Size = resourceQuantity("5Gi") })
	if err == nil || !strings.Contains(err.Error(), "spec.postgres.storage.size") || !strings.Contains(err.Error(), "never shrink") {
		t.Errorf("shrinking: want a refusal naming spec.postgres.storage.size, got %v", err)
	}
	class := getShop(t, ns, "acme")
	err = update(class, func() { class.Spec.Postgres.Storage.StorageClassName = ptr.To("fast") })
	if err == nil || !strings.Contains(err.Error(), "spec.postgres.storage.storageClassName") || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing the class: want a refusal naming spec.postgres.storage.storageClassName, got %v", err)
	}
}

func deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatalf("reading Deployment %s: %v", name, err)
	}
	return d
}

func updateShop(t *testing.T, ns string, mutate func(*shopv1.Shop)) {
	t.Helper()
	s := &shopv1.Shop{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
	if err := update(s, func() { mutate(s) }); err != nil {
		t.Fatalf("updating the Shop: %v", err)
	}
}

func TestSpecChangesReachTheChildren(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns, withReplicas(shopv1.ServiceOrder, 2)))
	waitForChildren(t, shop)
	ctx := context.Background()

	t.Run("replicas", func(t *testing.T) {
		updateShop(t, ns, withReplicas(shopv1.ServiceOrder, 5))
		eventually(t, converge, "order has 5 replicas", func() error {
			if r := ptr.Deref(deployment(t, ns, "acme-order").Spec.Replicas, 0); r != 5 {
				return fmt.Errorf("replicas %d", r)
			}
			return nil
		})
	})

	t.Run("autoscaling on keeps the current size and creates the HPA", func(t *testing.T) {
		updateShop(t, ns, withAutoscaling(shopv1.ServiceOrder, 2, 8))
		eventually(t, converge, "the HPA exists", func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-order"}, &autoscalingv2.HorizontalPodAutoscaler{})
		})
		// The operator let go of spec.replicas without resetting it.
		eventually(t, converge, "the operator no longer owns replicas", func() error {
			d := deployment(t, ns, "acme-order")
			for _, mf := range d.ManagedFields {
				if mf.Manager == apply.FieldOwner && strings.Contains(string(mf.FieldsV1.Raw), `"f:replicas"`) {
					return errors.New("still owned by the operator")
				}
			}
			if r := ptr.Deref(d.Spec.Replicas, 0); r != 5 {
				return fmt.Errorf("replicas %d after handing over to the autoscaler, want 5 kept", r)
			}
			return nil
		})
		// The autoscaler (here: a scale update like the HPA controller's) is not fought.
		var scale autoscalingv1Scale
		if err := scale.set(ctx, ns, "acme-order", 7); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * requeue)
		if r := ptr.Deref(deployment(t, ns, "acme-order").Spec.Replicas, 0); r != 7 {
			t.Errorf("replicas %d after the autoscaler set 7: the operator fought it", r)
		}
	})

	t.Run("autoscaling off removes the HPA and sets replicas", func(t *testing.T) {
		updateShop(t, ns, func(s *shopv1.Shop) {
			s.Spec.Services.Order.Autoscaling = nil
			s.Spec.Services.Order.Replicas = ptr.To[int32](3)
		})
		eventually(t, converge, "the HPA is gone and replicas are 3", func() error {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-order"}, &autoscalingv2.HorizontalPodAutoscaler{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("HPA still there (%v)", err)
			}
			if r := ptr.Deref(deployment(t, ns, "acme-order").Spec.Replicas, 0); r != 3 {
				return fmt.Errorf("replicas %d", r)
			}
			return nil
		})
	})

	t.Run("mesh none to istio and back leaves nothing stale", func(t *testing.T) {
		istioKinds := []string{"PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy"}
		count := func() (int, error) {
			n := 0
			for _, k := range istioKinds {
				l := &unstructured.UnstructuredList{}
				l.SetAPIVersion("security.istio.io/v1")
				l.SetKind(k + "List")
				if err := k8sClient.List(ctx, l, client.InNamespace(ns)); err != nil {
					return 0, err
				}
				n += len(l.Items)
			}
			return n, nil
		}
		updateShop(t, ns, withMesh(shopv1.MeshIstio))
		eventually(t, converge, "6 Istio objects exist", func() error {
			n, err := count()
			if err == nil && n != 6 {
				err = fmt.Errorf("%d Istio objects", n)
			}
			return err
		})
		eventually(t, converge, "the services' pods ask for a sidecar", func() error {
			if v := deployment(t, ns, "acme-user").Spec.Template.Labels["sidecar.istio.io/inject"]; v != "true" {
				return fmt.Errorf("sidecar injection label %q under mesh istio", v)
			}
			return nil
		})
		updateShop(t, ns, withMesh(shopv1.MeshNone))
		eventually(t, converge, "no Istio object is left", func() error {
			n, err := count()
			if err == nil && n != 0 {
				err = fmt.Errorf("%d Istio objects left", n)
			}
			return err
		})
	})
}

func TestDeletedOrEditedChildrenAreRepaired(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)
	ctx := context.Background()

	for _, obj := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "acme-payment", Namespace: ns}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "acme-default-deny", Namespace: ns}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: "acme-order-tls", Namespace: ns}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "acme-postgres", Namespace: ns}},
	} {
		name := fmt.Sprintf("%T %s", obj, obj.GetName())
		t.Run("deleted "+name, func(t *testing.T) {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
			oldUID := obj.GetUID()
			if err := k8sClient.Delete(ctx, obj); err != nil {
				t.Fatal(err)
			}
			eventually(t, converge, name+" is back", func() error {
				fresh := obj.DeepCopyObject().(client.Object)
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
					return err
				}
				if fresh.GetUID() == oldUID {
					return errors.New("still the deleted object")
				}
				return nil
			})
		})
	}

	t.Run("edited Deployment", func(t *testing.T) {
		d := deployment(t, ns, "acme-inventory")
		if err := update(d, func() {
			d.Spec.Template.Spec.Containers[0].Image = "evil.example.com/miner:latest"
			d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
			d.Labels[builder.LabelComponent] = "tampered"
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, converge, "the Deployment is repaired", func() error {
			d := deployment(t, ns, "acme-inventory")
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != "ghcr.io/shopstack/shopstack-inventory:0.1.0" || !ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) ||
				d.Labels[builder.LabelComponent] != "inventory" {
				return fmt.Errorf("image %s, readOnlyRootFilesystem %v, component %s", c.Image, c.SecurityContext.ReadOnlyRootFilesystem, d.Labels[builder.LabelComponent])
			}
			return nil
		})
	})

	t.Run("additions apply cannot undo", func(t *testing.T) {
		d := deployment(t, ns, "acme-order")
		if err := update(d, func() {
			spec := &d.Spec.Template.Spec
			spec.Containers[0].Env = append(spec.Containers[0].Env, corev1.EnvVar{Name: "EVIL", Value: "1"})
			spec.Containers = append(spec.Containers, corev1.Container{Name: "miner", Image: "evil.example.com/miner:latest"})
			spec.HostNetwork = true
		}, client.FieldOwner("intruder")); err != nil {
			t.Fatal(err)
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-user"}}
		clusterIP := ""
		if err := update(svc, func() {
			clusterIP = svc.Spec.ClusterIP
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "debug", Port: 2345})
		}, client.FieldOwner("intruder")); err != nil {
			t.Fatal(err)
		}
		eventually(t, converge, "the intruder's additions are gone", func() error {
			d := deployment(t, ns, "acme-order")
			spec := d.Spec.Template.Spec
			if len(spec.Containers) != 1 || spec.HostNetwork || slices.ContainsFunc(spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "EVIL" }) {
				return fmt.Errorf("%d containers, hostNetwork %v, env %v", len(spec.Containers), spec.HostNetwork, spec.Containers[0].Env)
			}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-user"}, svc); err != nil {
				return err
			}
			if len(svc.Spec.Ports) != 3 {
				return fmt.Errorf("Service ports %v", svc.Spec.Ports)
			}
			if svc.Spec.ClusterIP != clusterIP {
				return fmt.Errorf("the Service's cluster IP changed from %s to %s", clusterIP, svc.Spec.ClusterIP)
			}
			return nil
		})
	})

	t.Run("edited NetworkPolicy", func(t *testing.T) {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-payment"}}
		want := 0
		if err := update(np, func() {
			want = len(np.Spec.Ingress)
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{}) // allow everything
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, converge, "the open rule is removed", func() error {
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-payment"}, np); err != nil {
				return err
			}
			if len(np.Spec.Ingress) != want {
				return fmt.Errorf("%d ingress rules, want %d", len(np.Spec.Ingress), want)
			}
			return nil
		})
	})
}

// markAvailable writes the status a kube-controller-manager and cert-manager
// would write once the pods run and the certificates are issued.
func markAvailable(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	deps := &appsv1.DeploymentList{}
	if err := k8sClient.List(ctx, deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		if err := updateStatus(d, func() {
			n := ptr.Deref(d.Spec.Replicas, 1)
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		}); err != nil {
			t.Fatal(err)
		}
	}
	sets := &appsv1.StatefulSetList{}
	if err := k8sClient.List(ctx, sets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range sets.Items {
		s := &sets.Items[i]
		if err := updateStatus(s, func() {
			n := ptr.Deref(s.Spec.Replicas, 1)
			s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n, CurrentReplicas: n}
		}); err != nil {
			t.Fatal(err)
		}
	}
	certs := &cmapi.CertificateList{}
	if err := k8sClient.List(ctx, certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range certs.Items {
		c := &certs.Items[i]
		if err := updateStatus(c, func() {
			c.Status.Conditions = []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue, Reason: "Issued", Message: "issued"}}
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func condition(t *testing.T, ns, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(getShop(t, ns, "acme").Status.Conditions, typ)
	if c == nil {
		return metav1.Condition{}
	}
	return *c
}

func TestConditionsMoveFromProgressingToReady(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)

	eventually(t, converge, "Progressing says what it waits for", func() error {
		p := condition(t, ns, shopv1.ConditionProgressing)
		r := condition(t, ns, shopv1.ConditionReady)
		if p.Status != metav1.ConditionTrue || !strings.Contains(p.Message, "waiting for pods") || r.Status != metav1.ConditionFalse {
			return fmt.Errorf("Progressing %s %q, Ready %s", p.Status, p.Message, r.Status)
		}
		return nil
	})
	if d := condition(t, ns, shopv1.ConditionDegraded); d.Status != metav1.ConditionFalse {
		t.Errorf("Degraded is %s: %s", d.Status, d.Message)
	}

	markAvailable(t, ns)
	eventually(t, converge, "the Shop is Ready", func() error {
		s := getShop(t, ns, "acme")
		r := meta.FindStatusCondition(s.Status.Conditions, shopv1.ConditionReady)
		p := meta.FindStatusCondition(s.Status.Conditions, shopv1.ConditionProgressing)
		if r == nil || r.Status != metav1.ConditionTrue || p == nil || p.Status != metav1.ConditionFalse {
			return fmt.Errorf("conditions %+v", s.Status.Conditions)
		}
		if r.ObservedGeneration != s.Generation || s.Status.ObservedGeneration != s.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", s.Status.ObservedGeneration, s.Generation)
		}
		if s.Status.ServicesReady != "4/4" || s.Status.Postgres.Primary != "acme-postgres-0" || s.Status.Redis.Master != "acme-redis-0" {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})

	// Events are sent in the background: wait for them.
	eventually(t, converge, "the Shop's events tell its story", func() error {
		events := &corev1.EventList{}
		if err := k8sClient.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			return err
		}
		var reasons []string
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == "Shop" {
				reasons = append(reasons, e.Reason)
			}
		}
		for _, want := range []string{"CreatedSecrets", shopv1.ReasonAvailable} {
			if !slices.Contains(reasons, want) {
				return fmt.Errorf("no %s event on the Shop (events: %s)", want, strings.Join(reasons, ","))
			}
		}
		return nil
	})
}

func TestPausedShopIsLeftAlone(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)
	updateShop(t, ns, func(s *shopv1.Shop) {
		s.Annotations = map[string]string{shopv1.PausedAnnotation: "true"}
		withReplicas(shopv1.ServiceUser, 4)(s)
	})
	eventually(t, converge, "Progressing says paused", func() error {
		if c := condition(t, ns, shopv1.ConditionProgressing); c.Reason != shopv1.ReasonPaused {
			return fmt.Errorf("Progressing %s: %s", c.Reason, c.Message)
		}
		return nil
	})
	time.Sleep(3 * requeue)
	if r := ptr.Deref(deployment(t, ns, "acme-user").Spec.Replicas, 0); r != 2 {
		t.Errorf("a paused Shop's Deployment changed to %d replicas", r)
	}
	updateShop(t, ns, func(s *shopv1.Shop) { delete(s.Annotations, shopv1.PausedAnnotation) })
	eventually(t, converge, "unpaused, the change lands", func() error {
		if r := ptr.Deref(deployment(t, ns, "acme-user").Spec.Replicas, 0); r != 4 {
			return fmt.Errorf("replicas %d", r)
		}
		return nil
	})
}

func TestTheGatewayVerifiesTheServicesOnceTheirCAIsKnown(t *testing.T) {
	ns := newNamespace(t)
	shop := createShop(t, testShop(ns))
	waitForChildren(t, shop)
	ctx := context.Background()

	// What cert-manager writes once it has issued the user service's
	// certificate: the Secret, with the labels of the Certificate's template.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-user-tls", Namespace: ns, Labels: builder.Labels(shop, "user")},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n"),
			"tls.key": []byte("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"),
			"ca.crt":  []byte("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"),
		},
	}
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, "the CA bundle and one BackendTLSPolicy per routed service exist", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme-ca-bundle"}, cm); err != nil {
			return err
		}
		if cm.Data["ca.crt"] != string(secret.Data["ca.crt"]) {
			return fmt.Errorf("ca.crt %q", cm.Data["ca.crt"])
		}
		for _, svc := range []string{"user", "order", "inventory"} {
			u, err := getObject(ctx, "gateway.networking.k8s.io/v1", "BackendTLSPolicy", ns, "acme-"+svc)
			if err != nil {
				return err
			}
			host, _, _ := unstructured.NestedString(u.Object, "spec", "validation", "hostname")
			if host != "acme-"+svc+"."+ns+".svc" {
				return fmt.Errorf("BackendTLSPolicy acme-%s verifies hostname %q", svc, host)
			}
		}
		if _, err := getObject(ctx, "gateway.networking.k8s.io/v1", "BackendTLSPolicy", ns, "acme-payment"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("payment is not routed by the gateway, yet has a BackendTLSPolicy (%v)", err)
		}
		return nil
	})
}
