package builder

import (
	"slices"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// The Shop every test starts from, unless an option changes it.
const (
	testName      = "acme"
	testNamespace = "shop"
	testUID       = types.UID("5c0e3d3a-8f3e-4d6b-9d1a-0c1f3b2a7e11")
	testHost      = "shop.example.com"
)

// testJWKS is a real P-256 public key set, fixed so that golden files are stable.
const testJWKS = `{"keys":[{"kty":"EC","crv":"P-256","x":"s_NktD4AIjYQbJkv-h4f08sXttHFEvDiaNvOcslejC8","y":"A6NZUgqModUDVeCUa4c0_MhXaSQfy7UXVN0wfPIU6c8","kid":"2UYBZmSnQSj-AQQW75rTtQ","alg":"ES256","use":"sig"}]}`

// shopOption changes one aspect of a test Shop.
type shopOption func(*shopv1.Shop)

// testShop is a Shop named acme in namespace shop with an empty spec (every
// default applies), changed by opts in order.
func testShop(opts ...shopOption) *shopv1.Shop {
	shop := &shopv1.Shop{
		ObjectMeta: metav1.ObjectMeta{Name: testName, Namespace: testNamespace, UID: testUID},
	}
	shop.APIVersion = shopv1.GroupVersion.String()
	shop.Kind = "Shop"
	for _, o := range opts {
		o(shop)
	}
	return shop
}

// sampleShop mirrors config/samples: a public host, an autoscaled order
// service, fixed replicas elsewhere, three Postgres instances and three Redis
// servers, deletionPolicy Retain.
func sampleShop(mesh shopv1.MeshMode) *shopv1.Shop {
	return testShop(
		withVersion("0.1.0"),
		withReplicas(shopv1.ServiceUser, 2),
		withAutoscaling(shopv1.ServiceOrder, 2, 10),
		withReplicas(shopv1.ServicePayment, 2),
		withReplicas(shopv1.ServiceInventory, 2),
		withPostgresInstances(3),
		withRedisReplicas(3),
		withMesh(mesh),
		withHosts(testHost),
		withDeletionPolicy(shopv1.DeletionRetain),
	)
}

// testInputs are the operator's facts once the signing key exists.
func testInputs() Inputs {
	return Inputs{OperatorVersion: "0.1.0", OperatorNamespace: DefaultOperatorNS, JWKS: testJWKS, CABundle: testCABundle}
}

func withName(name string) shopOption {
	return func(s *shopv1.Shop) { s.Name = name }
}

func withVersion(v string) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Version = v }
}

func withMesh(m shopv1.MeshMode) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Security.Mesh = m }
}

func withTrustDomain(td string) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Security.TrustDomain = td }
}

func withNetworkPolicies(on bool) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Security.NetworkPolicies = ptr.To(on) }
}

func withIssuer(kind, name string) shopOption {
	return func(s *shopv1.Shop) {
		s.Spec.Security.IssuerRef = &shopv1.IssuerReference{Kind: kind, Name: name}
	}
}

func withHosts(hosts ...shopv1.Hostname) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Gateway.Hosts = hosts }
}

func withSourceRanges(ranges ...shopv1.CIDR) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Gateway.AllowedSourceRanges = ranges }
}

func withDeletionPolicy(p shopv1.DeletionPolicy) shopOption {
	return func(s *shopv1.Shop) { s.Spec.DeletionPolicy = p }
}

func withPostgresInstances(n int32) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Postgres.Instances = n }
}

func withRedisReplicas(n int32) shopOption {
	return func(s *shopv1.Shop) { s.Spec.Redis.Replicas = n }
}

// service returns the spec of one service, creating it when absent.
func service(s *shopv1.Shop, svc shopv1.ServiceName) *shopv1.ServiceSpec {
	ptrs := map[shopv1.ServiceName]**shopv1.ServiceSpec{
		shopv1.ServiceUser:      &s.Spec.Services.User,
		shopv1.ServiceOrder:     &s.Spec.Services.Order,
		shopv1.ServicePayment:   &s.Spec.Services.Payment,
		shopv1.ServiceInventory: &s.Spec.Services.Inventory,
	}
	p := ptrs[svc]
	if *p == nil {
		*p = &shopv1.ServiceSpec{}
	}
	return *p
}

func withReplicas(svc shopv1.ServiceName, n int32) shopOption {
	return func(s *shopv1.Shop) { service(s, svc).Replicas = ptr.To(n) }
}

func withAutoscaling(svc shopv1.ServiceName, minReplicas, maxReplicas int32) shopOption {
	return func(s *shopv1.Shop) {
		service(s, svc).Autoscaling = &shopv1.AutoscalingSpec{MinReplicas: minReplicas, MaxReplicas: maxReplicas}
	}
}

// kindName is how tests name an object: Kind/name.
func kindName(obj client.Object) string {
	return obj.GetObjectKind().GroupVersionKind().Kind + "/" + obj.GetName()
}

// kindNames lists objs as sorted Kind/name strings.
func kindNames(objs []client.Object) []string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, kindName(o))
	}
	sort.Strings(names)
	return names
}

// sorted returns a sorted copy of names, nil when empty.
func sorted(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

// all returns every object of type T among objs.
func all[T client.Object](objs []client.Object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// find returns the object of type T named name, failing the test when absent.
func find[T client.Object](t *testing.T, objs []client.Object, name string) T {
	t.Helper()
	if o, ok := lookup[T](objs, name); ok {
		return o
	}
	var zero T
	t.Fatalf("no %T named %q among %v", zero, name, kindNames(objs))
	return zero
}

// lookup returns the object of type T named name, if any.
func lookup[T client.Object](objs []client.Object, name string) (T, bool) {
	for _, o := range objs {
		if t, ok := o.(T); ok && o.GetName() == name {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// podTemplates are the pod templates of every workload, by workload name.
func podTemplates(objs []client.Object) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out[kindName(w)] = w.Spec.Template
		case *appsv1.StatefulSet:
			out[kindName(w)] = w.Spec.Template
		}
	}
	return out
}

// testCABundle stands in for the ca.crt cert-manager writes beside a service
// certificate; the builders only copy it.
const testCABundle = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
