package store_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopstack/shopstack/apps/pkg/store"
	"github.com/shopstack/shopstack/apps/pkg/testenv"
)

func TestOpenConnectsOverVerifiedTLSWithSCRAM(t *testing.T) {
	cfg := newDB(t)
	pool := open(t, cfg)
	ctx := testContext(t)
	if err := store.Ping(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var ssl bool
	var clientDN, user, timeout, app string
	err := pool.QueryRow(ctx, `SELECT ssl, coalesce(client_dn, ''), current_user, current_setting('statement_timeout'), current_setting('application_name')
		FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl, &clientDN, &user, &timeout, &app)
	if err != nil {
		t.Fatal(err)
	}
	if !ssl || user != cfg.User || app != cfg.User {
		t.Errorf("ssl=%v user=%q application_name=%q", ssl, user, app)
	}
	if clientDN != "/CN="+cfg.User {
		t.Errorf("client certificate DN = %q, want the service's own certificate", clientDN)
	}
	if timeout != "5s" {
		t.Errorf("statement_timeout = %q, want the default 5s", timeout)
	}
}

func TestOpenStatementTimeoutCancelsSlowQueries(t *testing.T) {
	cfg := newDB(t)
	cfg.StatementTimeout = 100 * time.Millisecond
	pool := open(t, cfg)
	_, err := pool.Exec(testContext(t), "SELECT pg_sleep(5)")
	if err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("a 5 s query under a 100 ms statement timeout: %v", err)
	}
}

// Errors no retry can fix must come back at once, however long Open would
// wait for a database that is merely not up yet.
func TestOpenFailsFastWithAClearError(t *testing.T) {
	otherCA := testenv.NewCA(t)
	for name, tc := range map[string]struct {
		change   func(*store.Config)
		want     []string
		authFail bool
	}{
		"wrong password": {
			change: func(c *store.Config) {
				c.PasswordFile = writeFile(t, t.TempDir(), "password", "wrong")
				c.Password = ""
			},
			want:     []string{"password", "is wrong or the role does not exist", "SHOPSTACK_POSTGRES_PASSWORD_FILE", "28P01"},
			authFail: true,
		},
		"plain TCP, refused by pg_hba": {
			change:   func(c *store.Config) { c.SSLMode = store.SSLDisable },
			want:     []string{"pg_hba.conf has no rule", "no encryption", "TLS only"},
			authFail: true,
		},
		"server certificate from another CA": {
			change: func(c *store.Config) { c.TLSDir = otherCA.TLSDir(t, nil) },
			want:   []string{"not signed by the CA", "ca.crt"},
		},
		"no such database": {
			change: func(c *store.Config) { c.Database = "nope" },
			want:   []string{"the database does not exist"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := newDB(t)
			cfg.StartupTimeout = 30 * time.Second
			tc.change(&cfg)
			start := time.Now()
			pool, err := store.Open(testContext(t), cfg)
			if err == nil {
				pool.Close()
				t.Fatal("Open succeeded")
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Open took %s: it retried an error that cannot heal", elapsed)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got := errors.Is(err, store.ErrAuthentication); got != tc.authFail {
				t.Errorf("errors.Is(err, ErrAuthentication) = %v", got)
			}
		})
	}
}

// The database may come up after the service: Open keeps trying, within
// StartupTimeout.
func TestOpenWaitsForTheDatabase(t *testing.T) {
	t.Parallel() // mostly waiting
	cfg := newDB(t)
	pg := sharedPostgres(t)
	port := testenv.FreePort(t)
	cfg.Port = port
	cfg.StartupTimeout = 20 * time.Second

	const delay = 1500 * time.Millisecond
	forwardAfter(t, delay, "127.0.0.1:"+strconv.Itoa(port), pg.Addr())
	start := time.Now()
	pool := open(t, cfg)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("Open returned after %s, before the database was reachable", elapsed)
	}
	if err := store.Ping(testContext(t), pool); err != nil {
		t.Error(err)
	}
}

func TestOpenGivesUpAfterStartupTimeout(t *testing.T) {
	t.Parallel() // mostly waiting
	cfg := newDB(t)
	cfg.Port = testenv.FreePort(t) // nothing listens there
	cfg.StartupTimeout = time.Second
	start := time.Now()
	_, err := store.Open(testContext(t), cfg)
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "gave up after 1s") {
		t.Errorf("error = %v", err)
	}
	if elapsed < 500*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Open gave up after %s, want about 1s", elapsed)
	}
}

// A rotated password reaches new connections without a restart.
func TestOpenRereadsThePasswordFile(t *testing.T) {
	cfg := newDB(t)
	pool := open(t, cfg)
	super, err := pgx.Connect(testContext(t), sharedPostgres(t).SuperuserDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(testContext(t))
	if _, err := super.Exec(testContext(t), "ALTER ROLE "+cfg.User+" PASSWORD 'rotated'"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.PasswordFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // drop the connections made with the old password
	if err := store.Ping(testContext(t), pool); err != nil {
		t.Errorf("a new connection after the rotation: %v", err)
	}
}

// forwardAfter starts relaying TCP connections from listen to target after
// delay, until the test ends.
func forwardAfter(t *testing.T, delay time.Duration, listen, target string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	go func() {
		defer wg.Done()
		select {
		case <-stop:
			return
		case <-time.After(delay):
		}
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return // Open then times out and the test says so
		}
		go func() {
			<-stop
			_ = l.Close()
		}()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
}
