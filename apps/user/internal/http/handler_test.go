package http_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegisterTokenMe(t *testing.T) {
	e := newEnv(t)

	reg := e.register(t, "Ann.Lee@Example.com", "correct horse battery")
	wantStatus(t, reg, http.StatusCreated)
	user := reg.JSON(t)
	id, _ := user["id"].(string)
	if len(id) != 36 || user["email"] != "Ann.Lee@Example.com" || !slices.Equal(toStrings(user["roles"]), []string{"customer"}) {
		t.Fatalf("registered user: %s", reg.Body)
	}
	created, err := time.Parse(time.RFC3339, user["created_at"].(string))
	if err != nil || time.Since(created) > time.Minute || !strings.HasSuffix(user["created_at"].(string), "Z") {
		t.Fatalf("created_at %v is not a recent RFC 3339 UTC time (%v)", user["created_at"], err)
	}
	if _, ok := user["password"]; ok || contains(reg.Body, "argon2") {
		t.Fatalf("the answer leaks the password or its hash: %s", reg.Body)
	}

	// The email's case does not matter for logging in.
	res := e.token(t, "ann.lee@example.COM", "correct horse battery")
	tok := accessToken(t, res)
	body := res.JSON(t)
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(900) {
		t.Fatalf("token answer: %s", res.Body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", res.Header.Get("Cache-Control"))
	}

	t.Run("the token verifies with the shared verifier", func(t *testing.T) {
		claims, err := e.Issuer.Verifier(t).Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Issuer != e.IssuerURL || !slices.Equal(claims.Audience, []string{testAudience}) || claims.Subject != id ||
			!slices.Equal(claims.Roles, []string{"customer"}) {
			t.Fatalf("claims %+v", claims)
		}
		if life := claims.ExpiresAt.Sub(claims.IssuedAt); life != 15*time.Minute {
			t.Fatalf("token lives %s, want 15m", life)
		}
		if until := time.Until(claims.ExpiresAt); until < 14*time.Minute || until > 15*time.Minute+time.Second {
			t.Fatalf("token expires in %s", until)
		}
		kid, err := os.ReadFile(e.Issuer.KeyIDFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := tokenHeader(t, tok)["kid"]; got != string(kid) {
			t.Fatalf("kid %v, want %s", got, kid)
		}
		if got := tokenHeader(t, tok)["alg"]; got != "ES256" {
			t.Fatalf("alg %v", got)
		}
	})

	t.Run("me", func(t *testing.T) {
		me := e.me(t, tok)
		wantStatus(t, me, http.StatusOK)
		m := me.JSON(t)
		if m["id"] != id || m["email"] != "Ann.Lee@Example.com" || m["created_at"] != user["created_at"] {
			t.Fatalf("me: %s", me.Body)
		}
	})

	t.Run("metrics count the registration and the login", func(t *testing.T) {
		families, err := e.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				name := f.GetName()
				for _, l := range m.GetLabel() {
					name += "/" + l.GetValue()
				}
				got[name] = m.GetCounter().GetValue()
			}
		}
		for name, want := range map[string]float64{
			"users_registered_total": 1, "logins_total/success": 1, "logins_total/invalid_grant": 0,
			"logins_total/locked": 0, "logins_total/error": 0,
		} {
			if v, ok := got[name]; !ok || v != want {
				t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
			}
		}
	})
}

func TestDuplicateEmailIsRefused(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.register(t, "ann@example.com", "correct horse battery"), http.StatusCreated)
	for _, email := range []string{"ann@example.com", "ANN@Example.COM"} {
		res := e.register(t, email, "another long password")
		wantStatus(t, res, http.StatusConflict)
		if res.ErrorCode(t) != "email_taken" || res.ErrorField(t) != "email" {
			t.Fatalf("error %s", res.Body)
		}
	}
	if n := e.countUsers(t); n != 2 { // the admin and ann
		t.Fatalf("%d users", n)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.register(t, "bob@example.com", "correct horse battery"), http.StatusCreated)
	for name, login := range map[string][2]string{
		"wrong password":  {"bob@example.com", "incorrect horse battery"},
		"unknown account": {"nobody@example.com", "correct horse battery"},
		"unknown admin":   {"root", "correct horse battery"},
	} {
		t.Run(name, func(t *testing.T) {
			res := e.token(t, login[0], login[1])
			wantStatus(t, res, http.StatusUnauthorized)
			if res.ErrorCode(t) != "invalid_grant" {
				t.Fatalf("code %q", res.ErrorCode(t))
			}
		})
	}
}

func TestFailedLoginsLockTheAccount(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.register(t, "carol@example.com", "correct horse battery"), http.StatusCreated)
	wantStatus(t, e.register(t, "dave@example.com", "correct horse battery"), http.StatusCreated)

	for i := 1; i <= 5; i++ {
		res := e.token(t, "carol@example.com", "wrong password "+strconv.Itoa(i))
		wantStatus(t, res, http.StatusUnauthorized)
	}
	res := e.token(t, "Carol@Example.com", "wrong password 6")
	wantStatus(t, res, http.StatusTooManyRequests)
	retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || retry < 14*60 || retry > 15*60 {
		t.Fatalf("Retry-After %q, want about 15 minutes", res.Header.Get("Retry-After"))
	}
	if res.ErrorCode(t) != "rate_limited" {
		t.Fatalf("code %q", res.ErrorCode(t))
	}

	t.Run("the right password is refused while locked", func(t *testing.T) {
		wantStatus(t, e.token(t, "carol@example.com", "correct horse battery"), http.StatusTooManyRequests)
	})
	t.Run("other accounts are not affected", func(t *testing.T) {
		accessToken(t, e.token(t, "dave@example.com", "correct horse battery"))
	})
	t.Run("unknown accounts lock the same way", func(t *testing.T) {
		for range 5 {
			wantStatus(t, e.token(t, "ghost@example.com", "wrong password"), http.StatusUnauthorized)
		}
		wantStatus(t, e.token(t, "ghost@example.com", "wrong password"), http.StatusTooManyRequests)
	})
	t.Run("concurrent failures on one account are all counted", func(t *testing.T) {
		const attempts = 8
		statuses := make(chan int, attempts)
		var wg sync.WaitGroup
		for range attempts {
			wg.Go(func() { statuses <- e.token(t, "dave@example.com", "wrong password").Status })
		}
		wg.Wait()
		close(statuses)
		unauthorized := 0
		for s := range statuses {
			if s == http.StatusUnauthorized {
				unauthorized++
			} else if s != http.StatusTooManyRequests {
				t.Fatalf("status %d", s)
			}
		}
		var failures int
		if err := e.Pool.QueryRow(testContext(t), "SELECT failures FROM login_failures WHERE account = 'dave@example.com'").Scan(&failures); err != nil {
			t.Fatal(err)
		}
		if failures != unauthorized || failures < 5 {
			t.Fatalf("%d failures recorded for %d refused logins", failures, unauthorized)
		}
		wantStatus(t, e.token(t, "dave@example.com", "correct horse battery"), http.StatusTooManyRequests)
	})
	t.Run("the lock ends when the window has passed", func(t *testing.T) {
		if _, err := e.Pool.Exec(testContext(t),
			"UPDATE login_failures SET window_start = window_start - interval '15 minutes' WHERE account = 'carol@example.com'"); err != nil {
			t.Fatal(err)
		}
		accessToken(t, e.token(t, "carol@example.com", "correct horse battery"))
		// A good login clears the count: five more failures are needed to lock again.
		for range 4 {
			wantStatus(t, e.token(t, "carol@example.com", "wrong password"), http.StatusUnauthorized)
		}
		accessToken(t, e.token(t, "carol@example.com", "correct horse battery"))
	})
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	tok := accessToken(t, e.token(t, "admin", adminPassword))
	claims, err := e.Issuer.Verifier(t).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.Roles, []string{"admin"}) {
		t.Fatalf("roles %v, want [admin]", claims.Roles)
	}
	me := e.me(t, tok)
	wantStatus(t, me, http.StatusOK)
	if m := me.JSON(t); m["username"] != "admin" || m["id"] != claims.Subject || !slices.Equal(toStrings(m["roles"]), []string{"admin"}) {
		t.Fatalf("me: %s", me.Body)
	}

	t.Run("creating the admin is idempotent across replicas", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := e.Accounts.EnsureAdmin(testContext(t), adminUsername, adminPassword)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := e.countUsers(t); n != 1 {
			t.Fatalf("%d users, want the one admin", n)
		}
	})
	t.Run("a new password in the Secret replaces the old one", func(t *testing.T) {
		changed, err := e.Accounts.EnsureAdmin(testContext(t), adminUsername, "a rotated admin password")
		if err != nil || !changed {
			t.Fatalf("changed %v, %v", changed, err)
		}
		wantStatus(t, e.token(t, "admin", adminPassword), http.StatusUnauthorized)
		accessToken(t, e.token(t, "admin", "a rotated admin password"))
	})
	t.Run("nobody can register as a second admin", func(t *testing.T) {
		res := e.do(t, "POST", "/v1/users", "application/json",
			[]byte(`{"email":"eve@example.com","password":"correct horse battery","roles":["admin"]}`))
		wantStatus(t, res, http.StatusBadRequest)
		if res.ErrorField(t) != "roles" {
			t.Fatalf("field %q", res.ErrorField(t))
		}
	})
	t.Run("roles outside the list are refused by the database", func(t *testing.T) {
		_, err := e.Pool.Exec(testContext(t),
			`INSERT INTO users (email, password_hash, roles) VALUES ('x@example.com', '$argon2id$x', ARRAY['root'])`)
		if err == nil || !strings.Contains(err.Error(), "users_roles_check") {
			t.Fatalf("got %v, want a users_roles_check violation", err)
		}
	})
}

func TestBadRequestsStoreNothing(t *testing.T) {
	e := newEnv(t)
	const pw = `"password":"correct horse battery"`
	tests := map[string]struct {
		contentType string
		body        string
		status      int
		code, field string
	}{
		"malformed JSON":     {"application/json", `{"email":"a@example.com",` + pw, 400, "invalid_request", ""},
		"unknown field":      {"application/json", `{"email":"a@example.com",` + pw + `,"admin":true}`, 400, "invalid_request", "admin"},
		"wrong type":         {"application/json", `{"email":42,` + pw + `}`, 400, "invalid_request", "email"},
		"two JSON values":    {"application/json", `{"email":"a@example.com",` + pw + `}{}`, 400, "invalid_request", ""},
		"not JSON":           {"text/plain", `{"email":"a@example.com",` + pw + `}`, 415, "unsupported_media_type", ""},
		"oversized body":     {"application/json", `{"email":"a@example.com",` + pw + `,"x":"` + strings.Repeat("x", bodyLimit) + `"}`, 413, "payload_too_large", ""},
		"SQL in the email":   {"application/json", `{"email":"a'; DROP TABLE users;--@x.io",` + pw + `}`, 400, "invalid_request", "email"},
		"invalid email":      {"application/json", `{"email":"not-an-email",` + pw + `}`, 400, "invalid_request", "email"},
		"missing password":   {"application/json", `{"email":"a@example.com"}`, 400, "invalid_request", "password"},
		"short password":     {"application/json", `{"email":"a@example.com","password":"short"}`, 400, "invalid_request", "password"},
		"display name email": {"application/json", `{"email":"Ann <a@example.com>",` + pw + `}`, 400, "invalid_request", "email"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := e.do(t, "POST", "/v1/users", tc.contentType, []byte(tc.body))
			wantStatus(t, res, tc.status)
			if res.ErrorCode(t) != tc.code || res.ErrorField(t) != tc.field {
				t.Fatalf("error %s, want code %q field %q", res.Body, tc.code, tc.field)
			}
			if msg, _ := res.JSON(t)["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatalf("no message in %s", res.Body)
			}
			if n := e.countUsers(t); n != 1 { // also proves the table still exists
				t.Fatalf("%d users after a refused request, want only the admin", n)
			}
		})
	}

	t.Run("SQL metacharacters that form a valid address are stored literally", func(t *testing.T) {
		const email = "o'brien--%_*@example.com"
		wantStatus(t, e.register(t, email, "correct horse battery"), http.StatusCreated)
		var stored string
		if err := e.Pool.QueryRow(testContext(t), "SELECT email FROM users WHERE email LIKE 'o%'").Scan(&stored); err != nil || stored != email {
			t.Fatalf("stored %q, %v", stored, err)
		}
		accessToken(t, e.token(t, email, "correct horse battery"))
		// and as a login: no lookup succeeds, nothing breaks
		wantStatus(t, e.token(t, "' OR '1'='1", "' OR '1'='1"), http.StatusUnauthorized)
	})
}

func TestTokenEndpointRequests(t *testing.T) {
	e := newEnv(t)
	const form = "application/x-www-form-urlencoded"
	tests := map[string]struct {
		contentType, body string
		status            int
		code, field       string
	}{
		"client credentials grant": {form, "grant_type=client_credentials&username=admin&password=x", 400, "unsupported_grant_type", "grant_type"},
		"no grant type":            {form, "username=admin&password=x", 400, "invalid_request", "grant_type"},
		"no username":              {form, "grant_type=password&password=x", 400, "invalid_request", "username"},
		"no password":              {form, "grant_type=password&username=admin", 400, "invalid_request", "password"},
		"repeated parameter":       {form, "grant_type=password&username=admin&username=bob&password=x", 400, "invalid_request", "username"},
		"JSON body":                {"application/json", `{"grant_type":"password"}`, 415, "unsupported_media_type", ""},
		"oversized body":           {form, "grant_type=password&username=admin&password=" + strings.Repeat("x", bodyLimit), 413, "payload_too_large", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := e.do(t, "POST", "/v1/auth/token", tc.contentType, []byte(tc.body))
			wantStatus(t, res, tc.status)
			if res.ErrorCode(t) != tc.code || res.ErrorField(t) != tc.field {
				t.Fatalf("error %s, want code %q field %q", res.Body, tc.code, tc.field)
			}
		})
	}
	t.Run("credentials in the URL are not read", func(t *testing.T) {
		res := e.do(t, "POST", "/v1/auth/token?grant_type=password&username=admin&password="+adminPassword, form, nil)
		wantStatus(t, res, http.StatusBadRequest)
	})
	t.Run("unknown OAuth parameters are ignored", func(t *testing.T) {
		res := e.do(t, "POST", "/v1/auth/token", form,
			[]byte("grant_type=password&username=admin&password="+adminPassword+"&scope=openid&client_id=web"))
		accessToken(t, res)
	})
}

func TestMeNeedsAValidToken(t *testing.T) {
	e := newEnv(t)
	tests := map[string]struct {
		header []string
		status int
	}{
		"no token":        {nil, 401},
		"garbage":         {[]string{"Authorization", "Bearer not.a.token"}, 401},
		"basic auth":      {[]string{"Authorization", "Basic YWRtaW46YWRtaW4="}, 401},
		"deleted user":    {[]string{"Authorization", "Bearer " + e.Issuer.Token(t, "00000000-0000-4000-8000-000000000000", "customer")}, 404},
		"non-UUID userid": {[]string{"Authorization", "Bearer " + e.Issuer.Token(t, "x'; SELECT 1;--", "customer")}, 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := e.do(t, "GET", "/v1/users/me", "", nil, tc.header...)
			wantStatus(t, res, tc.status)
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	t.Run("jwks is the published file", func(t *testing.T) {
		res := e.do(t, "GET", "/.well-known/jwks.json", "", nil)
		wantStatus(t, res, http.StatusOK)
		want, err := os.ReadFile(e.Issuer.JWKSFile)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != strings.TrimSpace(string(want)) || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("jwks %s (%s), want %s", res.Body, res.Header.Get("Content-Type"), want)
		}
	})
	t.Run("openid configuration", func(t *testing.T) {
		res := e.do(t, "GET", "/.well-known/openid-configuration", "", nil)
		wantStatus(t, res, http.StatusOK)
		var d map[string]any
		if err := json.Unmarshal(res.Body, &d); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]any{
			"issuer":                                e.IssuerURL,
			"jwks_uri":                              e.IssuerURL + "/.well-known/jwks.json",
			"token_endpoint":                        e.IssuerURL + "/v1/auth/token",
			"grant_types_supported":                 []any{"password"},
			"id_token_signing_alg_values_supported": []any{"ES256"},
			"token_endpoint_auth_methods_supported": []any{"none"},
			"response_types_supported":              []any{"token"},
			"subject_types_supported":               []any{"public"},
		} {
			got, _ := json.Marshal(d[k])
			w, _ := json.Marshal(want)
			if string(got) != string(w) {
				t.Errorf("%s = %s, want %s", k, got, w)
			}
		}
	})
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}
