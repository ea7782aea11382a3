package builder

import (
	"fmt"

	istiosec "istio.io/api/security/v1beta1"
	istiotype "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

var istioTypeMeta = func(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: securityv1.SchemeGroupVersion.String(), Kind: kind}
}

// istioPrincipal is the Istio peer identity of a service account: its SPIFFE
// ID without the scheme.
func istioPrincipal(shop *shopv1.Shop, serviceAccount string) string {
	return fmt.Sprintf("%s/ns/%s/sa/%s", TrustDomain(shop), shop.Namespace, serviceAccount)
}

// GatewayServiceAccount is the service account Istio gives the pods it runs
// for the Shop's Gateway (<gateway>-<class>).
func GatewayServiceAccount(shop *shopv1.Shop) string {
	class := shop.Spec.Gateway.ClassName
	if class == "" {
		class = "istio"
	}
	return GatewayName(shop) + "-" + class
}

func principalOf(shop *shopv1.Shop, p callgraph.Peer) string {
	if p == callgraph.Gateway {
		return istioPrincipal(shop, GatewayServiceAccount(shop))
	}
	return istioPrincipal(shop, Name(shop, string(p)))
}

func serviceWorkloads(shop *shopv1.Shop, component string) *istiotype.WorkloadSelector {
	if component == "" {
		return &istiotype.WorkloadSelector{MatchLabels: map[string]string{LabelName: NameValue, LabelInstance: shop.Name, LabelTier: TierService}}
	}
	return &istiotype.WorkloadSelector{MatchLabels: SelectorLabels(shop, component)}
}

// AuthorizationPolicy allows exactly the call graph's HTTP flows into one
// service: each caller's identity, on its port, methods and paths, plus an
// end-user token where the flow requires one. Only under mesh istio.
func AuthorizationPolicy(shop *shopv1.Shop, svc shopv1.ServiceName) *securityv1.AuthorizationPolicy {
	if Mesh(shop) != shopv1.MeshIstio {
		return nil
	}
	var rules []*istiosec.Rule
	for _, f := range callgraph.Into(callgraph.Peer(svc)) {
		if f.From == callgraph.Monitoring {
			continue // the ops port is opened below, for scrapers without a mesh identity
		}
		src := &istiosec.Source{Principals: []string{principalOf(shop, f.From)}}
		if f.RequireJWT {
			src.RequestPrincipals = []string{JWTIssuer(shop) + "/*"}
		}
		var ports []string
		for _, p := range f.Ports {
			ports = append(ports, fmt.Sprint(p.Number))
		}
		for _, r := range f.Rules {
			rules = append(rules, &istiosec.Rule{
				From: []*istiosec.Rule_From{{Source: src}},
				To:   []*istiosec.Rule_To{{Operation: &istiosec.Operation{Ports: ports, Methods: r.Methods, Paths: r.Paths}}},
			})
		}
	}
	rules = append(rules, &istiosec.Rule{
		To: []*istiosec.Rule_To{{Operation: &istiosec.Operation{
			Ports: []string{fmt.Sprint(callgraph.OpsPort.Number)}, Methods: []string{"GET"},
			Paths: []string{"/healthz", "/readyz", "/metrics"},
		}}},
	})
	return &securityv1.AuthorizationPolicy{
		TypeMeta:   istioTypeMeta("AuthorizationPolicy"),
		ObjectMeta: ObjectMeta(shop, Name(shop, string(svc)), string(svc)),
		Spec: istiosec.AuthorizationPolicy{
			Selector: serviceWorkloads(shop, string(svc)),
			Action:   istiosec.AuthorizationPolicy_ALLOW,
			Rules:    rules,
		},
	}
}

// GatewayAuthorizationPolicy limits the gateway to allowedSourceRanges under
// mesh istio; nil when every source is allowed.
func GatewayAuthorizationPolicy(shop *shopv1.Shop) *securityv1.AuthorizationPolicy {
	if Mesh(shop) != shopv1.MeshIstio || len(shop.Spec.Gateway.AllowedSourceRanges) == 0 || len(shop.Spec.Gateway.Hosts) == 0 {
		return nil
	}
	var blocks []string
	for _, r := range shop.Spec.Gateway.AllowedSourceRanges {
		blocks = append(blocks, string(r))
	}
	return &securityv1.AuthorizationPolicy{
		TypeMeta:   istioTypeMeta("AuthorizationPolicy"),
		ObjectMeta: ObjectMeta(shop, Name(shop, ComponentGateway), ComponentGateway),
		Spec: istiosec.AuthorizationPolicy{
			Selector: &istiotype.WorkloadSelector{MatchLabels: map[string]string{GatewayNameLabel: GatewayName(shop)}},
			Action:   istiosec.AuthorizationPolicy_ALLOW,
			Rules:    []*istiosec.Rule{{From: []*istiosec.Rule_From{{Source: &istiosec.Source{RemoteIpBlocks: blocks}}}}},
		},
	}
}

// PeerAuthentication requires mTLS on every service port but the ops port,
// which kubelet probes and Prometheus reach without a mesh identity.
func PeerAuthentication(shop *shopv1.Shop) *securityv1.PeerAuthentication {
	if Mesh(shop) != shopv1.MeshIstio {
		return nil
	}
	return &securityv1.PeerAuthentication{
		TypeMeta:   istioTypeMeta("PeerAuthentication"),
		ObjectMeta: ObjectMeta(shop, Name(shop, "mtls"), ComponentSecurity),
		Spec: istiosec.PeerAuthentication{
			Selector: serviceWorkloads(shop, ""),
			Mtls:     &istiosec.PeerAuthentication_MutualTLS{Mode: istiosec.PeerAuthentication_MutualTLS_STRICT},
			PortLevelMtls: map[uint32]*istiosec.PeerAuthentication_MutualTLS{
				uint32(callgraph.OpsPort.Number): {Mode: istiosec.PeerAuthentication_MutualTLS_PERMISSIVE},
			},
		},
	}
}

// RequestAuthentication validates end-user tokens at the sidecars with the
// Shop's JWKS inline, so no sidecar fetches keys from the user service. Nil
// until the JWKS is known, and outside mesh istio.
func RequestAuthentication(shop *shopv1.Shop, in Inputs) *securityv1.RequestAuthentication {
	if Mesh(shop) != shopv1.MeshIstio || in.JWKS == "" {
		return nil
	}
	return &securityv1.RequestAuthentication{
		TypeMeta:   istioTypeMeta("RequestAuthentication"),
		ObjectMeta: ObjectMeta(shop, Name(shop, "jwt"), ComponentSecurity),
		Spec: istiosec.RequestAuthentication{
			Selector: serviceWorkloads(shop, ""),
			JwtRules: []*istiosec.JWTRule{{
				Issuer:               JWTIssuer(shop),
				Audiences:            []string{JWTAudience(shop)},
				Jwks:                 in.JWKS,
				ForwardOriginalToken: true,
			}},
		},
	}
}
