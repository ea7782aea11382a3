package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopstack/shopstack/apps/pkg/store"
)

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
	base := map[string]string{
		"SHOPSTACK_POSTGRES_HOST":          "acme-postgres-rw",
		"SHOPSTACK_POSTGRES_PORT":          "5432",
		"SHOPSTACK_POSTGRES_DATABASE":      "order",
		"SHOPSTACK_POSTGRES_USER":          "order",
		"SHOPSTACK_POSTGRES_PASSWORD_FILE": writeFile(t, dir, "password", "s3cret\n"),
		"SHOPSTACK_TLS_DIR":                tlsDir,
		"SHOPSTACK_SERVICE":                "order",
	}
	with := func(changes map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range changes {
			if v == "<unset>" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}

	t.Run("what the operator sets, with defaults", func(t *testing.T) {
		got, err := store.FromEnv(lookup(base))
		if err != nil {
			t.Fatal(err)
		}
		want := store.Config{
			Host: "acme-postgres-rw", Port: 5432, Database: "order", User: "order",
			Password: "s3cret", PasswordFile: base["SHOPSTACK_POSTGRES_PASSWORD_FILE"],
			TLSDir: tlsDir, SSLMode: "verify-full", MaxConns: 10,
			StatementTimeout: 5 * time.Second, StartupTimeout: 60 * time.Second, ApplicationName: "order",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
	})

	t.Run("optional settings", func(t *testing.T) {
		got, err := store.FromEnv(lookup(with(map[string]string{
			"SHOPSTACK_POSTGRES_PORT":              "6432",
			"SHOPSTACK_POSTGRES_SSLMODE":           "verify-ca",
			"SHOPSTACK_POSTGRES_MAX_CONNS":         "25",
			"SHOPSTACK_POSTGRES_STATEMENT_TIMEOUT": "750ms",
			"SHOPSTACK_POSTGRES_STARTUP_TIMEOUT":   "2m",
		})))
		if err != nil {
			t.Fatal(err)
		}
		if got.Port != 6432 || got.SSLMode != "verify-ca" || got.MaxConns != 25 ||
			got.StatementTimeout != 750*time.Millisecond || got.StartupTimeout != 2*time.Minute {
			t.Errorf("config = %+v", got)
		}
	})

	t.Run("trailing newline", func(t *testing.T) {
		for content, want := range map[string]string{"pw": "pw", "pw\n": "pw", "pw\r\n": "pw", " pw \n": " pw "} {
			got, err := store.FromEnv(lookup(with(map[string]string{"SHOPSTACK_POSTGRES_PASSWORD_FILE": writeFile(t, dir, "pw", content)})))
			if err != nil {
				t.Fatal(err)
			}
			if got.Password != want {
				t.Errorf("password file %q read as %q, want %q", content, got.Password, want)
			}
		}
	})

	for name, tc := range map[string]struct {
		env  map[string]string
		want []string // each must appear in the error
	}{
		"nothing set": {
			env:  map[string]string{"SHOPSTACK_POSTGRES_HOST": "<unset>", "SHOPSTACK_POSTGRES_DATABASE": "<unset>", "SHOPSTACK_POSTGRES_USER": "<unset>", "SHOPSTACK_POSTGRES_PASSWORD_FILE": "<unset>"},
			want: []string{"SHOPSTACK_POSTGRES_HOST: required", "SHOPSTACK_POSTGRES_DATABASE: required", "SHOPSTACK_POSTGRES_USER: required", "SHOPSTACK_POSTGRES_PASSWORD_FILE: required"},
		},
		"missing password file": {
			env:  map[string]string{"SHOPSTACK_POSTGRES_PASSWORD_FILE": "/nonexistent/password"},
			want: []string{"SHOPSTACK_POSTGRES_PASSWORD_FILE", "/nonexistent/password", "no such file"},
		},
		"empty password file": {
			env:  map[string]string{"SHOPSTACK_POSTGRES_PASSWORD_FILE": writeFile(t, dir, "empty", "\n")},
			want: []string{"SHOPSTACK_POSTGRES_PASSWORD_FILE", filepath.Join(dir, "empty"), "is empty"},
		},
		"bad numbers and durations": {
			env:  map[string]string{"SHOPSTACK_POSTGRES_PORT": "fivefourthreetwo", "SHOPSTACK_POSTGRES_STATEMENT_TIMEOUT": "5", "SHOPSTACK_POSTGRES_MAX_CONNS": "0"},
			want: []string{"SHOPSTACK_POSTGRES_PORT: must be an integer", "SHOPSTACK_POSTGRES_STATEMENT_TIMEOUT: must be a positive duration", "SHOPSTACK_POSTGRES_MAX_CONNS: must be at least 1"},
		},
		"unknown SSL mode": {
			env:  map[string]string{"SHOPSTACK_POSTGRES_SSLMODE": "prefer"},
			want: []string{`SHOPSTACK_POSTGRES_SSLMODE: must be one of verify-full, verify-ca, require, disable, got "prefer"`},
		},
		"no CA to verify the server with": {
			env:  map[string]string{"SHOPSTACK_TLS_DIR": dir},
			want: []string{"SHOPSTACK_TLS_DIR", filepath.Join(dir, "ca.crt")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := store.FromEnv(lookup(with(tc.env)))
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

	t.Run("no CA needed without verification", func(t *testing.T) {
		if _, err := store.FromEnv(lookup(with(map[string]string{"SHOPSTACK_TLS_DIR": dir, "SHOPSTACK_POSTGRES_SSLMODE": "require"}))); err != nil {
			t.Error(err)
		}
	})
}
