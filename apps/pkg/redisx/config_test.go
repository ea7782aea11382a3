package redisx_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopstack/shopstack/apps/pkg/redisx"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	tlsDir := t.TempDir()
	writeFile(t, tlsDir, "ca.crt", "not checked here")
	password := writeFile(t, dir, "password", "s3cret\n")
	// What the operator sets on the order service.
	operator := map[string]string{
		"SHOPSTACK_REDIS_SENTINELS":     "acme-redis-0.acme-redis.shop.svc.cluster.local:26379, acme-redis-1.acme-redis.shop.svc.cluster.local:26379,",
		"SHOPSTACK_REDIS_MASTER_NAME":   "shopstack",
		"SHOPSTACK_REDIS_USER":          "order",
		"SHOPSTACK_REDIS_PASSWORD_FILE": password,
		"SHOPSTACK_TLS_DIR":             tlsDir,
	}
	got, err := redisx.FromEnv(lookup(operator))
	if err != nil {
		t.Fatal(err)
	}
	want := redisx.Config{
		Sentinels: []string{
			"acme-redis-0.acme-redis.shop.svc.cluster.local:26379",
			"acme-redis-1.acme-redis.shop.svc.cluster.local:26379",
		},
		MasterName: "shopstack", User: "order", Password: "s3cret", PasswordFile: password, TLSDir: tlsDir,
		DialTimeout: 2 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	t.Run("a single server, master name defaulted only with sentinels", func(t *testing.T) {
		got, err := redisx.FromEnv(lookup(map[string]string{
			"SHOPSTACK_REDIS_ADDR": "127.0.0.1:6380", "SHOPSTACK_TLS_DIR": tlsDir,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.Addr != "127.0.0.1:6380" || got.MasterName != "" || got.User != "" {
			t.Errorf("config = %+v", got)
		}
		got, _ = redisx.FromEnv(lookup(map[string]string{"SHOPSTACK_REDIS_SENTINELS": "s:26379", "SHOPSTACK_TLS_DIR": tlsDir}))
		if got.MasterName != "shopstack" {
			t.Errorf("master name %q, want the operator's default", got.MasterName)
		}
	})

	for name, tc := range map[string]struct {
		env  map[string]string
		want []string
	}{
		"nothing set": {
			env:  map[string]string{"SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{"SHOPSTACK_REDIS_SENTINELS or SHOPSTACK_REDIS_ADDR: one is required"},
		},
		"both set": {
			env:  map[string]string{"SHOPSTACK_REDIS_ADDR": "a:1", "SHOPSTACK_REDIS_SENTINELS": "b:2", "SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{"set only one"},
		},
		"not host:port": {
			env:  map[string]string{"SHOPSTACK_REDIS_SENTINELS": "b:2,sentinel", "SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{`SHOPSTACK_REDIS_SENTINELS: "sentinel" is not host:port`},
		},
		"user without password": {
			env:  map[string]string{"SHOPSTACK_REDIS_ADDR": "a:1", "SHOPSTACK_REDIS_USER": "order", "SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{"SHOPSTACK_REDIS_PASSWORD_FILE: required with SHOPSTACK_REDIS_USER"},
		},
		"missing password file": {
			env:  map[string]string{"SHOPSTACK_REDIS_ADDR": "a:1", "SHOPSTACK_REDIS_USER": "order", "SHOPSTACK_REDIS_PASSWORD_FILE": "/nonexistent/pw", "SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{"SHOPSTACK_REDIS_PASSWORD_FILE", "/nonexistent/pw", "no such file"},
		},
		"empty password file": {
			env:  map[string]string{"SHOPSTACK_REDIS_ADDR": "a:1", "SHOPSTACK_REDIS_USER": "order", "SHOPSTACK_REDIS_PASSWORD_FILE": writeFile(t, dir, "empty", ""), "SHOPSTACK_TLS_DIR": tlsDir},
			want: []string{"is empty"},
		},
		"no CA": {
			env:  map[string]string{"SHOPSTACK_REDIS_ADDR": "a:1", "SHOPSTACK_TLS_DIR": dir},
			want: []string{"SHOPSTACK_TLS_DIR", filepath.Join(dir, "ca.crt")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := redisx.FromEnv(lookup(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLimitFromEnv(t *testing.T) {
	l, err := redisx.LimitFromEnv(lookup(nil))
	if err != nil || l != redisx.DefaultLimit {
		t.Errorf("defaults: %+v, %v", l, err)
	}
	l, err = redisx.LimitFromEnv(lookup(map[string]string{"SHOPSTACK_RATE_LIMIT_RPS": "2.5", "SHOPSTACK_RATE_LIMIT_BURST": "7"}))
	if err != nil || l != (redisx.Limit{Rate: 2.5, Burst: 7}) {
		t.Errorf("set: %+v, %v", l, err)
	}
	_, err = redisx.LimitFromEnv(lookup(map[string]string{"SHOPSTACK_RATE_LIMIT_RPS": "0", "SHOPSTACK_RATE_LIMIT_BURST": "many"}))
	if err == nil || !strings.Contains(err.Error(), "SHOPSTACK_RATE_LIMIT_RPS") || !strings.Contains(err.Error(), "SHOPSTACK_RATE_LIMIT_BURST") {
		t.Errorf("bad values: %v", err)
	}
}
