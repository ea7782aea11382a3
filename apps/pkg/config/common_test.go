package config

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// validEnv is what the operator sets on a service under mesh none, with
// files in a temporary directory.
func validEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		EnvService:        "order",
		EnvShop:           "acme",
		EnvMesh:           "none",
		EnvTLSDir:         dir,
		EnvJWKSFile:       jwks,
		EnvJWTIssuer:      "https://shop.example.com",
		EnvJWTAudience:    "shopstack:shop/acme",
		EnvAllowedCallers: "spiffe://cluster.local/ns/shop/sa/acme-order",
	}
}

func TestCommon(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		env := validEnv(t)
		r := NewReader(Map(env))
		got := r.Common()
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		want := Common{
			Service: "order", Shop: "acme", Mesh: MeshNone,
			PublicAddr: ":8443", InternalAddr: ":9443", OpsAddr: ":8081",
			TLSDir: env[EnvTLSDir], JWKSFile: env[EnvJWKSFile],
			JWTIssuer: "https://shop.example.com", JWTAudience: "shopstack:shop/acme",
			AllowedCallers: []string{"spiffe://cluster.local/ns/shop/sa/acme-order"},
			LogLevel:       slog.LevelInfo, BodyLimit: 1 << 20, ShutdownGrace: 20 * time.Second, DrainDelay: 5 * time.Second,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("(-want +got)\n%s", diff)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		env := validEnv(t)
		env[EnvLogLevel] = "debug"
		env[EnvBodyLimit] = "64KiB"
		env[EnvShutdownGrace] = "5s"
		env[EnvDrainDelay] = "1s"
		env[EnvAllowedCallers] = ""
		r := NewReader(Map(env))
		got := r.Common()
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if got.LogLevel != slog.LevelDebug || got.BodyLimit != 64<<10 || got.ShutdownGrace != 5*time.Second ||
			got.DrainDelay != time.Second || got.AllowedCallers != nil {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("istio does not need the TLS directory", func(t *testing.T) {
		env := validEnv(t)
		env[EnvMesh] = "istio"
		env[EnvTLSDir] = "/does/not/exist"
		r := NewReader(Map(env))
		if c := r.Common(); r.Err() != nil || c.Mesh != MeshIstio {
			t.Fatalf("got %v, %v", c.Mesh, r.Err())
		}
	})
	errorCases := map[string]struct {
		change func(env map[string]string)
		want   string
	}{
		"unknown mesh":        {func(e map[string]string) { e[EnvMesh] = "linkerd" }, `SHOPSTACK_MESH: must be one of none, istio, got "linkerd"`},
		"missing service":     {func(e map[string]string) { delete(e, EnvService) }, "SHOPSTACK_SERVICE: required but not set"},
		"bad service name":    {func(e map[string]string) { e[EnvService] = "Order_Svc" }, "SHOPSTACK_SERVICE: must be a lowercase DNS label"},
		"missing issuer":      {func(e map[string]string) { e[EnvJWTIssuer] = "" }, "SHOPSTACK_JWT_ISSUER: required"},
		"missing jwks":        {func(e map[string]string) { e[EnvJWKSFile] = "/nope/jwks.json" }, "SHOPSTACK_JWKS_FILE: file \"/nope/jwks.json\""},
		"missing tls dir":     {func(e map[string]string) { e[EnvTLSDir] = "/nope" }, "SHOPSTACK_TLS_DIR: directory \"/nope\""},
		"caller not SPIFFE":   {func(e map[string]string) { e[EnvAllowedCallers] = "order,spiffe://td/ns/a/sa/b" }, `SHOPSTACK_ALLOWED_CALLERS: "order" is not a SPIFFE ID`},
		"bad log level":       {func(e map[string]string) { e[EnvLogLevel] = "loud" }, `SHOPSTACK_LOG_LEVEL: must be debug, info, warn or error, got "loud"`},
		"bad body limit":      {func(e map[string]string) { e[EnvBodyLimit] = "big" }, "SHOPSTACK_BODY_LIMIT: must be a positive size"},
		"bad grace":           {func(e map[string]string) { e[EnvShutdownGrace] = "20" }, "SHOPSTACK_SHUTDOWN_GRACE: must be a non-negative duration"},
		"zero grace":          {func(e map[string]string) { e[EnvShutdownGrace] = "0s" }, "SHOPSTACK_SHUTDOWN_GRACE: must be greater than zero"},
		"drain exceeds grace": {func(e map[string]string) { e[EnvDrainDelay] = "30s" }, "SHOPSTACK_DRAIN_DELAY: must be shorter than SHOPSTACK_SHUTDOWN_GRACE"},
	}
	for name, tc := range errorCases {
		t.Run(name, func(t *testing.T) {
			env := validEnv(t)
			tc.change(env)
			r := NewReader(Map(env))
			r.Common()
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadCommonFromEnvironment(t *testing.T) {
	for k, v := range validEnv(t) {
		t.Setenv(k, v)
	}
	t.Setenv(EnvOpsAddr, "127.0.0.1:0")
	c, err := LoadCommon()
	if err != nil || c.Service != "order" || c.OpsAddr != "127.0.0.1:0" {
		t.Fatalf("got %+v, %v", c, err)
	}
}

func TestFlags(t *testing.T) {
	t.Run("flag name", func(t *testing.T) {
		if got := FlagName(EnvPublicAddr); got != "public-addr" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a set flag overrides the environment, an unset one does not", func(t *testing.T) {
		fs := flag.NewFlagSet("order", flag.ContinueOnError)
		DefineFlags(fs, CommonEnv...)
		if err := fs.Parse([]string{"--public-addr", "127.0.0.1:8443"}); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{EnvPublicAddr: ":1", EnvOpsAddr: ":2"}
		r := NewReader(Layered(Flags(fs), Map(env)))
		if got := r.String(EnvPublicAddr, ""); got != "127.0.0.1:8443" {
			t.Errorf("public: got %q", got)
		}
		if got := r.String(EnvOpsAddr, ""); got != ":2" {
			t.Errorf("ops: got %q", got)
		}
		if got := r.String(EnvInternalAddr, "def"); got != "def" {
			t.Errorf("internal: got %q", got)
		}
	})
}
