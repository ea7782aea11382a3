package testenv

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	pg := StartPostgres(t, PostgresOptions{Settings: map[string]string{"deadlock_timeout": "123ms"}})
	if err := pg.CreateRoleAndDB("order", "it's a secret"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("superuser over the socket, with the extra settings", func(t *testing.T) {
		conn := connect(t, ctx, pg.SuperuserDSN())
		var timeout string
		if err := conn.QueryRow(ctx, "SHOW deadlock_timeout").Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if timeout != "123ms" {
			t.Errorf("deadlock_timeout = %q, want the option's 123ms", timeout)
		}
	})

	t.Run("service role over TLS with SCRAM", func(t *testing.T) {
		conn := connect(t, ctx, pg.DSN("order", "it's a secret", "order"))
		var ssl bool
		var user string
		err := conn.QueryRow(ctx, "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &user)
		if err != nil {
			t.Fatal(err)
		}
		if !ssl || user != "order" {
			t.Errorf("ssl=%v user=%q", ssl, user)
		}
		var verifier string
		if err := connect(t, ctx, pg.SuperuserDSN()).QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'order'").Scan(&verifier); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
			t.Errorf("the password is stored as %.14q, not a SCRAM verifier", verifier)
		}
	})

	t.Run("the role's database is closed to other roles", func(t *testing.T) {
		if err := pg.CreateRoleAndDB("payment", "pw"); err != nil {
			t.Fatal(err)
		}
		_, err := pgx.Connect(ctx, pg.DSN("payment", "pw", "order"))
		if err == nil || !strings.Contains(err.Error(), "permission denied for database") {
			t.Errorf("payment connecting to order's database: %v", err)
		}
	})

	t.Run("plain TCP is refused by pg_hba", func(t *testing.T) {
		_, err := pgx.Connect(ctx, withQuery(t, pg.DSN("order", "it's a secret", "order"), "sslmode", "disable"))
		if err == nil || !strings.Contains(err.Error(), "no pg_hba.conf entry") {
			t.Errorf("non-TLS connection: %v", err)
		}
	})

	t.Run("a wrong password is refused", func(t *testing.T) {
		_, err := pgx.Connect(ctx, pg.DSN("order", "wrong", "order"))
		if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("wrong password: %v", err)
		}
	})

	t.Run("the server certificate does not verify against another CA", func(t *testing.T) {
		other := NewCA(t).TLSDir(t, nil)
		_, err := pgx.Connect(ctx, withQuery(t, pg.DSN("order", "it's a secret", "order"), "sslrootcert", other+"/ca.crt"))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("connecting with another CA: %v", err)
		}
	})
}

func TestPostgresStopLeavesNothing(t *testing.T) {
	pg := StartPostgres(t, PostgresOptions{})
	pid := pg.proc.cmd.Process.Pid
	pg.Stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the postmaster %d is still there after Stop: %v", pid, err)
	}
	if _, err := os.Stat(pg.Dir); !os.IsNotExist(err) {
		t.Errorf("the server's directory is still there: %v", err)
	}
	pg.Stop() // a second Stop is harmless
}

func connect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// withQuery sets one parameter of a URL connection string.
func withQuery(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
