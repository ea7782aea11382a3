package authtest

import (
	"slices"
	"testing"
)

func TestIssuer(t *testing.T) {
	i := NewIssuer(t, "https://shop.example.com", "shopstack:shop/acme")
	c, err := i.Verifier(t).Verify(i.Token(t, "user-1", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-1" || !slices.Equal(c.Roles, []string{"admin"}) {
		t.Fatalf("claims %+v", c)
	}
}
