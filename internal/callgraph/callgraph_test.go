package callgraph

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllowed(t *testing.T) {
	tests := map[string]struct {
		from, to     Peer
		port         Port
		method, path string
		want         bool
	}{
		"the gateway signs users in":                  {from: Gateway, to: User, port: PublicPort, method: "POST", path: "/v1/auth/token", want: true},
		"the gateway serves the JWKS":                 {from: Gateway, to: User, port: PublicPort, method: "GET", path: "/.well-known/jwks.json", want: true},
		"the gateway serves discovery":                {from: Gateway, to: User, port: PublicPort, method: "GET", path: "/.well-known/openid-configuration", want: true},
		"an exact path admits no suffix":              {from: Gateway, to: User, port: PublicPort, method: "GET", path: "/.well-known/jwks.json/x", want: false},
		"an undeclared user path":                     {from: Gateway, to: User, port: PublicPort, method: "GET", path: "/v1/admin", want: false},
		"the gateway lists orders":                    {from: Gateway, to: Order, port: PublicPort, method: "GET", path: "/v1/orders", want: true},
		"the gateway reads one order":                 {from: Gateway, to: Order, port: PublicPort, method: "GET", path: "/v1/orders/42", want: true},
		"a path sharing the prefix without a slash":   {from: Gateway, to: Order, port: PublicPort, method: "GET", path: "/v1/ordersx", want: false},
		"the gateway on an internal port":             {from: Gateway, to: Order, port: InternalPort, method: "GET", path: "/v1/orders", want: false},
		"the gateway browses products":                {from: Gateway, to: Inventory, port: PublicPort, method: "GET", path: "/v1/products/sku-1", want: true},
		"the gateway checks a product exists":         {from: Gateway, to: Inventory, port: PublicPort, method: "HEAD", path: "/v1/products", want: true},
		"the gateway may not change products":         {from: Gateway, to: Inventory, port: PublicPort, method: "POST", path: "/v1/products", want: false},
		"the gateway may not reach payment":           {from: Gateway, to: Payment, port: PublicPort, method: "POST", path: "/v1/payments", want: false},
		"order reserves stock":                        {from: Order, to: Inventory, port: InternalPort, method: "POST", path: "/v1/reservations", want: true},
		"order commits a reservation":                 {from: Order, to: Inventory, port: InternalPort, method: "POST", path: "/v1/reservations/r-1/commit", want: true},
		"order may not browse through internal":       {from: Order, to: Inventory, port: InternalPort, method: "GET", path: "/v1/products", want: false},
		"order charges":                               {from: Order, to: Payment, port: InternalPort, method: "POST", path: "/v1/payments", want: true},
		"order on payment's public port":              {from: Order, to: Payment, port: PublicPort, method: "POST", path: "/v1/payments", want: false},
		"inventory may not charge":                    {from: Inventory, to: Payment, port: InternalPort, method: "POST", path: "/v1/payments", want: false},
		"payment may not reserve":                     {from: Payment, to: Inventory, port: InternalPort, method: "POST", path: "/v1/reservations", want: false},
		"a service reaches Postgres, any method/path": {from: Payment, to: Postgres, port: PostgresPort, want: true},
		"payment has no Redis user":                   {from: Payment, to: Redis, port: RedisPort, want: false},
		"user reaches the Sentinels":                  {from: User, to: Redis, port: SentinelPort, want: true},
		"Postgres on the Redis port":                  {from: User, to: Postgres, port: RedisPort, want: false},
		"the operator watches Postgres":               {from: Operator, to: Postgres, port: PostgresPort, want: true},
		"the operator has no business with Redis":     {from: Operator, to: Redis, port: RedisPort, want: false},
		"monitoring scrapes the ops port":             {from: Monitoring, to: Payment, port: OpsPort, method: "GET", path: "/metrics", want: true},
		"monitoring on the internal port":             {from: Monitoring, to: Payment, port: InternalPort, method: "GET", path: "/metrics", want: false},
		"monitoring does not scrape Postgres":         {from: Monitoring, to: Postgres, port: PostgresPort, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Allowed(tc.from, tc.to, tc.port, tc.method, tc.path); got != tc.want {
				t.Errorf("Allowed(%s, %s, %s, %q, %q) = %v, want %v", tc.from, tc.to, tc.port.Name, tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestCallers(t *testing.T) {
	tests := map[string]struct {
		to   Peer
		port Port
		want []Peer
	}{
		"payment's internal port":   {to: Payment, port: InternalPort, want: []Peer{Order}},
		"inventory's internal port": {to: Inventory, port: InternalPort, want: []Peer{Order}},
		"user's internal port":      {to: User, port: InternalPort, want: nil},
		"order's internal port":     {to: Order, port: InternalPort, want: nil},
		"order's public port":       {to: Order, port: PublicPort, want: []Peer{Gateway}},
		"payment's public port":     {to: Payment, port: PublicPort, want: nil},
		"an ops port":               {to: Inventory, port: OpsPort, want: []Peer{Monitoring}},
		"Postgres":                  {to: Postgres, port: PostgresPort, want: []Peer{User, Order, Payment, Inventory, Postgres, Operator}},
		"Redis":                     {to: Redis, port: RedisPort, want: []Peer{User, Order, Inventory, Redis}},
		"the Sentinels":             {to: Redis, port: SentinelPort, want: []Peer{User, Order, Inventory, Redis}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Callers(tc.to, tc.port)); diff != "" {
				t.Errorf("Callers(%s, %s) (-want +got):\n%s", tc.to, tc.port.Name, diff)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	tests := map[string]struct {
		pattern, path string
		want          bool
	}{
		"exact":                          {pattern: "/v1/orders", path: "/v1/orders", want: true},
		"exact admits no suffix":         {pattern: "/v1/orders", path: "/v1/orders/1", want: false},
		"exact admits no trailing slash": {pattern: "/v1/orders", path: "/v1/orders/", want: false},
		"prefix":                         {pattern: "/v1/orders/*", path: "/v1/orders/1", want: true},
		"prefix, nested":                 {pattern: "/v1/orders/*", path: "/v1/orders/1/items", want: true},
		"prefix with an empty rest":      {pattern: "/v1/orders/*", path: "/v1/orders/", want: true},
		"prefix needs its slash":         {pattern: "/v1/orders/*", path: "/v1/orders", want: false},
		"prefix is not a substring":      {pattern: "/v1/orders/*", path: "/x/v1/orders/1", want: false},
		"a lone star is everything":      {pattern: "*", path: "/anything", want: true},
		"case matters":                   {pattern: "/v1/orders", path: "/V1/ORDERS", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MatchPath(tc.pattern, tc.path); got != tc.want {
				t.Errorf("MatchPath(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
			}
		})
	}
}

func TestEveryFlowIsWellFormed(t *testing.T) {
	for _, f := range Flows {
		name := string(f.From) + "->" + string(f.To)
		if len(f.Ports) == 0 {
			t.Errorf("%s declares no port", name)
		}
		if f.From == f.To && f.From != Postgres && f.From != Redis {
			t.Errorf("%s: only the data tiers talk to themselves (replication)", name)
		}
		for _, r := range f.Rules {
			if len(r.Paths) == 0 {
				t.Errorf("%s has an HTTP rule without paths", name)
			}
		}
		if f.RequireJWT && f.From != Gateway {
			t.Errorf("%s requires an end-user token, but only the gateway carries one", name)
		}
	}
}

func TestFlowsAreNotDeclaredTwice(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Flows {
		for _, p := range f.Ports {
			k := string(f.From) + "->" + string(f.To) + ":" + p.Name
			if seen[k] {
				t.Errorf("%s is declared twice", k)
			}
			seen[k] = true
		}
	}
}

func TestPaymentIsNeverReachableFromOutside(t *testing.T) {
	for _, f := range Into(Payment) {
		if f.From == Gateway {
			t.Errorf("the gateway may call payment on %v", f.Ports)
		}
	}
}

func TestIntoAndOutOfPartitionTheFlows(t *testing.T) {
	peers := []Peer{Gateway, User, Order, Payment, Inventory, Postgres, Redis, Monitoring, Operator}
	var in, out int
	for _, p := range peers {
		in += len(Into(p))
		out += len(OutOf(p))
	}
	if in != len(Flows) || out != len(Flows) {
		t.Errorf("Into covers %d flows and OutOf %d, want %d each: a flow names an unknown peer", in, out, len(Flows))
	}
}
