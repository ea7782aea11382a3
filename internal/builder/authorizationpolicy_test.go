package builder

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	istiosec "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/callgraph"
)

// request is what an Istio sidecar knows about an incoming request.
type request struct {
	principal        string // the peer's mTLS identity, "" for plain text
	requestPrincipal string // iss/sub of a validated end-user JWT, "" without one
	remoteIP         string
	port             int
	method, path     string
}

// authzModel evaluates AuthorizationPolicies as Istio does for one workload:
// a DENY policy that matches refuses; with no ALLOW policy selecting the
// workload everything else is allowed; otherwise a request is allowed when a
// rule of a selecting ALLOW policy matches it. A rule matches when any of its
// from and any of its to match (an absent from or to matches everything), and
// within one source or operation every field that is set must match.
// Fields this model does not evaluate fail the test instead of being ignored.
type authzModel struct {
	t        *testing.T
	policies []*securityv1.AuthorizationPolicy
}

// istioMatch is Istio's string match: exact, "*" for any non-empty value,
// "prefix*" or "*suffix".
func istioMatch(pattern, v string) bool {
	switch {
	case pattern == "*":
		return v != ""
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == v
}

func anyMatch(patterns []string, v string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return istioMatch(p, v) })
}

func (m *authzModel) ipIn(blocks []string, ip string) bool {
	m.t.Helper()
	if ip == "" {
		return false
	}
	addr := netip.MustParseAddr(ip)
	for _, b := range blocks {
		if !strings.Contains(b, "/") {
			if netip.MustParseAddr(b) == addr {
				return true
			}
			continue
		}
		if netip.MustParsePrefix(b).Contains(addr) {
			return true
		}
	}
	return false
}

func (m *authzModel) sourceMatches(s *istiosec.Source, r request) bool {
	m.t.Helper()
	if len(s.NotPrincipals)+len(s.NotRequestPrincipals)+len(s.NotNamespaces)+len(s.NotIpBlocks)+len(s.NotRemoteIpBlocks)+len(s.Namespaces)+len(s.IpBlocks) > 0 {
		m.t.Fatalf("source %v uses fields this model does not evaluate", s)
	}
	if len(s.Principals) > 0 && !anyMatch(s.Principals, r.principal) {
		return false
	}
	if len(s.RequestPrincipals) > 0 && !anyMatch(s.RequestPrincipals, r.requestPrincipal) {
		return false
	}
	if len(s.RemoteIpBlocks) > 0 && !m.ipIn(s.RemoteIpBlocks, r.remoteIP) {
		return false
	}
	return true
}

func (m *authzModel) operationMatches(o *istiosec.Operation, r request) bool {
	m.t.Helper()
	if len(o.Hosts)+len(o.NotHosts)+len(o.NotPorts)+len(o.NotMethods)+len(o.NotPaths) > 0 {
		m.t.Fatalf("operation %v uses fields this model does not evaluate", o)
	}
	if len(o.Ports) > 0 && !slices.Contains(o.Ports, fmt.Sprint(r.port)) {
		return false
	}
	if len(o.Methods) > 0 && !anyMatch(o.Methods, r.method) {
		return false
	}
	if len(o.Paths) > 0 && !anyMatch(o.Paths, r.path) {
		return false
	}
	return true
}

func (m *authzModel) ruleMatches(rule *istiosec.Rule, r request) bool {
	m.t.Helper()
	if len(rule.When) > 0 {
		m.t.Fatalf("rule %v uses conditions this model does not evaluate", rule)
	}
	if len(rule.From) > 0 && !slices.ContainsFunc(rule.From, func(f *istiosec.Rule_From) bool { return m.sourceMatches(f.Source, r) }) {
		return false
	}
	if len(rule.To) > 0 && !slices.ContainsFunc(rule.To, func(to *istiosec.Rule_To) bool { return m.operationMatches(to.Operation, r) }) {
		return false
	}
	return true
}

// allowed reports whether a workload with labels in namespace ns accepts r.
func (m *authzModel) allowed(ns string, workload map[string]string, r request) bool {
	m.t.Helper()
	var allow []*securityv1.AuthorizationPolicy
	for _, p := range m.policies {
		if p.Namespace != ns {
			continue
		}
		if sel := p.Spec.GetSelector(); sel != nil {
			selected := true
			for k, v := range sel.MatchLabels {
				if workload[k] != v {
					selected = false
				}
			}
			if !selected {
				continue
			}
		}
		switch p.Spec.Action {
		case istiosec.AuthorizationPolicy_DENY:
			if slices.ContainsFunc(p.Spec.Rules, func(rule *istiosec.Rule) bool { return m.ruleMatches(rule, r) }) {
				return false
			}
		case istiosec.AuthorizationPolicy_ALLOW:
			allow = append(allow, p)
		default:
			m.t.Fatalf("AuthorizationPolicy %s: action %s is not evaluated by this model", p.Name, p.Spec.Action)
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, p := range allow {
		if slices.ContainsFunc(p.Spec.Rules, func(rule *istiosec.Rule) bool { return m.ruleMatches(rule, r) }) {
			return true
		}
	}
	return false
}

// Istio principals of the sample Shop's parties.
const (
	gatewayPrincipal   = "cluster.local/ns/shop/sa/acme-gateway-istio"
	userPrincipal      = "cluster.local/ns/shop/sa/acme-user"
	orderPrincipal     = "cluster.local/ns/shop/sa/acme-order"
	paymentPrincipal   = "cluster.local/ns/shop/sa/acme-payment"
	inventoryPrincipal = "cluster.local/ns/shop/sa/acme-inventory"
	endUser            = "https://shop.example.com/6f1c2d0e-customer"
)

func istioModel(t *testing.T, shop *shopv1.Shop) (*authzModel, map[string]map[string]string) {
	t.Helper()
	objs := Build(shop, testInputs())
	workloads := map[string]map[string]string{}
	for _, svc := range shopv1.AllServices {
		workloads[string(svc)] = podLabels(shop, string(svc), TierService)
	}
	workloads["gateway"] = map[string]string{GatewayNameLabel: GatewayName(shop)}
	return &authzModel{t: t, policies: all[*securityv1.AuthorizationPolicy](objs)}, workloads
}

func TestAuthorizationPolicies(t *testing.T) {
	tests := map[string]struct {
		to   string
		req  request
		want bool
	}{
		"a signed-in customer places an order through the gateway": {
			to:   "order",
			req:  request{principal: gatewayPrincipal, requestPrincipal: endUser, port: 8443, method: "POST", path: "/v1/orders"},
			want: true,
		},
		"a customer reads one order": {
			to:   "order",
			req:  request{principal: gatewayPrincipal, requestPrincipal: endUser, port: 8443, method: "GET", path: "/v1/orders/42"},
			want: true,
		},
		"an order without a token is refused": {
			to:   "order",
			req:  request{principal: gatewayPrincipal, port: 8443, method: "POST", path: "/v1/orders"},
			want: false,
		},
		"a token from another issuer is refused": {
			to:   "order",
			req:  request{principal: gatewayPrincipal, requestPrincipal: "https://evil.example/alice", port: 8443, method: "POST", path: "/v1/orders"},
			want: false,
		},
		"a token without the gateway is refused": {
			to:   "order",
			req:  request{principal: userPrincipal, requestPrincipal: endUser, port: 8443, method: "POST", path: "/v1/orders"},
			want: false,
		},
		"a path next to the orders is refused": {
			to:   "order",
			req:  request{principal: gatewayPrincipal, requestPrincipal: endUser, port: 8443, method: "GET", path: "/v1/ordersx"},
			want: false,
		},
		"order charges a payment": {
			to:   "payment",
			req:  request{principal: orderPrincipal, port: 9443, method: "POST", path: "/v1/payments"},
			want: true,
		},
		"order refunds a payment": {
			to:   "payment",
			req:  request{principal: orderPrincipal, port: 9443, method: "POST", path: "/v1/payments/p-1/refund"},
			want: true,
		},
		"inventory may not call payment": {
			to:   "payment",
			req:  request{principal: inventoryPrincipal, port: 9443, method: "POST", path: "/v1/payments"},
			want: false,
		},
		"order from another namespace may not call payment": {
			to:   "payment",
			req:  request{principal: "cluster.local/ns/other/sa/acme-order", port: 9443, method: "POST", path: "/v1/payments"},
			want: false,
		},
		"order may not use payment's public port": {
			to:   "payment",
			req:  request{principal: orderPrincipal, port: 8443, method: "POST", path: "/v1/payments"},
			want: false,
		},
		"the gateway may not reach payment": {
			to:   "payment",
			req:  request{principal: gatewayPrincipal, requestPrincipal: endUser, port: 8443, method: "POST", path: "/v1/payments"},
			want: false,
		},
		"anyone reads metrics on the ops port": {
			to:   "payment",
			req:  request{port: 8081, method: "GET", path: "/metrics"},
			want: true,
		},
		"probes reach readiness on the ops port": {
			to:   "order",
			req:  request{port: 8081, method: "GET", path: "/readyz"},
			want: true,
		},
		"the ops port is read-only": {
			to:   "payment",
			req:  request{port: 8081, method: "POST", path: "/metrics"},
			want: false,
		},
		"the ops port serves nothing else": {
			to:   "payment",
			req:  request{port: 8081, method: "GET", path: "/debug/pprof"},
			want: false,
		},
		"order reserves stock": {
			to:   "inventory",
			req:  request{principal: orderPrincipal, port: 9443, method: "POST", path: "/v1/reservations"},
			want: true,
		},
		"payment may not reserve stock": {
			to:   "inventory",
			req:  request{principal: paymentPrincipal, port: 9443, method: "POST", path: "/v1/reservations"},
			want: false,
		},
		"anonymous catalog browsing": {
			to:   "inventory",
			req:  request{principal: gatewayPrincipal, port: 8443, method: "GET", path: "/v1/products/sku-1"},
			want: true,
		},
		"the catalog is read-only from outside": {
			to:   "inventory",
			req:  request{principal: gatewayPrincipal, requestPrincipal: endUser, port: 8443, method: "POST", path: "/v1/products"},
			want: false,
		},
		"sign-in through the gateway": {
			to:   "user",
			req:  request{principal: gatewayPrincipal, port: 8443, method: "POST", path: "/v1/auth/token"},
			want: true,
		},
		"discovery through the gateway": {
			to:   "user",
			req:  request{principal: gatewayPrincipal, port: 8443, method: "GET", path: "/.well-known/openid-configuration"},
			want: true,
		},
		"an undeclared user path is refused": {
			to:   "user",
			req:  request{principal: gatewayPrincipal, port: 8443, method: "GET", path: "/v1/admin"},
			want: false,
		},
		"nobody calls user's internal port": {
			to:   "user",
			req:  request{principal: orderPrincipal, port: 9443, method: "GET", path: "/v1/users/me"},
			want: false,
		},
	}
	model, workloads := istioModel(t, sampleShop(shopv1.MeshIstio))
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := model.allowed(testNamespace, workloads[tc.to], tc.req); got != tc.want {
				t.Errorf("%s %+v: allowed = %v, want %v", tc.to, tc.req, got, tc.want)
			}
		})
	}
}

func TestGatewayAuthorizationPolicyLimitsSources(t *testing.T) {
	tests := map[string]struct {
		ip   string
		want bool
	}{
		"inside an allowed range":   {ip: "10.1.2.3", want: true},
		"inside the second range":   {ip: "192.0.2.77", want: true},
		"outside every range":       {ip: "198.51.100.1", want: false},
		"an unknown client address": {ip: "", want: false},
	}
	shop := testShop(withMesh(shopv1.MeshIstio), withHosts(testHost), withSourceRanges("10.0.0.0/8", "192.0.2.0/24"))
	model, workloads := istioModel(t, shop)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := request{remoteIP: tc.ip, port: 443, method: "GET", path: "/v1/products"}
			if got := model.allowed(testNamespace, workloads["gateway"], req); got != tc.want {
				t.Errorf("client %q at the gateway: allowed = %v, want %v", tc.ip, got, tc.want)
			}
		})
	}
}

// TestAuthorizationPoliciesAgreeWithTheCallGraph asks the generated policies
// and the call graph the same questions; the three enforcers must agree.
func TestAuthorizationPoliciesAgreeWithTheCallGraph(t *testing.T) {
	shop := sampleShop(shopv1.MeshIstio)
	model, workloads := istioModel(t, shop)
	principals := map[callgraph.Peer]string{
		callgraph.Gateway:   gatewayPrincipal,
		callgraph.User:      userPrincipal,
		callgraph.Order:     orderPrincipal,
		callgraph.Payment:   paymentPrincipal,
		callgraph.Inventory: inventoryPrincipal,
	}
	paths := []string{
		"/v1/auth/token", "/v1/users/me", "/.well-known/jwks.json", "/v1/orders", "/v1/orders/7",
		"/v1/products", "/v1/products/sku-1", "/v1/reservations", "/v1/reservations/r-1",
		"/v1/payments", "/v1/payments/p-1", "/v1/admin", "/",
	}
	for from, principal := range principals {
		for _, to := range callgraph.Services {
			for _, port := range []callgraph.Port{callgraph.PublicPort, callgraph.InternalPort} {
				for _, method := range []string{"GET", "HEAD", "POST", "DELETE"} {
					for _, path := range paths {
						req := request{principal: principal, requestPrincipal: endUser, port: int(port.Number), method: method, path: path}
						want := callgraph.Allowed(from, to, port, method, path)
						if got := model.allowed(testNamespace, workloads[string(to)], req); got != want {
							t.Errorf("%s -> %s :%d %s %s: AuthorizationPolicy allows = %v, call graph = %v", from, to, port.Number, method, path, got, want)
						}
					}
				}
			}
		}
	}
}

// TestAuthzModel keeps the evaluator above honest on hand-written policies.
func TestAuthzModel(t *testing.T) {
	workload := map[string]string{"app": "api"}
	allow := func(rules ...*istiosec.Rule) *securityv1.AuthorizationPolicy {
		p := &securityv1.AuthorizationPolicy{}
		p.Namespace = "a"
		p.Spec.Action = istiosec.AuthorizationPolicy_ALLOW
		p.Spec.Rules = rules
		return p
	}
	fromAlice := &istiosec.Rule{From: []*istiosec.Rule_From{{Source: &istiosec.Source{Principals: []string{"td/ns/a/sa/alice"}}}}}
	toAdmin := &istiosec.Rule{To: []*istiosec.Rule_To{{Operation: &istiosec.Operation{Paths: []string{"/admin/*"}}}}}
	tests := map[string]struct {
		policies []*securityv1.AuthorizationPolicy
		req      request
		want     bool
	}{
		"no policy allows":                     {req: request{path: "/"}, want: true},
		"an ALLOW policy without rules denies": {policies: []*securityv1.AuthorizationPolicy{allow()}, req: request{path: "/"}, want: false},
		"a matching principal":                 {policies: []*securityv1.AuthorizationPolicy{allow(fromAlice)}, req: request{principal: "td/ns/a/sa/alice"}, want: true},
		"another principal":                    {policies: []*securityv1.AuthorizationPolicy{allow(fromAlice)}, req: request{principal: "td/ns/a/sa/bob"}, want: false},
		"a path prefix":                        {policies: []*securityv1.AuthorizationPolicy{allow(toAdmin)}, req: request{path: "/admin/users"}, want: true},
		"the prefix without its slash":         {policies: []*securityv1.AuthorizationPolicy{allow(toAdmin)}, req: request{path: "/admin"}, want: false},
		"any rule may allow":                   {policies: []*securityv1.AuthorizationPolicy{allow(fromAlice, toAdmin)}, req: request{principal: "td/ns/a/sa/bob", path: "/admin/x"}, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &authzModel{t: t, policies: tc.policies}
			if got := m.allowed("a", workload, tc.req); got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}
