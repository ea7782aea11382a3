package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	cfg, err := FromEnv(env(map[string]string{EnvAllowedSourceRanges: "10.0.0.0/8, 2001:db8::/32"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SourceRanges) != 2 || cfg.ForwardedHops != 1 {
		t.Errorf("got %+v", cfg)
	}
	for name, bad := range map[string]map[string]string{
		"not a range":  {EnvAllowedSourceRanges: "10.0.0.0/33"},
		"hops of text": {EnvForwardedHops: "one"},
		"hops too big": {EnvForwardedHops: "99"},
	} {
		if _, err := FromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), "SHOPSTACK_") {
			t.Errorf("%s: got %v, want an error naming the variable", name, err)
		}
	}
}

func TestGuardAdmitsOnlyTheRangesByTheGatewaysForwardedAddress(t *testing.T) {
	cfg, err := FromEnv(env(map[string]string{EnvAllowedSourceRanges: "203.0.113.0/24"}))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Guard()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tests := map[string]struct {
		forwarded string
		want      int
	}{
		"a client inside the range":               {"203.0.113.7", http.StatusNoContent},
		"a client outside":                        {"198.51.100.1", http.StatusForbidden},
		"a forged entry left of the gateway's":    {"203.0.113.7, 198.51.100.1", http.StatusForbidden},
		"the gateway's entry after a forged one":  {"198.51.100.1, 203.0.113.9", http.StatusNoContent},
		"no forwarded header: the remote address": {"", http.StatusForbidden},
		"garbage in the header":                   {"not-an-ip", http.StatusForbidden},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/products", nil)
			r.RemoteAddr = "10.244.0.5:40000" // the gateway pod
			if tc.forwarded != "" {
				r.Header.Set("X-Forwarded-For", tc.forwarded)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if w.Code == http.StatusForbidden {
				var body struct {
					Error struct{ Code string } `json:"error"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "source_not_allowed" {
					t.Errorf("body %s", w.Body.String())
				}
			}
		})
	}
}

func TestGuardWithoutRangesLetsEveryoneIn(t *testing.T) {
	h := Config{ForwardedHops: 1}.Guard()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("status %d", w.Code)
	}
}
