package builder

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/google/go-cmp/cmp"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// istioObjects lists the Kind/name of every Istio object among objs.
func istioObjects(objs []client.Object) []string {
	var out []string
	for _, name := range kindNames(objs) {
		kind, _, _ := strings.Cut(name, "/")
		switch kind {
		case "PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy":
			out = append(out, name)
		}
	}
	return out
}

func TestBuildIstioObjectsFollowTheMesh(t *testing.T) {
	tests := map[string]struct {
		shop *shopv1.Shop
		want []string
	}{
		"mesh none creates no Istio object": {
			shop: testShop(withMesh(shopv1.MeshNone), withHosts(testHost), withSourceRanges("10.0.0.0/8")),
			want: nil,
		},
		"mesh unset means none": {
			shop: testShop(),
			want: nil,
		},
		"mesh istio adds mTLS, JWT validation and one authorization policy per service": {
			shop: testShop(withMesh(shopv1.MeshIstio)),
			want: []string{
				"AuthorizationPolicy/acme-inventory",
				"AuthorizationPolicy/acme-order",
				"AuthorizationPolicy/acme-payment",
				"AuthorizationPolicy/acme-user",
				"PeerAuthentication/acme-mtls",
				"RequestAuthentication/acme-jwt",
			},
		},
		"mesh istio with source ranges also guards the gateway": {
			shop: testShop(withMesh(shopv1.MeshIstio), withHosts(testHost), withSourceRanges("10.0.0.0/8")),
			want: []string{
				"AuthorizationPolicy/acme-gateway",
				"AuthorizationPolicy/acme-inventory",
				"AuthorizationPolicy/acme-order",
				"AuthorizationPolicy/acme-payment",
				"AuthorizationPolicy/acme-user",
				"PeerAuthentication/acme-mtls",
				"RequestAuthentication/acme-jwt",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := istioObjects(Build(tc.shop, testInputs()))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Istio objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildWaitsForTheJWKS(t *testing.T) {
	tests := map[string]struct {
		jwks        string
		wantPresent bool
	}{
		"without a signing key there is nothing to publish": {jwks: "", wantPresent: false},
		"with a signing key the JWKS is published":          {jwks: testJWKS, wantPresent: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := testInputs()
			in.JWKS = tc.jwks
			objs := Build(testShop(withMesh(shopv1.MeshIstio)), in)

			cm, hasCM := lookup[*corev1.ConfigMap](objs, "acme-jwks")
			ra, hasRA := lookup[*securityv1.RequestAuthentication](objs, "acme-jwt")
			if hasCM != tc.wantPresent || hasRA != tc.wantPresent {
				t.Fatalf("ConfigMap acme-jwks present=%v, RequestAuthentication acme-jwt present=%v; want both %v", hasCM, hasRA, tc.wantPresent)
			}
			if !tc.wantPresent {
				return
			}
			if got := cm.Data[JWKSKey]; got != tc.jwks {
				t.Errorf("ConfigMap %s = %q, want the JWKS %q", JWKSKey, got, tc.jwks)
			}
			if n := len(ra.Spec.JwtRules); n != 1 {
				t.Fatalf("RequestAuthentication has %d JWT rules, want 1", n)
			}
			rule := ra.Spec.JwtRules[0]
			if rule.Jwks != tc.jwks {
				t.Errorf("RequestAuthentication jwks = %q, want the inline JWKS %q", rule.Jwks, tc.jwks)
			}
			if want := "https://" + Name(testShop(), "user") + ".shop.svc"; rule.Issuer != want {
				t.Errorf("issuer without a host = %q, want %q", rule.Issuer, want)
			}
		})
	}
}

func TestDeploymentReplicas(t *testing.T) {
	tests := map[string]struct {
		shop         *shopv1.Shop
		wantReplicas *int32
		wantHPA      *autoscalingv2.HorizontalPodAutoscalerSpec
	}{
		"unset: two fixed replicas": {
			shop:         testShop(),
			wantReplicas: ptr.To[int32](2),
		},
		"fixed replicas": {
			shop:         testShop(withReplicas(shopv1.ServiceOrder, 3)),
			wantReplicas: ptr.To[int32](3),
		},
		"autoscaling leaves replicas to the autoscaler": {
			shop:         testShop(withAutoscaling(shopv1.ServiceOrder, 3, 7)),
			wantReplicas: nil,
			wantHPA:      orderCPUAutoscaler(3, 7),
		},
		"autoscaling wins over replicas": {
			shop:         testShop(withReplicas(shopv1.ServiceOrder, 5), withAutoscaling(shopv1.ServiceOrder, 2, 4)),
			wantReplicas: nil,
			wantHPA:      orderCPUAutoscaler(2, 4),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := Build(tc.shop, testInputs())
			d := find[*appsv1.Deployment](t, objs, "acme-order")
			if diff := cmp.Diff(tc.wantReplicas, d.Spec.Replicas); diff != "" {
				t.Errorf("Deployment spec.replicas (-want +got):\n%s", diff)
			}
			hpa, ok := lookup[*autoscalingv2.HorizontalPodAutoscaler](objs, "acme-order")
			if tc.wantHPA == nil {
				if ok {
					t.Errorf("got HorizontalPodAutoscaler %s, want none with fixed replicas", hpa.Name)
				}
				return
			}
			if !ok {
				t.Fatalf("no HorizontalPodAutoscaler acme-order among %v", kindNames(objs))
			}
			if diff := cmp.Diff(*tc.wantHPA, hpa.Spec); diff != "" {
				t.Errorf("HorizontalPodAutoscaler spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOnlyAutoscaledServicesHaveAnAutoscaler(t *testing.T) {
	objs := Build(sampleShop(shopv1.MeshNone), testInputs())
	var got []string
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		got = append(got, h.Name)
	}
	if diff := cmp.Diff([]string{"acme-order"}, got); diff != "" {
		t.Errorf("HorizontalPodAutoscalers (-want +got):\n%s", diff)
	}
}

func TestPodDisruptionBudgetsAlwaysAllowOneDisruption(t *testing.T) {
	tests := map[string]*shopv1.Shop{
		"defaults":       testShop(),
		"single replica": testShop(withReplicas(shopv1.ServiceUser, 1), withPostgresInstances(1), withRedisReplicas(1)),
		"autoscaled":     testShop(withAutoscaling(shopv1.ServiceOrder, 1, 3)),
	}
	for name, shop := range tests {
		t.Run(name, func(t *testing.T) {
			objs := Build(shop, testInputs())
			pdbs := all[*policyv1.PodDisruptionBudget](objs)
			if len(pdbs) != 6 {
				t.Errorf("got %d PodDisruptionBudgets, want 6 (four services, Postgres, Redis)", len(pdbs))
			}
			pods := podTemplates(objs)
			for _, pdb := range pdbs {
				if diff := cmp.Diff(ptr.To(intstr.FromInt32(1)), pdb.Spec.MaxUnavailable); diff != "" {
					t.Errorf("PodDisruptionBudget %s maxUnavailable (-want +got):\n%s", pdb.Name, diff)
				}
				if pdb.Spec.MinAvailable != nil {
					t.Errorf("PodDisruptionBudget %s sets minAvailable %v, which can block a drain", pdb.Name, pdb.Spec.MinAvailable)
				}
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil {
					t.Fatal(err)
				}
				var matched []string
				for w, tpl := range pods {
					if sel.Matches(labels.Set(tpl.Labels)) {
						matched = append(matched, w)
					}
				}
				if len(matched) != 1 {
					t.Errorf("PodDisruptionBudget %s selects the pods of %v, want exactly one workload", pdb.Name, matched)
				}
			}
		})
	}
}

// restrictedViolations lists how a container breaks the restricted Pod
// Security Standard (plus a read-only root file system), given its pod's
// security context.
func restrictedViolations(pod *corev1.PodSecurityContext, c corev1.Container) []string {
	var v []string
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = pod.RunAsNonRoot
	}
	if !ptr.Deref(nonRoot, false) {
		v = append(v, "runAsNonRoot is not true")
	}
	if uid := sc.RunAsUser; uid != nil && *uid == 0 || sc.RunAsUser == nil && pod.RunAsUser != nil && *pod.RunAsUser == 0 {
		v = append(v, "runs as UID 0")
	}
	if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		v = append(v, "readOnlyRootFilesystem is not true")
	}
	if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
		v = append(v, "allowPrivilegeEscalation is not false")
	}
	if ptr.Deref(sc.Privileged, false) {
		v = append(v, "privileged")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		v = append(v, "capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		v = append(v, fmt.Sprintf("adds capabilities %v", sc.Capabilities.Add))
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		v = append(v, "seccomp profile is not RuntimeDefault")
	}
	return v
}

func TestEveryContainerMeetsRestrictedPodSecurity(t *testing.T) {
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			pods := podTemplates(Build(sampleShop(mesh), testInputs()))
			if len(pods) != 6 {
				t.Fatalf("got %d workloads, want 6: %v", len(pods), pods)
			}
			for w, tpl := range pods {
				spec := tpl.Spec
				containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
				for _, c := range containers {
					if v := restrictedViolations(spec.SecurityContext, c); len(v) > 0 {
						t.Errorf("%s container %s: %s", w, c.Name, strings.Join(v, "; "))
					}
				}
				for _, vol := range spec.Volumes {
					if vol.HostPath != nil {
						t.Errorf("%s mounts hostPath volume %s", w, vol.Name)
					}
				}
				if spec.HostNetwork || spec.HostPID || spec.HostIPC {
					t.Errorf("%s shares a host namespace", w)
				}
				if ptr.Deref(spec.AutomountServiceAccountToken, true) {
					t.Errorf("%s mounts a Kubernetes API token it does not need", w)
				}
			}
		})
	}
}

// everyObject builds a Shop with every optional object turned on.
func everyObject(mesh shopv1.MeshMode, opts ...shopOption) []client.Object {
	base := []shopOption{
		withMesh(mesh), withHosts(testHost), withSourceRanges("10.0.0.0/8"),
		withAutoscaling(shopv1.ServiceOrder, 2, 10),
	}
	return Build(testShop(append(base, opts...)...), testInputs())
}

func TestEveryChildIsLabelledAndOwnedByTheShop(t *testing.T) {
	shop := testShop()
	wantOwner := []metav1.OwnerReference{{
		APIVersion: "shopstack.dev/v1alpha1", Kind: "Shop", Name: "acme", UID: testUID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			for _, obj := range everyObject(mesh) {
				for _, key := range []string{LabelName, LabelInstance, LabelComponent, LabelPartOf, LabelManagedBy} {
					if obj.GetLabels()[key] == "" {
						t.Errorf("%s has no %s label", kindName(obj), key)
					}
				}
				if got := obj.GetLabels()[LabelInstance]; got != shop.Name {
					t.Errorf("%s %s = %q, want %q", kindName(obj), LabelInstance, got, shop.Name)
				}
				if got := obj.GetLabels()[LabelManagedBy]; got != ManagedByValue {
					t.Errorf("%s %s = %q, want %q (the operator's cache selects on it)", kindName(obj), LabelManagedBy, got, ManagedByValue)
				}
				if obj.GetNamespace() != testNamespace {
					t.Errorf("%s is in namespace %q, want the Shop's %q", kindName(obj), obj.GetNamespace(), testNamespace)
				}
				if diff := cmp.Diff(wantOwner, obj.GetOwnerReferences()); diff != "" {
					t.Errorf("%s owner references (-want +got):\n%s", kindName(obj), diff)
				}
				if obj.GetObjectKind().GroupVersionKind().Empty() {
					t.Errorf("%s has no apiVersion/kind", obj.GetName())
				}
			}
		})
	}
}

func TestCredentialSecretsOwnership(t *testing.T) {
	owner := []metav1.OwnerReference{OwnerReference(testShop())}
	tests := map[string]struct {
		shop      *shopv1.Shop
		wantOwner []metav1.OwnerReference
	}{
		"Retain keeps them after the Shop is deleted": {shop: testShop(withDeletionPolicy(shopv1.DeletionRetain)), wantOwner: nil},
		"unset deletionPolicy means Retain":           {shop: testShop(), wantOwner: nil},
		"Delete removes them with the Shop":           {shop: testShop(withDeletionPolicy(shopv1.DeletionDelete)), wantOwner: owner},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, kind := range AllCredentials {
				s := CredentialSecret(tc.shop, kind, map[string][]byte{"k": []byte("v")})
				if diff := cmp.Diff(tc.wantOwner, s.OwnerReferences); diff != "" {
					t.Errorf("Secret %s owner references (-want +got):\n%s", s.Name, diff)
				}
				if diff := cmp.Diff(Labels(tc.shop, ComponentCredentials), s.Labels); diff != "" {
					t.Errorf("Secret %s labels (-want +got):\n%s", s.Name, diff)
				}
				if want := "acme-" + string(kind); s.Name != want {
					t.Errorf("Secret name = %q, want %q", s.Name, want)
				}
			}
		})
	}
}

func TestStatefulSetsKeepTheirVolumesUnderRetain(t *testing.T) {
	tests := map[string]struct {
		policy shopv1.DeletionPolicy
		want   appsv1.PersistentVolumeClaimRetentionPolicyType
	}{
		"Retain": {policy: shopv1.DeletionRetain, want: appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
		"Delete": {policy: shopv1.DeletionDelete, want: appsv1.DeletePersistentVolumeClaimRetentionPolicyType},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := Build(testShop(withDeletionPolicy(tc.policy)), testInputs())
			for _, sts := range all[*appsv1.StatefulSet](objs) {
				rp := sts.Spec.PersistentVolumeClaimRetentionPolicy
				if rp == nil || rp.WhenDeleted != tc.want || rp.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
					t.Errorf("StatefulSet %s PVC retention = %+v, want whenDeleted %s, whenScaled Retain", sts.Name, rp, tc.want)
				}
			}
		})
	}
}

// longName is the longest Shop name the API accepts.
const longName = "a-shop-with-a-thirty-char-name"

func TestLongestShopNameFitsEveryChild(t *testing.T) {
	if len(longName) != 30 {
		t.Fatalf("longName has %d characters, want 30", len(longName))
	}
	for _, mesh := range []shopv1.MeshMode{shopv1.MeshNone, shopv1.MeshIstio} {
		t.Run(string(mesh), func(t *testing.T) {
			shop := testShop(withName(longName))
			objs := everyObject(mesh, withName(longName))
			for _, kind := range AllCredentials {
				objs = append(objs, CredentialSecret(shop, kind, nil))
			}
			for _, obj := range objs {
				if n := len(obj.GetName()); n > 63 {
					t.Errorf("%s: name has %d characters, want at most 63", kindName(obj), n)
				}
				for _, msg := range validation.IsDNS1123Subdomain(obj.GetName()) {
					t.Errorf("%s: %s", kindName(obj), msg)
				}
				for k, v := range obj.GetLabels() {
					for _, msg := range validation.IsValidLabelValue(v) {
						t.Errorf("%s label %s=%q: %s", kindName(obj), k, v, msg)
					}
				}
				switch o := obj.(type) {
				case *corev1.Service:
					for _, msg := range validation.IsDNS1035Label(o.Name) {
						t.Errorf("Service %s: %s", o.Name, msg)
					}
				case *appsv1.StatefulSet:
					// Pods are named <statefulset>-<ordinal> and labelled
					// controller-revision-hash=<statefulset>-<hash>; PVCs are
					// <claim>-<pod>. All must stay within 63 characters.
					if n := len(o.Name) + len("-") + 10; n > 63 {
						t.Errorf("StatefulSet %s: controller-revision-hash label would have %d characters", o.Name, n)
					}
					last := fmt.Sprintf("%s-%d", o.Name, *o.Spec.Replicas-1)
					for _, msg := range validation.IsDNS1123Label(last) {
						t.Errorf("pod %s: %s", last, msg)
					}
					for _, c := range o.Spec.VolumeClaimTemplates {
						if pvc := c.Name + "-" + last; len(pvc) > 63 {
							t.Errorf("PVC %s has %d characters", pvc, len(pvc))
						}
					}
				case *cmapi.Certificate:
					for _, msg := range validation.IsDNS1123Subdomain(o.Spec.SecretName) {
						t.Errorf("Certificate %s secretName %s: %s", o.Name, o.Spec.SecretName, msg)
					}
				}
			}
			// Istio names the gateway's Deployment, Service and ServiceAccount <gateway>-<class>.
			if sa := GatewayServiceAccount(shop); len(sa) > 63 {
				t.Errorf("gateway service account %s has %d characters", sa, len(sa))
			}
		})
	}
}

func TestNetworkPoliciesCanBeTurnedOff(t *testing.T) {
	tests := map[string]struct {
		opts []shopOption
		want []string
	}{
		"on by default": {
			want: []string{
				"NetworkPolicy/acme-default-deny",
				"NetworkPolicy/acme-inventory",
				"NetworkPolicy/acme-order",
				"NetworkPolicy/acme-payment",
				"NetworkPolicy/acme-postgres",
				"NetworkPolicy/acme-redis",
				"NetworkPolicy/acme-user",
			},
		},
		"explicitly on": {
			opts: []shopOption{withNetworkPolicies(true)},
			want: []string{
				"NetworkPolicy/acme-default-deny",
				"NetworkPolicy/acme-inventory",
				"NetworkPolicy/acme-order",
				"NetworkPolicy/acme-payment",
				"NetworkPolicy/acme-postgres",
				"NetworkPolicy/acme-redis",
				"NetworkPolicy/acme-user",
			},
		},
		"off": {opts: []shopOption{withNetworkPolicies(false)}, want: nil},
		"off under istio": {
			opts: []shopOption{withNetworkPolicies(false), withMesh(shopv1.MeshIstio)},
			want: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, np := range all[*networkingv1.NetworkPolicy](Build(testShop(tc.opts...), testInputs())) {
				got = append(got, kindName(np))
			}
			if diff := cmp.Diff(tc.want, sorted(got)); diff != "" {
				t.Errorf("NetworkPolicies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceCertificates(t *testing.T) {
	tests := map[string]struct {
		shop     *shopv1.Shop
		svc      shopv1.ServiceName
		wantURIs []string
		wantDNS  []string
	}{
		"order": {
			shop:     testShop(),
			svc:      shopv1.ServiceOrder,
			wantURIs: []string{"spiffe://cluster.local/ns/shop/sa/acme-order"},
			wantDNS:  []string{"acme-order", "acme-order.shop", "acme-order.shop.svc", "acme-order.shop.svc.cluster.local"},
		},
		"payment": {
			shop:     testShop(),
			svc:      shopv1.ServicePayment,
			wantURIs: []string{"spiffe://cluster.local/ns/shop/sa/acme-payment"},
			wantDNS:  []string{"acme-payment", "acme-payment.shop", "acme-payment.shop.svc", "acme-payment.shop.svc.cluster.local"},
		},
		"own trust domain": {
			shop:     testShop(withTrustDomain("corp.example")),
			svc:      shopv1.ServiceUser,
			wantURIs: []string{"spiffe://corp.example/ns/shop/sa/acme-user"},
			wantDNS:  []string{"acme-user", "acme-user.shop", "acme-user.shop.svc", "acme-user.shop.svc.cluster.local"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := Build(tc.shop, testInputs())
			c := find[*cmapi.Certificate](t, objs, ServiceCertSecretName(tc.shop, tc.svc))
			if diff := cmp.Diff(tc.wantURIs, c.Spec.URIs); diff != "" {
				t.Errorf("URI SANs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDNS, c.Spec.DNSNames); diff != "" {
				t.Errorf("DNS SANs (-want +got):\n%s", diff)
			}
			for _, u := range []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageClientAuth} {
				if !containsUsage(c.Spec.Usages, u) {
					t.Errorf("usages %v lack %q: the certificate serves and calls over mTLS", c.Spec.Usages, u)
				}
			}
			if want := Name(tc.shop, string(tc.svc), "tls"); c.Spec.SecretName != want {
				t.Errorf("secretName = %q, want %q (the Deployment mounts it)", c.Spec.SecretName, want)
			}
			d := find[*appsv1.Deployment](t, objs, Name(tc.shop, string(tc.svc)))
			if !mountsSecret(d.Spec.Template.Spec, c.Spec.SecretName) {
				t.Errorf("Deployment %s does not mount Secret %s", d.Name, c.Spec.SecretName)
			}
		})
	}
}

func containsUsage(us []cmapi.KeyUsage, u cmapi.KeyUsage) bool {
	for _, x := range us {
		if x == u {
			return true
		}
	}
	return false
}

func mountsSecret(spec corev1.PodSpec, secret string) bool {
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return true
		}
	}
	return false
}

func TestCertificateIssuers(t *testing.T) {
	tests := map[string]struct {
		shop        *shopv1.Shop
		wantIssuers []string
		wantRef     cmmeta.IssuerReference
	}{
		"without issuerRef the Shop bootstraps its own CA": {
			shop:        testShop(withHosts(testHost)),
			wantIssuers: []string{"Issuer/acme-ca", "Issuer/acme-selfsigned"},
			wantRef:     cmmeta.IssuerReference{Name: "acme-ca", Kind: "Issuer", Group: "cert-manager.io"},
		},
		"a ClusterIssuer": {
			shop:    testShop(withHosts(testHost), withIssuer("ClusterIssuer", "corp-ca")),
			wantRef: cmmeta.IssuerReference{Name: "corp-ca", Kind: "ClusterIssuer", Group: "cert-manager.io"},
		},
		"an Issuer, kind left to its default": {
			shop:    testShop(withHosts(testHost), withIssuer("", "team-ca")),
			wantRef: cmmeta.IssuerReference{Name: "team-ca", Kind: "Issuer", Group: "cert-manager.io"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := Build(tc.shop, testInputs())
			var issuers []string
			for _, i := range all[*cmapi.Issuer](objs) {
				issuers = append(issuers, kindName(i))
			}
			if diff := cmp.Diff(tc.wantIssuers, sorted(issuers)); diff != "" {
				t.Errorf("Issuers (-want +got):\n%s", diff)
			}
			certs := all[*cmapi.Certificate](objs)
			if len(certs) == 0 {
				t.Fatal("no Certificates")
			}
			for _, c := range certs {
				if c.Spec.IsCA {
					if tc.shop.Spec.Security.IssuerRef != nil {
						t.Errorf("CA Certificate %s exists although issuerRef is set", c.Name)
					}
					want := cmmeta.IssuerReference{Name: "acme-selfsigned", Kind: "Issuer", Group: "cert-manager.io"}
					if diff := cmp.Diff(want, c.Spec.IssuerRef); diff != "" {
						t.Errorf("CA Certificate %s issuerRef (-want +got):\n%s", c.Name, diff)
					}
					continue
				}
				if diff := cmp.Diff(tc.wantRef, c.Spec.IssuerRef); diff != "" {
					t.Errorf("Certificate %s issuerRef (-want +got):\n%s", c.Name, diff)
				}
			}
		})
	}
}

func TestGatewayObjectsExistOnlyWithHosts(t *testing.T) {
	tests := map[string]struct {
		shop *shopv1.Shop
		want []string
	}{
		"no hosts: reachable only inside the cluster": {
			shop: testShop(),
			want: nil,
		},
		"one host": {
			shop: testShop(withHosts(testHost)),
			want: []string{
				"Certificate/acme-gateway",
				"Gateway/acme-gateway",
				"HTTPRoute/acme-inventory",
				"HTTPRoute/acme-order",
				"HTTPRoute/acme-user",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, obj := range Build(tc.shop, testInputs()) {
				switch o := obj.(type) {
				case *gatewayv1.Gateway, *gatewayv1.HTTPRoute:
					got = append(got, kindName(o))
				case *cmapi.Certificate:
					if o.Name == GatewayName(tc.shop) {
						got = append(got, kindName(o))
					}
				}
			}
			if diff := cmp.Diff(tc.want, sorted(got)); diff != "" {
				t.Errorf("gateway objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGatewayListensOnEveryHost(t *testing.T) {
	shop := testShop(withHosts("shop.example.com", "*.shop.example.org"))
	objs := Build(shop, testInputs())
	gw := find[*gatewayv1.Gateway](t, objs, "acme-gateway")
	var hosts []string
	for _, l := range gw.Spec.Listeners {
		hosts = append(hosts, string(ptr.Deref(l.Hostname, "")))
		if l.Port != 443 || l.Protocol != gatewayv1.HTTPSProtocolType {
			t.Errorf("listener %s: %s on %d, want HTTPS on 443", l.Name, l.Protocol, l.Port)
		}
		if l.TLS == nil || len(l.TLS.CertificateRefs) != 1 || string(l.TLS.CertificateRefs[0].Name) != "acme-gateway-tls" {
			t.Errorf("listener %s TLS = %+v, want the acme-gateway-tls certificate", l.Name, l.TLS)
		}
	}
	if diff := cmp.Diff([]string{"shop.example.com", "*.shop.example.org"}, hosts); diff != "" {
		t.Errorf("listener hosts (-want +got):\n%s", diff)
	}
	cert := find[*cmapi.Certificate](t, objs, "acme-gateway")
	if diff := cmp.Diff([]string{"shop.example.com", "*.shop.example.org"}, cert.Spec.DNSNames); diff != "" {
		t.Errorf("gateway certificate DNS names (-want +got):\n%s", diff)
	}
}

// routeMatch is one HTTPRoute match, flattened for comparison.
type routeMatch struct {
	Method, PathType, Path string
}

func TestHTTPRoutes(t *testing.T) {
	shop := testShop(withHosts(testHost))
	objs := Build(shop, testInputs())
	tests := map[shopv1.ServiceName][]routeMatch{
		shopv1.ServiceUser: {
			{PathType: "PathPrefix", Path: "/v1/auth"},
			{PathType: "PathPrefix", Path: "/v1/users"},
			{PathType: "Exact", Path: "/.well-known/openid-configuration"},
			{PathType: "Exact", Path: "/.well-known/jwks.json"},
		},
		shopv1.ServiceOrder: {
			{PathType: "Exact", Path: "/v1/orders"},
			{PathType: "PathPrefix", Path: "/v1/orders"},
		},
		shopv1.ServiceInventory: {
			{Method: "GET", PathType: "Exact", Path: "/v1/products"},
			{Method: "HEAD", PathType: "Exact", Path: "/v1/products"},
			{Method: "GET", PathType: "PathPrefix", Path: "/v1/products"},
			{Method: "HEAD", PathType: "PathPrefix", Path: "/v1/products"},
		},
		shopv1.ServicePayment: nil, // never reachable from outside
	}
	for svc, want := range tests {
		t.Run(string(svc), func(t *testing.T) {
			route, ok := lookup[*gatewayv1.HTTPRoute](objs, Name(shop, string(svc)))
			if want == nil {
				if ok {
					t.Fatalf("got HTTPRoute %s, want none: the gateway may not call %s", route.Name, svc)
				}
				return
			}
			if !ok {
				t.Fatalf("no HTTPRoute for %s", svc)
			}
			if diff := cmp.Diff([]gatewayv1.Hostname{testHost}, route.Spec.Hostnames); diff != "" {
				t.Errorf("hostnames (-want +got):\n%s", diff)
			}
			if len(route.Spec.ParentRefs) != 1 || string(route.Spec.ParentRefs[0].Name) != "acme-gateway" {
				t.Errorf("parentRefs = %+v, want the acme-gateway Gateway", route.Spec.ParentRefs)
			}
			var got []routeMatch
			for _, rule := range route.Spec.Rules {
				if len(rule.BackendRefs) != 1 {
					t.Fatalf("rule has %d backends, want 1", len(rule.BackendRefs))
				}
				ref := rule.BackendRefs[0].BackendObjectReference
				if string(ref.Name) != Name(shop, string(svc)) || ptr.Deref(ref.Port, 0) != 8443 {
					t.Errorf("backend = %s:%d, want %s:8443 (the public port)", ref.Name, ptr.Deref(ref.Port, 0), Name(shop, string(svc)))
				}
				for _, m := range rule.Matches {
					rm := routeMatch{PathType: string(ptr.Deref(m.Path.Type, "")), Path: ptr.Deref(m.Path.Value, "")}
					if m.Method != nil {
						rm.Method = string(*m.Method)
					}
					got = append(got, rm)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllowedCallers(t *testing.T) {
	shop := testShop()
	tests := map[shopv1.ServiceName][]string{
		shopv1.ServiceUser:      nil,
		shopv1.ServiceOrder:     nil,
		shopv1.ServicePayment:   {"spiffe://cluster.local/ns/shop/sa/acme-order"},
		shopv1.ServiceInventory: {"spiffe://cluster.local/ns/shop/sa/acme-order"},
	}
	for svc, want := range tests {
		t.Run(string(svc), func(t *testing.T) {
			if diff := cmp.Diff(want, AllowedCallers(shop, svc)); diff != "" {
				t.Errorf("AllowedCallers(%s) (-want +got):\n%s", svc, diff)
			}
		})
	}
}

func TestAllowedCallersReachTheService(t *testing.T) {
	shop := testShop()
	objs := Build(shop, testInputs())
	d := find[*appsv1.Deployment](t, objs, "acme-payment")
	var got string
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "SHOPSTACK_ALLOWED_CALLERS" {
			got = e.Value
		}
	}
	if want := "spiffe://cluster.local/ns/shop/sa/acme-order"; got != want {
		t.Errorf("payment SHOPSTACK_ALLOWED_CALLERS = %q, want %q", got, want)
	}
}

func TestSecretsReachOnlyTheServicesThatNeedThem(t *testing.T) {
	shop := testShop()
	objs := Build(shop, testInputs())
	tests := map[shopv1.ServiceName][]string{
		shopv1.ServiceUser:      {"acme-user-tls", "acme-postgres-credentials", "acme-redis-credentials", "acme-jwt-signing", "acme-admin"},
		shopv1.ServiceOrder:     {"acme-order-tls", "acme-postgres-credentials", "acme-redis-credentials"},
		shopv1.ServicePayment:   {"acme-payment-tls", "acme-postgres-credentials", "acme-payment-key"},
		shopv1.ServiceInventory: {"acme-inventory-tls", "acme-postgres-credentials", "acme-redis-credentials"},
	}
	for svc, want := range tests {
		t.Run(string(svc), func(t *testing.T) {
			spec := find[*appsv1.Deployment](t, objs, Name(shop, string(svc))).Spec.Template.Spec
			var got []string
			for _, v := range spec.Volumes {
				if v.Secret == nil {
					continue
				}
				got = append(got, v.Secret.SecretName)
				// A shared credentials Secret is mounted one key at a time: the service's own.
				if v.Secret.SecretName == "acme-postgres-credentials" || v.Secret.SecretName == "acme-redis-credentials" {
					if len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != string(svc) {
						t.Errorf("volume %s mounts keys %+v of %s, want only %q", v.Name, v.Secret.Items, v.Secret.SecretName, svc)
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Secrets mounted (-want +got):\n%s", diff)
			}
			for _, c := range spec.Containers {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						t.Errorf("env %s comes from a Secret: secrets reach services as files only", e.Name)
					}
				}
			}
		})
	}
}

func TestGatewayOriginatesTLSToTheServicesWithoutAMesh(t *testing.T) {
	shop := testShop(withHosts(testHost), withMesh(shopv1.MeshNone))
	objs := Build(shop, testInputs())
	for _, route := range all[*gatewayv1.HTTPRoute](objs) {
		backend := string(route.Spec.Rules[0].BackendRefs[0].Name)
		cert := find[*cmapi.Certificate](t, objs, backend+"-tls")
		var found bool
		for _, p := range all[*gatewayv1.BackendTLSPolicy](objs) {
			for _, ref := range p.Spec.TargetRefs {
				if ref.Kind != "Service" || string(ref.Name) != backend {
					continue
				}
				found = true
				if h := string(p.Spec.Validation.Hostname); !slices.Contains(cert.Spec.DNSNames, h) {
					t.Errorf("BackendTLSPolicy %s validates hostname %q, which the certificate of %s does not name (%v)", p.Name, h, backend, cert.Spec.DNSNames)
				}
				if len(p.Spec.Validation.CACertificateRefs) == 0 {
					t.Errorf("BackendTLSPolicy %s names no CA to verify %s with", p.Name, backend)
				}
			}
		}
		if !found {
			t.Errorf("no BackendTLSPolicy targets Service %s: the gateway would speak plain HTTP to its TLS port 8443", backend)
		}
	}
}

func TestCACommonNameFitsX509WithTheLongestNames(t *testing.T) {
	shop := testShop(withName(strings.Repeat("s", 30)))
	shop.Namespace = strings.Repeat("n", 63)
	ca := find[*cmapi.Certificate](t, Build(shop, testInputs()), Name(shop, "ca"))
	if n := len(ca.Spec.CommonName); n > 64 {
		t.Errorf("CA common name %q has %d characters; cert-manager refuses more than 64", ca.Spec.CommonName, n)
	}
}

// orderCPUAutoscaler is the HPA spec the order service gets for min..max
// replicas at the default 70% CPU target.
func orderCPUAutoscaler(min, max int32) *autoscalingv2.HorizontalPodAutoscalerSpec {
	return &autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "acme-order"},
		MinReplicas:    ptr.To(min),
		MaxReplicas:    max,
		Metrics: []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)},
			},
		}},
	}
}
