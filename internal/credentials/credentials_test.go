package credentials

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shopstack/shopstack/internal/builder"
)

// passwordRE is what Password promises: 32 base32 characters (160 bits).
var passwordRE = regexp.MustCompile(`^[A-Z2-7]{32}$`)

func mustGenerate(t *testing.T, kind builder.CredentialKind) map[string][]byte {
	t.Helper()
	data, err := Generate(kind)
	if err != nil {
		t.Fatalf("Generate(%s): %v", kind, err)
	}
	return data
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestGenerateKeys(t *testing.T) {
	tests := map[builder.CredentialKind][]string{
		builder.CredJWTSigning: {"kid", "signing.key"},
		builder.CredPayment:    {"encryption.key"},
		builder.CredAdmin:      {"password", "username"},
		builder.CredPostgres:   {"inventory", "operator", "order", "payment", "replication", "superuser", "user"},
		builder.CredRedis:      {"inventory", "order", "replication", "sentinel", "user", "users.acl"},
	}
	for kind, want := range tests {
		t.Run(string(kind), func(t *testing.T) {
			if diff := cmp.Diff(want, sortedKeys(mustGenerate(t, kind))); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
	if len(tests) != len(builder.AllCredentials) {
		t.Errorf("tested %d kinds, the builder declares %d", len(tests), len(builder.AllCredentials))
	}
}

func TestGenerateUnknownKind(t *testing.T) {
	if _, err := Generate("nonsense"); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("Generate(nonsense) error = %v, want one naming the kind", err)
	}
}

func TestGeneratedSecretsAreStrong(t *testing.T) {
	tests := map[string]struct {
		kind  builder.CredentialKind
		keys  []string
		check func(t *testing.T, v []byte)
	}{
		"payment encryption key is 32 random bytes (AES-256)": {
			kind: builder.CredPayment, keys: []string{builder.KeyEncryptionKey},
			check: func(t *testing.T, v []byte) {
				if len(v) != 32 {
					t.Errorf("key has %d bytes, want 32", len(v))
				}
				if bytes.Equal(v, make([]byte, 32)) {
					t.Error("key is all zeros")
				}
			},
		},
		"admin password": {
			kind: builder.CredAdmin, keys: []string{builder.KeyPassword},
			check: checkPassword,
		},
		"Postgres passwords": {
			kind: builder.CredPostgres, keys: []string{"superuser", "replication", "operator", "user", "order", "payment", "inventory"},
			check: checkPassword,
		},
		"Redis passwords": {
			kind: builder.CredRedis, keys: []string{"replication", "sentinel", "user", "order", "inventory"},
			check: checkPassword,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := mustGenerate(t, tc.kind)
			for _, k := range tc.keys {
				tc.check(t, data[k])
			}
		})
	}
}

func checkPassword(t *testing.T, v []byte) {
	t.Helper()
	if !passwordRE.Match(v) {
		t.Errorf("password %q is not 32 base32 characters", v)
	}
}

func TestAdminUsername(t *testing.T) {
	if got := string(mustGenerate(t, builder.CredAdmin)[builder.KeyUsername]); got != "admin" {
		t.Errorf("username = %q, want admin", got)
	}
}

func TestEveryValueIsFreshEachTime(t *testing.T) {
	for _, kind := range builder.AllCredentials {
		t.Run(string(kind), func(t *testing.T) {
			a, b := mustGenerate(t, kind), mustGenerate(t, kind)
			for k, v := range a {
				if k == builder.KeyUsername {
					continue
				}
				if bytes.Equal(v, b[k]) {
					t.Errorf("%s is the same in two generations", k)
				}
			}
		})
	}
}

func TestPasswordsWithinOneSecretDiffer(t *testing.T) {
	for _, kind := range []builder.CredentialKind{builder.CredPostgres, builder.CredRedis} {
		data := mustGenerate(t, kind)
		seen := map[string]string{}
		for k, v := range data {
			if k == builder.KeyRedisACL {
				continue
			}
			if other, ok := seen[string(v)]; ok {
				t.Errorf("%s: %s and %s share a password", kind, k, other)
			}
			seen[string(v)] = k
		}
	}
}

func parsePrivateKey(t *testing.T, data map[string][]byte) *ecdsa.PrivateKey {
	t.Helper()
	block, rest := pem.Decode(data[builder.KeyJWTSigningKey])
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) > 0 {
		t.Fatalf("signing key is not one PKCS#8 PEM block: %q", data[builder.KeyJWTSigningKey])
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("signing key is %T, want an ECDSA P-256 key", k)
	}
	return key
}

// jwksKey parses the single key of a JWKS document.
func jwksKey(t *testing.T, doc string) (JWK, *ecdsa.PublicKey) {
	t.Helper()
	var set struct {
		Keys []JWK `json:"keys"`
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	jwk := set.Keys[0]
	x, errX := base64.RawURLEncoding.DecodeString(jwk.X)
	y, errY := base64.RawURLEncoding.DecodeString(jwk.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		t.Fatalf("x/y are not 32-byte base64url values: %q %q", jwk.X, jwk.Y)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("JWKS point is not on P-256: %v", err)
	}
	return jwk, pub
}

func TestJWKSDescribesTheSigningKey(t *testing.T) {
	data := mustGenerate(t, builder.CredJWTSigning)
	doc, err := JWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := jwksKey(t, doc)
	want := JWK{Kty: "EC", Crv: "P-256", Alg: "ES256", Use: "sig", Kid: string(data[builder.KeyJWTKeyID]), X: jwk.X, Y: jwk.Y}
	if diff := cmp.Diff(want, jwk); diff != "" {
		t.Errorf("JWK (-want +got):\n%s", diff)
	}
	if strings.Contains(doc, `"d"`) {
		t.Errorf("the JWKS publishes the private key: %s", doc)
	}
}

// TestJWKSVerifiesATokenSignedWithTheKey plays the user service (sign an
// ES256 JWT with the Secret's key) and a verifier that knows only the JWKS.
func TestJWKSVerifiesATokenSignedWithTheKey(t *testing.T) {
	data := mustGenerate(t, builder.CredJWTSigning)
	key := parsePrivateKey(t, data)
	doc, err := JWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	jwk, pub := jwksKey(t, doc)

	b64 := base64.RawURLEncoding.EncodeToString
	header := b64([]byte(`{"alg":"ES256","typ":"JWT","kid":"` + jwk.Kid + `"}`))
	payload := b64([]byte(`{"iss":"https://shop.example.com","sub":"alice","aud":"shopstack:shop/acme","exp":4102444800}`))
	signingInput := header + "." + payload
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64) // JWS ES256: R || S, 32 bytes each
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	token := signingInput + "." + b64(sig)

	// The verifier's side: split, pick the key by kid, check the signature.
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 64 {
		t.Fatalf("signature is not 64 base64url bytes: %v", err)
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])) {
		t.Error("the JWKS public key does not verify a token signed with the signing key")
	}
	tampered := sha256.Sum256([]byte(parts[0] + "." + b64([]byte(`{"sub":"mallory"}`))))
	if ecdsa.Verify(pub, tampered[:], new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])) {
		t.Error("the signature also verifies a different payload")
	}
}

func TestKeyIDIsStable(t *testing.T) {
	data := mustGenerate(t, builder.CredJWTSigning)
	key := parsePrivateKey(t, data)
	first, err := KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := KeyID(&key.PublicKey)
	if first != second {
		t.Errorf("KeyID of one key: %q then %q", first, second)
	}
	if got := string(data[builder.KeyJWTKeyID]); got != first {
		t.Errorf("the Secret's kid %q is not KeyID of its key %q", got, first)
	}
	other := parsePrivateKey(t, mustGenerate(t, builder.CredJWTSigning))
	if k, _ := KeyID(&other.PublicKey); k == first {
		t.Errorf("two keys share the kid %q", k)
	}
	// Without a stored kid, the JWKS derives the same one.
	delete(data, builder.KeyJWTKeyID)
	doc, err := JWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	if jwk, _ := jwksKey(t, doc); jwk.Kid != first {
		t.Errorf("JWKS without a stored kid names %q, want %q", jwk.Kid, first)
	}
}

func TestJWKSRefusesOtherKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]map[string][]byte{
		"no key":      {},
		"not PEM":     {builder.KeyJWTSigningKey: []byte("not a key")},
		"not PKCS#8":  {builder.KeyJWTSigningKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})},
		"a P-384 key": {builder.KeyJWTSigningKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if doc, err := JWKS(data); err == nil {
				t.Errorf("JWKS = %s, want an error", doc)
			}
		})
	}
}

func TestRedisACL(t *testing.T) {
	data := mustGenerate(t, builder.CredRedis)
	lines := strings.Split(strings.TrimSuffix(string(data[builder.KeyRedisACL]), "\n"), "\n")
	users := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "user" {
			t.Fatalf("ACL line %q is not a user rule", l)
		}
		users[f[1]] = f[2:]
	}
	hash := func(user string) string {
		sum := sha256.Sum256(data[user])
		return "#" + hex.EncodeToString(sum[:])
	}

	if diff := cmp.Diff([]string{"off"}, users["default"]); diff != "" {
		t.Errorf("default user (-want +got):\n%s", diff)
	}
	for _, svc := range []string{"user", "order", "inventory"} {
		t.Run(svc, func(t *testing.T) {
			rule := users[svc]
			if len(rule) == 0 {
				t.Fatalf("no ACL user %s", svc)
			}
			if !slices.Contains(rule, "on") {
				t.Errorf("user %s is not on: %v", svc, rule)
			}
			if !slices.Contains(rule, hash(svc)) {
				t.Errorf("user %s lacks the SHA-256 of its password: %v", svc, rule)
			}
			var keys, channels []string
			for _, r := range rule {
				switch {
				case strings.HasPrefix(r, "~"), r == "allkeys", strings.HasPrefix(r, "%"):
					keys = append(keys, r)
				case strings.HasPrefix(r, "&"), r == "allchannels":
					channels = append(channels, r)
				case strings.HasPrefix(r, ">"):
					t.Errorf("user %s has a clear-text password", svc)
				}
			}
			if diff := cmp.Diff([]string{"~" + svc + ":*"}, keys); diff != "" {
				t.Errorf("user %s keys (-want +got):\n%s", svc, diff)
			}
			if diff := cmp.Diff([]string{"&" + svc + ":*"}, channels); diff != "" {
				t.Errorf("user %s channels (-want +got):\n%s", svc, diff)
			}
			for _, forbidden := range []string{"-@admin", "-@dangerous"} {
				if !slices.Contains(rule, forbidden) {
					t.Errorf("user %s may run %s commands", svc, strings.TrimPrefix(forbidden, "-"))
				}
			}
		})
	}
	if _, ok := users["payment"]; ok {
		t.Error("payment has a Redis user, but it does not use Redis")
	}
	for _, u := range []string{builder.KeyRedisReplication, builder.KeyRedisSentinel} {
		if !slices.Contains(users[u], hash(u)) {
			t.Errorf("user %s lacks the SHA-256 of its password: %v", u, users[u])
		}
	}
	if !slices.Contains(users[builder.KeyRedisReplication], "-@all") {
		t.Errorf("the replication user is not limited to replication commands: %v", users[builder.KeyRedisReplication])
	}
	for user, rule := range users {
		for _, r := range rule {
			if strings.Contains(r, ">") {
				t.Errorf("user %s has a clear-text password in the ACL file", user)
			}
		}
	}
	if strings.Contains(string(data[builder.KeyRedisACL]), string(data["order"])) {
		t.Error("the ACL file contains order's password in the clear")
	}
}

func TestValidateRefusesUnusableCredentials(t *testing.T) {
	good := func(kind builder.CredentialKind) map[string][]byte {
		d, err := Generate(kind)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, kind := range builder.AllCredentials {
		if err := Validate(kind, good(kind)); err != nil {
			t.Errorf("%s: freshly generated data refused: %v", kind, err)
		}
		if err := Validate(kind, map[string][]byte{}); err == nil || !strings.Contains(err.Error(), "missing or empty") {
			t.Errorf("%s: empty Secret: got %v, want a missing-keys error", kind, err)
		}
	}
	short := good(builder.CredPayment)
	short[builder.KeyEncryptionKey] = short[builder.KeyEncryptionKey][:16]
	if err := Validate(builder.CredPayment, short); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Errorf("16-byte encryption key: got %v", err)
	}
	bad := good(builder.CredJWTSigning)
	bad[builder.KeyJWTSigningKey] = []byte("not a key")
	if err := Validate(builder.CredJWTSigning, bad); err == nil {
		t.Error("a signing key that is not PEM was accepted")
	}
	pg := good(builder.CredPostgres)
	delete(pg, "payment")
	if err := Validate(builder.CredPostgres, pg); err == nil || !strings.Contains(err.Error(), "payment") {
		t.Errorf("Postgres credentials without the payment role: got %v, want it named", err)
	}
}
