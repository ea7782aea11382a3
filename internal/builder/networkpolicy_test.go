package builder

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

// pod is what NetworkPolicies see of a pod: its namespace and labels.
type pod struct {
	namespace string
	labels    map[string]string
}

func (p pod) String() string { return fmt.Sprintf("%s/%v", p.namespace, p.labels) }

// networkModel answers whether one pod may open a connection to another under
// the Kubernetes NetworkPolicy semantics:
//   - a pod selected by any policy with a policy type is isolated for that
//     direction; a pod no policy selects is not;
//   - an isolated pod admits a connection when any rule of any policy that
//     selects it admits it (policies only add);
//   - a connection needs the source's egress and the destination's ingress.
//
// Pods have no IP addresses here, so ipBlock peers are refused outright
// rather than silently mis-modelled.
type networkModel struct {
	t          *testing.T
	policies   []*networkingv1.NetworkPolicy
	namespaces map[string]map[string]string // extra namespace labels
}

func newNetworkModel(t *testing.T, policies []*networkingv1.NetworkPolicy) *networkModel {
	t.Helper()
	for _, np := range policies {
		for _, r := range np.Spec.Ingress {
			for _, p := range r.From {
				if p.IPBlock != nil {
					t.Fatalf("NetworkPolicy %s uses ipBlock, which this model does not evaluate", np.Name)
				}
			}
		}
		for _, r := range np.Spec.Egress {
			for _, p := range r.To {
				if p.IPBlock != nil {
					t.Fatalf("NetworkPolicy %s uses ipBlock, which this model does not evaluate", np.Name)
				}
			}
		}
	}
	return &networkModel{t: t, policies: policies, namespaces: map[string]map[string]string{}}
}

// namespaceLabels are a namespace's labels, with the one the API server sets on every namespace.
func (m *networkModel) namespaceLabels(ns string) labels.Set {
	l := maps.Clone(m.namespaces[ns])
	if l == nil {
		l = map[string]string{}
	}
	l["kubernetes.io/metadata.name"] = ns
	return l
}

func (m *networkModel) matches(sel *metav1.LabelSelector, set map[string]string) bool {
	m.t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		m.t.Fatalf("invalid selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(set))
}

func hasPolicyType(np *networkingv1.NetworkPolicy, pt networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		// The API server's default: Ingress always, Egress when egress rules exist.
		return pt == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, pt)
}

// peerMatches reports whether a policy peer (in the policy's namespace) names p.
func (m *networkModel) peerMatches(policyNS string, peer networkingv1.NetworkPolicyPeer, p pod) bool {
	switch {
	case peer.NamespaceSelector == nil && peer.PodSelector == nil:
		return false // an ipBlock-only peer; refused in newNetworkModel
	case peer.NamespaceSelector == nil:
		return p.namespace == policyNS && m.matches(peer.PodSelector, p.labels)
	case peer.PodSelector == nil:
		return m.matches(peer.NamespaceSelector, m.namespaceLabels(p.namespace))
	default:
		return m.matches(peer.NamespaceSelector, m.namespaceLabels(p.namespace)) && m.matches(peer.PodSelector, p.labels)
	}
}

func (m *networkModel) peersMatch(policyNS string, peers []networkingv1.NetworkPolicyPeer, p pod) bool {
	if len(peers) == 0 {
		return true // no peers: every source or destination
	}
	for _, peer := range peers {
		if m.peerMatches(policyNS, peer, p) {
			return true
		}
	}
	return false
}

func (m *networkModel) portsMatch(ports []networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) bool {
	m.t.Helper()
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		want := corev1.ProtocolTCP
		if pp.Protocol != nil {
			want = *pp.Protocol
		}
		if want != proto {
			continue
		}
		if pp.Port == nil {
			return true
		}
		if pp.Port.Type == intstr.String {
			m.t.Fatalf("named port %q: this model needs numbers", pp.Port.StrVal)
		}
		end := pp.Port.IntVal
		if pp.EndPort != nil {
			end = *pp.EndPort
		}
		if port >= pp.Port.IntVal && port <= end {
			return true
		}
	}
	return false
}

// ingressAllowed reports whether dst accepts a connection from src.
func (m *networkModel) ingressAllowed(src, dst pod, proto corev1.Protocol, port int32) bool {
	isolated := false
	for _, np := range m.policies {
		if np.Namespace != dst.namespace || !hasPolicyType(np, networkingv1.PolicyTypeIngress) || !m.matches(&np.Spec.PodSelector, dst.labels) {
			continue
		}
		isolated = true
		for _, r := range np.Spec.Ingress {
			if m.peersMatch(np.Namespace, r.From, src) && m.portsMatch(r.Ports, proto, port) {
				return true
			}
		}
	}
	return !isolated
}

// egressAllowed reports whether src may open a connection to dst.
func (m *networkModel) egressAllowed(src, dst pod, proto corev1.Protocol, port int32) bool {
	isolated := false
	for _, np := range m.policies {
		if np.Namespace != src.namespace || !hasPolicyType(np, networkingv1.PolicyTypeEgress) || !m.matches(&np.Spec.PodSelector, src.labels) {
			continue
		}
		isolated = true
		for _, r := range np.Spec.Egress {
			if m.peersMatch(np.Namespace, r.To, dst) && m.portsMatch(r.Ports, proto, port) {
				return true
			}
		}
	}
	return !isolated
}

// allowed reports whether src may connect to dst on proto/port.
func (m *networkModel) allowed(src, dst pod, proto corev1.Protocol, port int32) bool {
	return m.egressAllowed(src, dst, proto, port) && m.ingressAllowed(src, dst, proto, port)
}

// shopPods are the pods of each Shop workload, labelled as their templates
// say, plus the pods outside the Shop that the call graph names.
func shopPods(t *testing.T, shop *shopv1.Shop, in Inputs) (map[string]pod, *networkModel) {
	t.Helper()
	objs := Build(shop, in)
	pods := map[string]pod{}
	for _, c := range []string{"user", "order", "payment", "inventory", ComponentPostgres, ComponentRedis} {
		var tpl map[string]string
		for kn, pt := range podTemplates(objs) {
			if kn == "Deployment/"+Name(shop, c) || kn == "StatefulSet/"+Name(shop, c) {
				tpl = pt.Labels
			}
		}
		if tpl == nil {
			t.Fatalf("no workload for %s", c)
		}
		pods[c] = pod{namespace: shop.Namespace, labels: tpl}
	}
	// What the Gateway API implementation runs for the Shop's Gateway.
	pods["gateway"] = pod{namespace: shop.Namespace, labels: map[string]string{GatewayNameLabel: GatewayName(shop)}}
	// Another Gateway's pods in the same namespace.
	pods["other gateway"] = pod{namespace: shop.Namespace, labels: map[string]string{GatewayNameLabel: "other-gateway"}}
	pods["unlabelled pod"] = pod{namespace: shop.Namespace, labels: map[string]string{}}
	pods["kube-dns"] = pod{namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	pods["istiod"] = pod{namespace: "istio-system", labels: map[string]string{"app": "istiod"}}
	pods["operator"] = pod{namespace: in.OperatorNamespace, labels: map[string]string{LabelName: OperatorPodLabelValue}}
	pods["operator lookalike"] = pod{namespace: "elsewhere", labels: map[string]string{LabelName: OperatorPodLabelValue}}
	pods["prometheus"] = pod{namespace: "monitoring", labels: map[string]string{"app": "prometheus"}}
	// Anything outside the cluster's pods is approximated by a pod with no
	// labels in a namespace with none: no rule of the Shop names it.
	pods["internet"] = pod{namespace: "outside", labels: map[string]string{}}
	// Pods of another Shop in the same namespace.
	other := testShop(withName("other"))
	pods["other shop's order"] = pod{namespace: shop.Namespace, labels: podLabels(other, "order", TierService)}

	model := newNetworkModel(t, all[*networkingv1.NetworkPolicy](objs))
	model.namespaces["monitoring"] = map[string]string{callgraph.MonitoringNamespaceLabel: "true"}
	return pods, model
}

func TestNetworkPoliciesAllowExactlyTheCallGraph(t *testing.T) {
	const tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	tests := map[string]struct {
		from, to string
		proto    corev1.Protocol
		port     int32
		want     bool
	}{
		"order calls inventory's internal port":         {from: "order", to: "inventory", proto: tcp, port: 9443, want: true},
		"order calls payment's internal port":           {from: "order", to: "payment", proto: tcp, port: 9443, want: true},
		"payment may not call inventory":                {from: "payment", to: "inventory", proto: tcp, port: 9443, want: false},
		"inventory may not call payment":                {from: "inventory", to: "payment", proto: tcp, port: 9443, want: false},
		"user may not call order":                       {from: "user", to: "order", proto: tcp, port: 9443, want: false},
		"order may not reach payment's public port":     {from: "order", to: "payment", proto: tcp, port: 8443, want: false},
		"user reaches Postgres":                         {from: "user", to: ComponentPostgres, proto: tcp, port: 5432, want: true},
		"payment reaches Postgres":                      {from: "payment", to: ComponentPostgres, proto: tcp, port: 5432, want: true},
		"payment has no business with Redis":            {from: "payment", to: ComponentRedis, proto: tcp, port: 6379, want: false},
		"order reaches Redis":                           {from: "order", to: ComponentRedis, proto: tcp, port: 6379, want: true},
		"inventory reaches the Sentinels":               {from: "inventory", to: ComponentRedis, proto: tcp, port: 26379, want: true},
		"an unlabelled pod may not reach Postgres":      {from: "unlabelled pod", to: ComponentPostgres, proto: tcp, port: 5432, want: false},
		"another Shop's service may not reach Postgres": {from: "other shop's order", to: ComponentPostgres, proto: tcp, port: 5432, want: false},
		"the gateway reaches order's public port":       {from: "gateway", to: "order", proto: tcp, port: 8443, want: true},
		"the gateway reaches user's public port":        {from: "gateway", to: "user", proto: tcp, port: 8443, want: true},
		"the gateway may not reach payment":             {from: "gateway", to: "payment", proto: tcp, port: 8443, want: false},
		"the gateway may not reach an internal port":    {from: "gateway", to: "inventory", proto: tcp, port: 9443, want: false},
		"another gateway may not reach order":           {from: "other gateway", to: "order", proto: tcp, port: 8443, want: false},
		"Postgres replicates from Postgres":             {from: ComponentPostgres, to: ComponentPostgres, proto: tcp, port: 5432, want: true},
		"Redis replicates from Redis":                   {from: ComponentRedis, to: ComponentRedis, proto: tcp, port: 6379, want: true},
		"Sentinels talk to each other":                  {from: ComponentRedis, to: ComponentRedis, proto: tcp, port: 26379, want: true},
		"Postgres may not call a service":               {from: ComponentPostgres, to: "order", proto: tcp, port: 9443, want: false},
		"the operator reaches Postgres":                 {from: "operator", to: ComponentPostgres, proto: tcp, port: 5432, want: true},
		"an operator lookalike elsewhere may not":       {from: "operator lookalike", to: ComponentPostgres, proto: tcp, port: 5432, want: false},
		"Prometheus scrapes an ops port":                {from: "prometheus", to: "payment", proto: tcp, port: 8081, want: true},
		"Prometheus may not call the internal port":     {from: "prometheus", to: "payment", proto: tcp, port: 9443, want: false},
		"Prometheus may not reach Postgres":             {from: "prometheus", to: ComponentPostgres, proto: tcp, port: 5432, want: false},
		"a service resolves names over UDP":             {from: "order", to: "kube-dns", proto: udp, port: 53, want: true},
		"a service resolves names over TCP":             {from: "payment", to: "kube-dns", proto: tcp, port: 53, want: true},
		"Postgres resolves names":                       {from: ComponentPostgres, to: "kube-dns", proto: udp, port: 53, want: true},
		"kube-dns is reached on port 53 only":           {from: "order", to: "kube-dns", proto: tcp, port: 443, want: false},
		"order may not reach the internet":              {from: "order", to: "internet", proto: tcp, port: 443, want: false},
		"payment may not reach the internet":            {from: "payment", to: "internet", proto: tcp, port: 443, want: false},
		"the internet may not reach a service":          {from: "internet", to: "order", proto: tcp, port: 8443, want: false},
		"without a mesh there is no istiod to reach":    {from: "order", to: "istiod", proto: tcp, port: 15012, want: false},
	}
	pods, model := shopPods(t, sampleShop(shopv1.MeshNone), testInputs())
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			from, to := pods[tc.from], pods[tc.to]
			if from.labels == nil || to.labels == nil {
				t.Fatalf("unknown pod %q or %q", tc.from, tc.to)
			}
			if got := model.allowed(from, to, tc.proto, tc.port); got != tc.want {
				t.Errorf("%s -> %s %s/%d: allowed = %v, want %v (egress %v, ingress %v)", tc.from, tc.to, tc.proto, tc.port, got, tc.want,
					model.egressAllowed(from, to, tc.proto, tc.port), model.ingressAllowed(from, to, tc.proto, tc.port))
			}
		})
	}
}

func TestNetworkPoliciesUnderIstioLetSidecarsReachIstiod(t *testing.T) {
	pods, model := shopPods(t, sampleShop(shopv1.MeshIstio), testInputs())
	if !model.allowed(pods["order"], pods["istiod"], corev1.ProtocolTCP, 15012) {
		t.Error("order's sidecar may not reach istiod on 15012")
	}
	if model.allowed(pods["order"], pods["istiod"], corev1.ProtocolTCP, 443) {
		t.Error("order may reach istiod on 443, want only 15012")
	}
}

func TestNetworkPoliciesOffLeaveTrafficAlone(t *testing.T) {
	pods, model := shopPods(t, testShop(withNetworkPolicies(false)), testInputs())
	if !model.allowed(pods["unlabelled pod"], pods[ComponentPostgres], corev1.ProtocolTCP, 5432) {
		t.Error("with networkPolicies false, an unlabelled pod is still blocked from Postgres")
	}
}

// TestNetworkPoliciesAgreeWithTheCallGraph checks every pair of Shop peers on
// every port: L4 is allowed exactly when a flow of the call graph declares it.
func TestNetworkPoliciesAgreeWithTheCallGraph(t *testing.T) {
	pods, model := shopPods(t, sampleShop(shopv1.MeshNone), testInputs())
	peers := []callgraph.Peer{callgraph.Gateway, callgraph.User, callgraph.Order, callgraph.Payment, callgraph.Inventory, callgraph.Postgres, callgraph.Redis, callgraph.Operator}
	ports := []callgraph.Port{callgraph.PublicPort, callgraph.InternalPort, callgraph.OpsPort, callgraph.PostgresPort, callgraph.RedisPort, callgraph.SentinelPort}
	podOf := map[callgraph.Peer]pod{callgraph.Operator: pods["operator"], callgraph.Gateway: pods["gateway"]}
	for _, p := range peers {
		if _, ok := podOf[p]; !ok {
			podOf[p] = pods[string(p)]
		}
	}
	for _, from := range peers {
		for _, to := range peers {
			if to == callgraph.Gateway || to == callgraph.Operator {
				continue // not the Shop's pods: their policies are not ours
			}
			for _, port := range ports {
				want := false
				for _, f := range callgraph.Flows {
					if f.From == from && f.To == to && slices.Contains(f.Ports, port) {
						want = true
					}
				}
				if got := model.allowed(podOf[from], podOf[to], corev1.ProtocolTCP, port.Number); got != want {
					t.Errorf("%s -> %s :%d (%s): NetworkPolicies allow = %v, call graph = %v", from, to, port.Number, port.Name, got, want)
				}
			}
		}
	}
}

func TestDNSEgressOnlyReachesTheClusterDNS(t *testing.T) {
	pods, model := shopPods(t, sampleShop(shopv1.MeshNone), testInputs())
	impostor := pod{namespace: "tenant-b", labels: map[string]string{"k8s-app": "kube-dns"}}
	if model.allowed(pods["payment"], impostor, corev1.ProtocolUDP, 53) {
		t.Error("payment may send to a pod labelled k8s-app=kube-dns in namespace tenant-b: a way out of the default deny")
	}
}

// TestNetworkModel keeps the evaluator above honest on hand-written policies.
func TestNetworkModel(t *testing.T) {
	web := pod{namespace: "a", labels: map[string]string{"app": "web"}}
	db := pod{namespace: "a", labels: map[string]string{"app": "db"}}
	webB := pod{namespace: "b", labels: map[string]string{"app": "web"}}
	policy := func(ns string, selected map[string]string, types []networkingv1.PolicyType, ingress ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
		np := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selected}, PolicyTypes: types, Ingress: ingress,
		}}
		np.Namespace = ns
		return np
	}
	ingressOnly := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	fromWeb := networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}
	fromNamespaceB := networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "b"}}}}}
	tests := map[string]struct {
		policies []*networkingv1.NetworkPolicy
		from, to pod
		want     bool
	}{
		"no policy: everything flows":                      {from: web, to: db, want: true},
		"an isolating policy without rules denies":         {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, ingressOnly)}, from: web, to: db, want: false},
		"a policy that selects other pods changes nothing": {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "cache"}, ingressOnly)}, from: web, to: db, want: true},
		"a policy in another namespace changes nothing":    {policies: []*networkingv1.NetworkPolicy{policy("b", map[string]string{"app": "db"}, ingressOnly)}, from: web, to: db, want: true},
		"policies add up":                                  {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, ingressOnly), policy("a", map[string]string{"app": "db"}, ingressOnly, fromWeb)}, from: web, to: db, want: true},
		"a pod selector means the policy's namespace":      {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, ingressOnly, fromWeb)}, from: webB, to: db, want: false},
		"a namespace selector admits that namespace":       {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, ingressOnly, fromNamespaceB)}, from: webB, to: db, want: true},
		"a namespace selector admits no other":             {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, ingressOnly, fromNamespaceB)}, from: web, to: db, want: false},
		"egress isolation of the source denies":            {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "web"}, egressOnly)}, from: web, to: db, want: false},
		"egress isolation does not touch the destination":  {policies: []*networkingv1.NetworkPolicy{policy("a", map[string]string{"app": "db"}, egressOnly)}, from: web, to: db, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := newNetworkModel(t, tc.policies)
			if got := m.allowed(tc.from, tc.to, corev1.ProtocolTCP, 80); got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}
