package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerify(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	key := newTestKey(t, "k1")
	v, _ := verifierFor(t, clk, key)
	now := clk.now()

	t.Run("a valid token is accepted", func(t *testing.T) {
		c, err := v.Verify(es256(t, key, header{Kid: "k1", Typ: "JWT"}, claimsAt(now)))
		if err != nil {
			t.Fatal(err)
		}
		want := &Claims{
			Issuer: issuer, Subject: "user-1", Audience: []string{aud}, Roles: []string{"customer"},
			IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Fatalf("(-want +got)\n%s", diff)
		}
		if !c.HasRole("customer") || c.HasRole("admin") {
			t.Fatal("HasRole")
		}
	})
	t.Run("aud may be an array", func(t *testing.T) {
		claims := claimsAt(now)
		claims["aud"] = []string{"other", aud}
		if _, err := v.Verify(es256(t, key, header{Kid: "k1"}, claims)); err != nil {
			t.Fatal(err)
		}
	})

	with := func(change func(map[string]any)) map[string]any {
		c := claimsAt(now)
		change(c)
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	pubPEM := []byte("-----BEGIN PUBLIC KEY-----\n" + string(pubDER) + "\n-----END PUBLIC KEY-----\n")
	pubPoint, _ := key.priv.PublicKey.Bytes()
	good := es256(t, key, header{Kid: "k1"}, claimsAt(now))
	parts := strings.Split(good, ".")
	other := newTestKey(t, "k1") // same kid, different key

	refused := map[string]struct {
		token  string
		reason string
	}{
		"alg none, no signature":     {unsigned(t, map[string]any{"alg": "none", "kid": "k1"}, claimsAt(now), nil), `algorithm "none"`},
		"alg None, no signature":     {unsigned(t, map[string]any{"alg": "None", "kid": "k1"}, claimsAt(now), nil), `algorithm "None"`},
		"HS256 keyed with the JWKS":  {hs256(t, "k1", claimsAt(now), v.JWKS()), `algorithm "HS256"`},
		"HS256 keyed with the PEM":   {hs256(t, "k1", claimsAt(now), pubPEM), `algorithm "HS256"`},
		"HS256 keyed with the point": {hs256(t, "k1", claimsAt(now), pubPoint), `algorithm "HS256"`},
		"RS256":                      {unsigned(t, map[string]any{"alg": "RS256", "kid": "k1"}, claimsAt(now), make([]byte, 256)), `algorithm "RS256"`},
		"lowercase es256":            {es256(t, key, header{Alg: "es256", Kid: "k1"}, claimsAt(now)), `algorithm "es256"`},
		"ES384":                      {es256(t, key, header{Alg: "ES384", Kid: "k1"}, claimsAt(now)), `algorithm "ES384"`},
		"missing alg":                {unsigned(t, map[string]any{"kid": "k1"}, claimsAt(now), make([]byte, 64)), `algorithm ""`},
		"missing kid":                {es256(t, key, header{}, claimsAt(now)), "no kid"},
		"unknown kid":                {es256(t, key, header{Kid: "k9"}, claimsAt(now)), "unknown signing key"},
		"critical extension":         {es256(t, key, header{Kid: "k1", Crit: []string{"exp"}}, claimsAt(now)), "critical"},
		"not an access token type":   {es256(t, key, header{Kid: "k1", Typ: "dpop+jwt"}, claimsAt(now)), "not an access token"},
		"signed by another key":      {es256(t, other, header{Kid: "k1"}, claimsAt(now)), "bad signature"},
		"tampered payload": {
			parts[0] + "." + b64.EncodeToString(mustJSON(t, with(func(c map[string]any) { c["roles"] = []string{"admin"} }))) + "." + parts[2],
			"bad signature",
		},
		"tampered signature":    {parts[0] + "." + parts[1] + "." + flipLastByte(t, parts[2]), "bad signature"},
		"ASN.1 signature":       {parts[0] + "." + parts[1] + "." + asn1Signature(t, key.priv, parts[0]+"."+parts[1]), "bad signature"},
		"truncated signature":   {parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 63)), "bad signature"},
		"expired":               {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), "expired"},
		"expiring in ten years": {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["exp"] = now.AddDate(10, 0, 0).Unix() })), "expiry too far"},
		"no exp":                {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { delete(c, "exp") })), "no expiry"},
		"exp as a string":       {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["exp"] = "2099-01-01" })), "malformed claims"},
		"nbf beyond the leeway": {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), "not valid yet"},
		"iat beyond the leeway": {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "issued in the future"},
		"wrong iss":             {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["iss"] = "https://evil.example.com" })), "wrong issuer"},
		"no iss":                {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { delete(c, "iss") })), "wrong issuer"},
		"wrong aud":             {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["aud"] = "shopstack:shop/other" })), "wrong audience"},
		"wrong aud array":       {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), "wrong audience"},
		"aud of the wrong type": {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["aud"] = 7 })), "malformed claims"},
		"missing sub":           {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { delete(c, "sub") })), "no subject"},
		"empty sub":             {es256(t, key, header{Kid: "k1"}, with(func(c map[string]any) { c["sub"] = "" })), "no subject"},
		"two parts":             {parts[0] + "." + parts[1], "malformed"},
		"four parts":            {good + "." + parts[2], "malformed"},
		"padding":               {good + "=", "malformed"},
		"line break":            {parts[0] + "\n." + parts[1] + "." + parts[2], "malformed"},
		"empty":                 {"", "malformed"},
		"header not JSON":       {b64.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], "malformed header"},
		"too large":             {strings.Repeat("a", 9000), "too large"},
	}
	for name, tc := range refused {
		t.Run("refused: "+name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want a token error containing %q", err, tc.reason)
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	key := newTestKey(t, "k1")
	v, path := verifierFor(t, clk, key)
	now := clk.now()
	at := func(field string, offset time.Duration) map[string]any {
		c := claimsAt(now)
		c[field] = now.Add(offset).Unix()
		return c
	}
	tests := map[string]struct {
		claims map[string]any
		ok     bool
	}{
		"expired 59s ago: within the leeway":       {at("exp", -59*time.Second), true},
		"expired 60s ago: the leeway is exclusive": {at("exp", -60*time.Second), false},
		"expired 61s ago":                          {at("exp", -61*time.Second), false},
		"valid from 60s ahead: within the leeway":  {at("nbf", 60*time.Second), true},
		"valid from 61s ahead":                     {at("nbf", 61*time.Second), false},
		"issued 60s ahead: within the leeway":      {at("iat", 60*time.Second), true},
		"issued 61s ahead":                         {at("iat", 61*time.Second), false},
		"fractional exp just inside":               {map[string]any{"iss": issuer, "aud": aud, "sub": "u", "exp": float64(now.Unix()) - 59.5}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(es256(t, key, header{Kid: "k1"}, tc.claims))
			if (err == nil) != tc.ok {
				t.Fatalf("ok=%v, err=%v", tc.ok, err)
			}
		})
	}
	t.Run("a smaller leeway is honoured", func(t *testing.T) {
		strict, err := NewVerifier(VerifierConfig{JWKSFile: path, Issuer: issuer, Audience: aud, Leeway: 10 * time.Second, Now: clk.now, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := strict.Verify(es256(t, key, header{Kid: "k1"}, at("exp", -11*time.Second))); err == nil {
			t.Fatal("accepted beyond a 10s leeway")
		}
	})
	t.Run("more than 60s of leeway is refused", func(t *testing.T) {
		if _, err := NewVerifier(VerifierConfig{JWKSFile: path, Issuer: issuer, Audience: aud, Leeway: 61 * time.Second}); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestJWKSRotation(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	oldKey, newKey := newTestKey(t, "old"), newTestKey(t, "new")
	v, path := verifierFor(t, clk, oldKey)
	tokenOld := es256(t, oldKey, header{Kid: "old"}, claimsAt(clk.now()))
	tokenNew := es256(t, newKey, header{Kid: "new"}, claimsAt(clk.now()))

	if _, err := v.Verify(tokenOld); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokenNew); err == nil {
		t.Fatal("a key not yet published was accepted")
	}

	t.Run("a key added to the file is picked up without a restart", func(t *testing.T) {
		writeFile(t, path, jwksJSON(t, oldKey, newKey))
		// An unknown kid makes the verifier look again once the last look is
		// a second old, well before the regular interval.
		clk.advance(2 * time.Second)
		if _, err := v.Verify(tokenNew); err != nil {
			t.Fatalf("new key: %v", err)
		}
		if _, err := v.Verify(tokenOld); err != nil {
			t.Fatalf("old key during the overlap: %v", err)
		}
	})
	t.Run("a key removed from the file is refused after the interval", func(t *testing.T) {
		writeFile(t, path, jwksJSON(t, newKey))
		if _, err := v.Verify(tokenOld); err != nil {
			t.Fatalf("refused before the reload interval: %v", err)
		}
		clk.advance(DefaultReloadInterval)
		if _, err := v.Verify(tokenOld); err == nil || !strings.Contains(err.Error(), "unknown signing key") {
			t.Fatalf("removed key still accepted: %v", err)
		}
		if _, err := v.Verify(tokenNew); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(v.JWKS()), `"kid":"new"`) || strings.Contains(string(v.JWKS()), `"old"`) {
			t.Fatalf("published JWKS is stale: %s", v.JWKS())
		}
	})
	t.Run("a broken file keeps the previous keys", func(t *testing.T) {
		writeFile(t, path, []byte(`{"keys":[`))
		clk.advance(DefaultReloadInterval)
		if _, err := v.Verify(tokenNew); err != nil {
			t.Fatalf("lost the keys: %v", err)
		}
	})
	t.Run("unknown kids do not make every request read the file", func(t *testing.T) {
		writeFile(t, path, jwksJSON(t, newKey))
		clk.advance(DefaultReloadInterval)
		v.Verify(tokenNew)
		last := v.keys.lastCheck.Load()
		for range 5 {
			v.Verify(es256(t, newKey, header{Kid: "random"}, claimsAt(clk.now())))
		}
		if v.keys.lastCheck.Load() != last {
			t.Fatal("an unknown kid forced a reload within a second of the last")
		}
	})
}

func TestParseJWKS(t *testing.T) {
	k := newTestKey(t, "k1")
	good := k.jwk(t)
	set := func(keys ...any) []byte { return mustJSON(t, map[string]any{"keys": keys}) }
	badX := good
	badX.X = "AAAA"
	offCurve := good
	offCurve.Y = b64.EncodeToString(make([]byte, 32))
	noKid := good
	noKid.Kid = ""
	enc := good
	enc.Use = "enc"

	t.Run("the operator's format", func(t *testing.T) {
		keys, err := parseJWKS(set(good))
		if err != nil || !keys["k1"].Equal(&k.priv.PublicKey) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("other key types are skipped", func(t *testing.T) {
		keys, err := parseJWKS(set(map[string]string{"kty": "RSA", "kid": "r1", "n": "x", "e": "AQAB"}, enc, good))
		if err != nil || len(keys) != 1 {
			t.Fatalf("%v %v", keys, err)
		}
	})
	for name, data := range map[string][]byte{
		"not JSON":        []byte("nope"),
		"no usable key":   set(map[string]string{"kty": "RSA", "kid": "r1"}),
		"empty":           set(),
		"short x":         set(badX),
		"point off curve": set(offCurve),
		"no kid":          set(noKid),
		"duplicate kid":   set(good, newTestKey(t, "k1").jwk(t)),
	} {
		t.Run("refused: "+name, func(t *testing.T) {
			if _, err := parseJWKS(data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	for name, cfg := range map[string]VerifierConfig{
		"no file":      {Issuer: issuer, Audience: aud},
		"no issuer":    {JWKSFile: "x", Audience: aud},
		"no audience":  {JWKSFile: "x", Issuer: issuer},
		"missing file": {JWKSFile: t.TempDir() + "/nope.json", Issuer: issuer, Audience: aud},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewVerifier(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flipLastByte(t *testing.T, sig string) string {
	t.Helper()
	b, err := b64.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	return b64.EncodeToString(b)
}

// asn1Signature is a valid signature in the wrong (DER) encoding.
func asn1Signature(t *testing.T, key *ecdsa.PrivateKey, input string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(der)
}
