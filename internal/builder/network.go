package builder

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

// Labels of pods outside the Shop that the call graph names.
const (
	// GatewayNameLabel is set by Gateway API implementations on the pods they
	// run for a Gateway.
	GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"
	// OperatorPodLabelValue is the app.kubernetes.io/name of the manager's pods.
	OperatorPodLabelValue = "shopstack-operator"
	namespaceNameLabel    = "kubernetes.io/metadata.name"
)

// GatewayName is the name of the Shop's Gateway.
func GatewayName(shop *shopv1.Shop) string { return Name(shop, ComponentGateway) }

// peers translates a call-graph peer into NetworkPolicy peers.
func peers(shop *shopv1.Shop, in Inputs, p callgraph.Peer) []networkingv1.NetworkPolicyPeer {
	switch p {
	case callgraph.Gateway:
		return []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{GatewayNameLabel: GatewayName(shop)},
		}}}
	case callgraph.Monitoring:
		return []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{callgraph.MonitoringNamespaceLabel: "true"},
		}}}
	case callgraph.Operator:
		ns := in.OperatorNamespace
		if ns == "" {
			ns = DefaultOperatorNS
		}
		return []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: ns}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: OperatorPodLabelValue}},
		}}
	default:
		return []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: SelectorLabels(shop, string(p))}}}
	}
}

func policyPorts(ports []callgraph.Port) []networkingv1.NetworkPolicyPort {
	out := make([]networkingv1.NetworkPolicyPort, 0, len(ports))
	for _, p := range ports {
		out = append(out, networkingv1.NetworkPolicyPort{
			Protocol: ptr.To(corev1.ProtocolTCP),
			Port:     ptr.To(intstr.FromInt32(p.Number)),
		})
	}
	return out
}

// CallGraphNetworkPolicy allows exactly the flows of the call graph into and
// out of one peer of the Shop (a service, Postgres or Redis), on their ports.
// It adds to DefaultDenyNetworkPolicy; nil when network policies are off.
func CallGraphNetworkPolicy(shop *shopv1.Shop, in Inputs, component string) *networkingv1.NetworkPolicy {
	if !NetworkPoliciesEnabled(shop) {
		return nil
	}
	me := callgraph.Peer(component)
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: ObjectMeta(shop, Name(shop, component), component),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(shop, component)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	for _, f := range callgraph.Into(me) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			From: peers(shop, in, f.From), Ports: policyPorts(f.Ports),
		})
	}
	for _, f := range callgraph.OutOf(me) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
			To: peers(shop, in, f.To), Ports: policyPorts(f.Ports),
		})
	}
	return np
}

// DefaultDenyNetworkPolicy denies all traffic to and from the Shop's pods but
// DNS (and, under Istio, the sidecars' connection to istiod).
func DefaultDenyNetworkPolicy(shop *shopv1.Shop) *networkingv1.NetworkPolicy {
	if !NetworkPoliciesEnabled(shop) {
		return nil
	}
	dnsPorts := []networkingv1.NetworkPolicyPort{
		{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))},
		{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(53))},
	}
	egress := []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: dnsPorts,
	}}
	if Mesh(shop) == shopv1.MeshIstio {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: "istio-system"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "istiod"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(15012))}},
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: ObjectMeta(shop, Name(shop, "default-deny"), ComponentSecurity),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: InstanceSelector(shop)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      egress,
		},
	}
}
