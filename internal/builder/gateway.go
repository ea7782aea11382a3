package builder

import (
	"cmp"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

var gatewayTypeMeta = func(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: kind}
}

// Gateway listens for the Shop's hosts on 443 with the gateway certificate;
// nil without hosts.
func Gateway(shop *shopv1.Shop) *gatewayv1.Gateway {
	if len(shop.Spec.Gateway.Hosts) == 0 {
		return nil
	}
	class := shop.Spec.Gateway.ClassName
	if class == "" {
		class = "istio"
	}
	gw := &gatewayv1.Gateway{
		TypeMeta:   gatewayTypeMeta("Gateway"),
		ObjectMeta: ObjectMeta(shop, GatewayName(shop), ComponentGateway),
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: gatewayv1.ObjectName(class)},
	}
	for i, h := range shop.Spec.Gateway.Hosts {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gatewayv1.Listener{
			Name:     gatewayv1.SectionName(fmt.Sprintf("https-%d", i)),
			Hostname: ptr.To(gatewayv1.Hostname(h)),
			Port:     443,
			Protocol: gatewayv1.HTTPSProtocolType,
			TLS: &gatewayv1.ListenerTLSConfig{
				Mode:            ptr.To(gatewayv1.TLSModeTerminate),
				CertificateRefs: []gatewayv1.SecretObjectReference{{Name: gatewayv1.ObjectName(GatewayCertSecretName(shop))}},
			},
			AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}},
		})
	}
	return gw
}

// HTTPRoute sends the paths the call graph lets the gateway call on one
// service to that service's public port; nil when the gateway may not call it
// or the Shop has no hosts.
func HTTPRoute(shop *shopv1.Shop, svc shopv1.ServiceName) *gatewayv1.HTTPRoute {
	if len(shop.Spec.Gateway.Hosts) == 0 {
		return nil
	}
	var rules []gatewayv1.HTTPRouteRule
	for _, f := range callgraph.Into(callgraph.Peer(svc)) {
		if f.From != callgraph.Gateway {
			continue
		}
		var matches []gatewayv1.HTTPRouteMatch
		for _, r := range f.Rules {
			methods := r.Methods
			if len(methods) == 0 {
				methods = []string{""}
			}
			for _, p := range r.Paths {
				for _, m := range methods {
					match := gatewayv1.HTTPRouteMatch{Path: routePath(p)}
					if m != "" {
						match.Method = ptr.To(gatewayv1.HTTPMethod(m))
					}
					matches = append(matches, match)
				}
			}
		}
		rules = append(rules, gatewayv1.HTTPRouteRule{
			Matches: matches,
			BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{
					Name: gatewayv1.ObjectName(Name(shop, string(svc))),
					Port: ptr.To(gatewayv1.PortNumber(callgraph.PublicPort.Number)),
				},
			}}},
		})
	}
	if len(rules) == 0 {
		return nil
	}
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   gatewayTypeMeta("HTTPRoute"),
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: gatewayv1.ObjectName(GatewayName(shop))}}},
			Rules:           rules,
		},
	}
	for _, h := range shop.Spec.Gateway.Hosts {
		route.Spec.Hostnames = append(route.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return route
}

// routePath turns a call-graph path into a Gateway API match: "/a/*" is the
// prefix "/a", anything else an exact path.
func routePath(p string) *gatewayv1.HTTPPathMatch {
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		prefix = cmp.Or(strings.TrimSuffix(prefix, "/"), "/")
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(prefix)}
	}
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To(p)}
}

// JWKSConfigMap publishes the public keys that verify the Shop's tokens; nil
// until the signing key exists.
func JWKSConfigMap(shop *shopv1.Shop, in Inputs) *corev1.ConfigMap {
	if in.JWKS == "" {
		return nil
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: ObjectMeta(shop, JWKSConfigMapName(shop), ComponentSecurity),
		Data:       map[string]string{JWKSKey: in.JWKS},
	}
}

// CABundleConfigMapName holds the CA certificate that signed the services'
// certificates, for gateways that verify them.
func CABundleConfigMapName(shop *shopv1.Shop) string { return Name(shop, "ca-bundle") }

// CABundleConfigMap publishes the CA certificate of the services'
// certificates; nil until cert-manager has issued one (Inputs.CABundle), and
// when no Gateway needs it.
func CABundleConfigMap(shop *shopv1.Shop, in Inputs) *corev1.ConfigMap {
	if in.CABundle == "" || len(shop.Spec.Gateway.Hosts) == 0 || Mesh(shop) != shopv1.MeshNone {
		return nil
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: ObjectMeta(shop, CABundleConfigMapName(shop), ComponentGateway),
		Data:       map[string]string{"ca.crt": in.CABundle},
	}
}

// BackendTLSPolicy makes the gateway open TLS to a service's public port and
// verify its certificate, under mesh none (with Istio the sidecars carry mTLS
// and the port is plain HTTP). Nil when the gateway does not route to the
// service or the CA bundle is not known yet.
func BackendTLSPolicy(shop *shopv1.Shop, in Inputs, svc shopv1.ServiceName) *gatewayv1.BackendTLSPolicy {
	if CABundleConfigMap(shop, in) == nil || HTTPRoute(shop, svc) == nil {
		return nil
	}
	return &gatewayv1.BackendTLSPolicy{
		TypeMeta:   gatewayTypeMeta("BackendTLSPolicy"),
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: gatewayv1.BackendTLSPolicySpec{
			TargetRefs: []gatewayv1.LocalPolicyTargetReferenceWithSectionName{{
				LocalPolicyTargetReference: gatewayv1.LocalPolicyTargetReference{
					Group: "", Kind: "Service", Name: gatewayv1.ObjectName(Name(shop, string(svc))),
				},
				SectionName: ptr.To(gatewayv1.SectionName(callgraph.PublicPort.Name)),
			}},
			Validation: gatewayv1.BackendTLSPolicyValidation{
				CACertificateRefs: []gatewayv1.LocalObjectReference{{Group: "", Kind: "ConfigMap", Name: gatewayv1.ObjectName(CABundleConfigMapName(shop))}},
				Hostname:          gatewayv1.PreciseHostname(Name(shop, string(svc)) + "." + shop.Namespace + ".svc"),
			},
		},
	}
}
