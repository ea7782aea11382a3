package render

import (
	"strings"
	"testing"
)

func TestAdmitDefaultsAndValidatesLikeTheAPIServer(t *testing.T) {
	schema, err := LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		yaml string
		want []string // substrings of the error; empty means admitted
	}{
		"a minimal Shop is admitted": {yaml: "metadata: {name: acme}"},
		"min above max names the field": {
			yaml: "metadata: {name: acme}\nspec: {services: {order: {autoscaling: {minReplicas: 5, maxReplicas: 2}}}}",
			want: []string{"spec.services.order.autoscaling.minReplicas", "must not be greater than maxReplicas"},
		},
		"an invalid host": {
			yaml: "metadata: {name: acme}\nspec: {gateway: {hosts: [Bad_Host]}}",
			want: []string{"spec.gateway.hosts[0]"},
		},
		"a name too long": {
			yaml: "metadata: {name: a-shop-name-that-is-far-too-long}",
			want: []string{"at most 30 characters"},
		},
		"an unknown mesh": {
			yaml: "metadata: {name: acme}\nspec: {security: {mesh: linkerd}}",
			want: []string{"spec.security.mesh", "linkerd"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			shops, err := ParseShops(strings.NewReader("apiVersion: shopstack.dev/v1alpha1\nkind: Shop\n" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = schema.Admit(shops[0])
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("admitted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestAdmitFillsTheCRDDefaults(t *testing.T) {
	schema, err := LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	shops, err := ParseShops(strings.NewReader("apiVersion: shopstack.dev/v1alpha1\nkind: Shop\nmetadata: {name: acme}\nspec: {services: {order: {autoscaling: {maxReplicas: 4}}}}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Admit(shops[0]); err != nil {
		t.Fatal(err)
	}
	s := shops[0].Spec
	if got := s.Services.Order.Autoscaling.MinReplicas; got != 2 {
		t.Errorf("minReplicas %d, want the CRD default 2", got)
	}
	if s.Postgres.Instances != 3 || s.Postgres.Storage == nil || s.Postgres.Storage.Size.String() != "10Gi" || s.DeletionPolicy != "Retain" || s.Security.Mesh != "none" {
		t.Errorf("defaults not filled in: %+v", s)
	}
}
