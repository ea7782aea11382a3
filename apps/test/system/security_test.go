package system

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

// claims is a valid claim set for a fresh subject, to spoil one field at a
// time.
func claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": st.Issuer, "aud": st.Audience, "sub": newUUID(), "roles": []string{"customer"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

func with(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }

func listOrders(t *testing.T, token string) response {
	t.Helper()
	return do(t, request{Method: "GET", URL: orderURL() + "/v1/orders", Token: token})
}

func TestTokensOrderRefuses(t *testing.T) {
	key, kid := st.Keys.Current()
	es256 := map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}
	sign := func(header, c map[string]any) string {
		t.Helper()
		tok, err := stack.SignJWT(key, header, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	valid := sign(es256, claims())
	if res := listOrders(t, valid); res.Status != http.StatusOK {
		t.Fatalf("a valid token: %s, want 200", res)
	}

	unsigned, _ := stack.SignJWT(nil, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims())

	// HS256 keyed with the public key: the classic algorithm confusion.
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsInput := strings.TrimSuffix(func() string {
		s, _ := stack.SignJWT(nil, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims())
		return s
	}(), ".")
	mac := hmac.New(sha256.New, pubPEM)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// A valid token whose payload is swapped for an admin's after signing.
	parts := strings.Split(valid, ".")
	adminClaims, _ := json.Marshal(with(claims(), "roles", []string{"admin"}))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(adminClaims) + "." + parts[2]

	for name, tok := range map[string]string{
		"alg none":                  unsigned,
		"HS256 with the public key": hs256,
		"expired":                   sign(es256, with(claims(), "exp", time.Now().Add(-2*time.Minute).Unix())),
		"wrong iss":                 sign(es256, with(claims(), "iss", "https://evil.example.com")),
		"wrong aud":                 sign(es256, with(claims(), "aud", "shopstack:other/shop")),
		"unknown kid":               sign(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "no-such-key"}, claims()),
		"tampered payload":          tampered,
		"empty sub":                 sign(es256, with(claims(), "sub", "")),
	} {
		t.Run(name, func(t *testing.T) {
			if res := listOrders(t, tok); res.Status != http.StatusUnauthorized {
				t.Errorf("%s", res)
			}
		})
	}
}

func TestSigningKeyRotation(t *testing.T) {
	oldToken := customer(t)
	_, oldKid := st.Keys.Current()

	newKid, err := st.Keys.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	minted := mintedCustomer(t)
	eventually(t, 15*time.Second, "order to accept a token signed with the new key", func() error {
		if res := listOrders(t, minted); res.Status != http.StatusOK {
			return errors.New(res.String())
		}
		return nil
	})
	// The user service picks up its new signing key without a restart;
	// its tokens carry the new kid and the other services take them.
	email := "rotated-" + newUUID()[:8] + "@example.com"
	register(t, email, "a long enough password")
	eventually(t, 20*time.Second, "the user service to sign with the new key", func() error {
		tok := login(t, email, "a long enough password")
		header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var h struct{ Kid string }
		_ = json.Unmarshal(header, &h)
		if h.Kid != newKid {
			return fmt.Errorf("kid %q, want %q (old %q)", h.Kid, newKid, oldKid)
		}
		if res := listOrders(t, tok); res.Status != http.StatusOK {
			return errors.New(res.String())
		}
		return nil
	})
	if res := listOrders(t, oldToken); res.Status != http.StatusOK {
		t.Errorf("a token of the old key, still published: %s, want 200", res)
	}
}

func TestInternalPortNeedsAClientCertificate(t *testing.T) {
	conn, err := tls.Dial("tcp", st.Service(stack.Inventory).InternalAddr, st.TLSConfig())
	if err == nil {
		defer conn.Close()
		// Under TLS 1.3 the server's verdict on the client arrives after
		// the client's side of the handshake: the first read reports it.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /v1/reservations HTTP/1.1\r\nHost: inventory\r\n\r\n")
		buf := make([]byte, 64)
		var n int
		n, err = conn.Read(buf)
		if err == nil {
			t.Fatalf("the handshake succeeded without a client certificate; the server said %q", buf[:n])
		}
	}
	if !strings.Contains(err.Error(), "certificate required") && !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("handshake error %q, want a TLS alert about the missing certificate", err)
	}
}

func TestInternalPortChecksTheCaller(t *testing.T) {
	inventoryAsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: st.Service(stack.Inventory).ClientTLS(st.CA),
	}}
	body := map[string]any{"order_id": newUUID(), "amount_cents": 100, "currency": "EUR", "card": card(cardApproved)}
	res := do(t, request{Method: "POST", URL: st.Service(stack.Payment).InternalURL() + "/v1/payments", Client: inventoryAsClient,
		Body: body, Header: map[string]string{"Idempotency-Key": newUUID()}})
	if res.Status != http.StatusForbidden {
		t.Errorf("inventory calling payment: %s, want 403", res)
	}
	if n := queryInt(t, stack.Payment, `SELECT count(*) FROM payments WHERE order_id = $1`, body["order_id"]); n != 0 {
		t.Errorf("%d payments stored for a refused caller", n)
	}
}

func TestRenewedCertificateServedWithoutRestart(t *testing.T) {
	order := st.Service(stack.Order)
	pid := order.Pid()
	renewed, err := st.RotateCert(stack.Order)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "order to serve the renewed certificate", func() error {
		conf := st.TLSConfig()
		conf.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", order.PublicAddr, conf)
		if err != nil {
			return err
		}
		defer conn.Close()
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber
		if got.Cmp(renewed.SerialNumber) != 0 {
			return fmt.Errorf("serial %x, want %x", got, renewed.SerialNumber)
		}
		return nil
	})
	if order.Pid() != pid {
		t.Errorf("order restarted (pid %d -> %d)", pid, order.Pid())
	}
	// The saga still runs: order's renewed client certificate is accepted
	// by inventory and payment.
	sku := newSKU("renewed")
	putProduct(t, sku, 100, 3)
	eventually(t, 20*time.Second, "an order through the renewed certificate", func() error {
		res, _ := placeOrder(t, mintedCustomer(t), card(cardApproved), item{SKU: sku, Quantity: 1})
		if res.Status != http.StatusCreated {
			return errors.New(res.String())
		}
		return nil
	})
}
