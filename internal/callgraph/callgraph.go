// Package callgraph is the one declaration of who may call whom in a Shop.
// NetworkPolicies, Istio AuthorizationPolicies and the SPIFFE allow-lists of the
// services' internal mTLS listeners are all generated from Flows, so a flow
// that is not declared here is denied by all three.
package callgraph

import (
	"slices"
	"strings"
)

// Peer is a party of the call graph.
type Peer string

// The peers of a Shop.
const (
	Gateway    Peer = "gateway"    // the Gateway API gateway's pods
	User       Peer = "user"       // the four services
	Order      Peer = "order"      //
	Payment    Peer = "payment"    //
	Inventory  Peer = "inventory"  //
	Postgres   Peer = "postgres"   // the Postgres instances
	Redis      Peer = "redis"      // Redis servers and their Sentinels
	Monitoring Peer = "monitoring" // Prometheus, from namespaces labelled MonitoringNamespaceLabel
	Operator   Peer = "operator"   // the shopstack manager (Postgres health checks and failover)
)

// Services are the peers that run the shop's own code.
var Services = []Peer{User, Order, Payment, Inventory}

// MonitoringNamespaceLabel marks the namespaces whose pods may scrape metrics.
const MonitoringNamespaceLabel = "shopstack.dev/monitoring"

// Port is a named port of a peer.
type Port struct {
	Name     string
	Number   int32
	Protocol string // TCP unless set
}

// The ports of the call graph. A service's Service and pods use the first three.
var (
	PublicPort   = Port{Name: "public", Number: 8443}
	InternalPort = Port{Name: "internal", Number: 9443}
	OpsPort      = Port{Name: "ops", Number: 8081}
	PostgresPort = Port{Name: "postgres", Number: 5432}
	RedisPort    = Port{Name: "redis", Number: 6379}
	SentinelPort = Port{Name: "sentinel", Number: 26379}
)

// HTTPRule allows requests with one of Methods (any when empty) to one of Paths.
// A path ending in "*" is a prefix.
type HTTPRule struct {
	Methods []string
	Paths   []string
}

// Flow allows From to open connections to To on Ports. For HTTP ports, Rules
// narrow it to methods and paths; RequireJWT means the request must also carry
// a valid end-user token.
type Flow struct {
	From       Peer
	To         Peer
	Ports      []Port
	Rules      []HTTPRule
	RequireJWT bool
}

// Flows is the call graph.
var Flows = []Flow{
	// End users, through the gateway.
	{From: Gateway, To: User, Ports: []Port{PublicPort}, Rules: []HTTPRule{{
		Paths: []string{"/v1/auth/*", "/v1/users/*", "/.well-known/openid-configuration", "/.well-known/jwks.json"},
	}}},
	{From: Gateway, To: Order, Ports: []Port{PublicPort}, RequireJWT: true, Rules: []HTTPRule{{
		Paths: []string{"/v1/orders", "/v1/orders/*"},
	}}},
	{From: Gateway, To: Inventory, Ports: []Port{PublicPort}, Rules: []HTTPRule{{
		Methods: []string{"GET", "HEAD"},
		Paths:   []string{"/v1/products", "/v1/products/*"},
	}}},

	// Service to service, on the internal mTLS port.
	{From: Order, To: Inventory, Ports: []Port{InternalPort}, Rules: []HTTPRule{{
		Paths: []string{"/v1/reservations", "/v1/reservations/*"},
	}}},
	{From: Order, To: Payment, Ports: []Port{InternalPort}, Rules: []HTTPRule{{
		Paths: []string{"/v1/payments", "/v1/payments/*"},
	}}},

	// Data stores: each service its own database; the cache for three of them.
	{From: User, To: Postgres, Ports: []Port{PostgresPort}},
	{From: Order, To: Postgres, Ports: []Port{PostgresPort}},
	{From: Payment, To: Postgres, Ports: []Port{PostgresPort}},
	{From: Inventory, To: Postgres, Ports: []Port{PostgresPort}},
	{From: User, To: Redis, Ports: []Port{RedisPort, SentinelPort}},
	{From: Order, To: Redis, Ports: []Port{RedisPort, SentinelPort}},
	{From: Inventory, To: Redis, Ports: []Port{RedisPort, SentinelPort}},

	// Replication and Sentinel gossip inside each data tier.
	{From: Postgres, To: Postgres, Ports: []Port{PostgresPort}},
	{From: Redis, To: Redis, Ports: []Port{RedisPort, SentinelPort}},

	// The operator watches Postgres and promotes standbys.
	{From: Operator, To: Postgres, Ports: []Port{PostgresPort}},

	// Prometheus scrapes every service's ops port.
	{From: Monitoring, To: User, Ports: []Port{OpsPort}},
	{From: Monitoring, To: Order, Ports: []Port{OpsPort}},
	{From: Monitoring, To: Payment, Ports: []Port{OpsPort}},
	{From: Monitoring, To: Inventory, Ports: []Port{OpsPort}},
}

// Into returns the flows that end at to, in declaration order.
func Into(to Peer) []Flow {
	var out []Flow
	for _, f := range Flows {
		if f.To == to {
			out = append(out, f)
		}
	}
	return out
}

// OutOf returns the flows that start at from, in declaration order.
func OutOf(from Peer) []Flow {
	var out []Flow
	for _, f := range Flows {
		if f.From == from {
			out = append(out, f)
		}
	}
	return out
}

// Callers returns the peers allowed to reach to on port, without duplicates.
func Callers(to Peer, port Port) []Peer {
	var out []Peer
	for _, f := range Into(to) {
		if slices.Contains(f.Ports, port) && !slices.Contains(out, f.From) {
			out = append(out, f.From)
		}
	}
	return out
}

// Allowed reports whether from may call to on port with method and path. For
// non-HTTP flows method and path are ignored.
func Allowed(from, to Peer, port Port, method, path string) bool {
	for _, f := range Flows {
		if f.From != from || f.To != to || !slices.Contains(f.Ports, port) {
			continue
		}
		if len(f.Rules) == 0 {
			return true
		}
		for _, r := range f.Rules {
			if len(r.Methods) > 0 && !slices.Contains(r.Methods, method) {
				continue
			}
			for _, p := range r.Paths {
				if MatchPath(p, path) {
					return true
				}
			}
		}
	}
	return false
}

// MatchPath matches path against a pattern where a trailing "*" is a prefix
// match, the same semantics Istio gives AuthorizationPolicy paths.
func MatchPath(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return pattern == path
}
