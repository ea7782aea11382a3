package redisx_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/pkg/redisx"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

// serviceConfig is what the operator would give service: its ACL user and
// password file, the Sentinels or the server, and a TLS directory with its
// own certificate.
func serviceConfig(t *testing.T, r *testenv.Redis, service string) redisx.Config {
	t.Helper()
	env := r.ServiceEnv(t, service)
	env["SHOPSTACK_TLS_DIR"] = r.CA.TLSDir(t, r.CA.ClientCert(t, service))
	cfg, err := redisx.FromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openClient(t *testing.T, cfg redisx.Config) *redis.Client {
	t.Helper()
	rdb, err := redisx.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func context500ms(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 500*time.Millisecond)
}
