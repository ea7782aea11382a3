package builder

import (
	"reflect"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// Build returns every object the Shop should own, in the order they are
// applied: identities and configuration first, then workloads that mount them.
// The credentials Secrets are not here: they are created once, elsewhere.
func Build(shop *shopv1.Shop, in Inputs) []client.Object {
	var objs []client.Object
	add := func(o ...client.Object) {
		for _, obj := range o {
			// A builder that returns a typed nil means "should not exist".
			if obj != nil && !reflect.ValueOf(obj).IsNil() {
				objs = append(objs, obj)
			}
		}
	}

	// Certificates and their issuers.
	selfSigned, ca, caIssuer := BootstrapIssuers(shop)
	add(selfSigned, ca, caIssuer)
	for _, svc := range shopv1.AllServices {
		add(ServiceCertificate(shop, svc))
	}
	add(DataCertificate(shop, ComponentPostgres, Name(shop, "postgres-rw"), Name(shop, "postgres-ro")))
	add(DataCertificate(shop, ComponentRedis, Name(shop, "redis-master"), Name(shop, "redis-sentinel")))
	add(GatewayCertificate(shop))

	// Zero trust: network policies, the JWKS and the mesh's policies.
	add(DefaultDenyNetworkPolicy(shop))
	for _, svc := range shopv1.AllServices {
		add(CallGraphNetworkPolicy(shop, in, string(svc)))
	}
	add(CallGraphNetworkPolicy(shop, in, ComponentPostgres), CallGraphNetworkPolicy(shop, in, ComponentRedis))
	add(JWKSConfigMap(shop, in), PeerAuthentication(shop), RequestAuthentication(shop, in))
	for _, svc := range shopv1.AllServices {
		add(AuthorizationPolicy(shop, svc))
	}
	add(GatewayAuthorizationPolicy(shop))

	// Data tier.
	add(PostgresConfigMap(shop))
	for _, s := range PostgresServices(shop) {
		add(s)
	}
	add(PostgresStatefulSet(shop), PodDisruptionBudget(shop, ComponentPostgres))
	add(RedisConfigMap(shop))
	for _, s := range RedisServices(shop) {
		add(s)
	}
	add(RedisStatefulSet(shop), PodDisruptionBudget(shop, ComponentRedis))

	// The services.
	for _, svc := range shopv1.AllServices {
		add(ServiceAccount(shop, svc), Service(shop, svc), Deployment(shop, in, svc),
			HorizontalPodAutoscaler(shop, svc), PodDisruptionBudget(shop, string(svc)))
	}

	// The gateway.
	add(Gateway(shop))
	add(CABundleConfigMap(shop, in))
	for _, svc := range shopv1.AllServices {
		add(HTTPRoute(shop, svc), BackendTLSPolicy(shop, in, svc))
	}
	return objs
}

// ManagedKinds are the kinds of object a Shop may own (besides the credentials
// Secrets). The reconciler watches them and deletes those a Shop no longer wants.
var ManagedKinds = []schema.GroupVersionKind{
	cmapi.SchemeGroupVersion.WithKind(cmapi.IssuerKind),
	cmapi.SchemeGroupVersion.WithKind(cmapi.CertificateKind),
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"),
	corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	securityv1.SchemeGroupVersion.WithKind("PeerAuthentication"),
	securityv1.SchemeGroupVersion.WithKind("RequestAuthentication"),
	securityv1.SchemeGroupVersion.WithKind("AuthorizationPolicy"),
	corev1.SchemeGroupVersion.WithKind("Service"),
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"),
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"),
	appsv1.SchemeGroupVersion.WithKind("Deployment"),
	autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
	gatewayv1.SchemeGroupVersion.WithKind("Gateway"),
	gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute"),
	gatewayv1.SchemeGroupVersion.WithKind("BackendTLSPolicy"),
}
