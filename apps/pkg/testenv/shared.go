package testenv

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// SharedPostgres is one PostgreSQL server for a test package, started by the
// first test that needs it; each test gets a role and database of its own on
// it, as each service does in a Shop. Declare one as a package variable and
// stop it in TestMain after m.Run:
//
//	var pg testenv.SharedPostgres
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
//
// The zero value starts a server with default options.
type SharedPostgres struct {
	// Options are given to NewPostgres when the server starts.
	Options PostgresOptions

	once sync.Once
	pg   *Postgres
	err  error
	seq  atomic.Int32
}

// Get returns the server, starting it on the first call. Under -short it
// skips the test instead; when the server did not start it fails the test.
func (s *SharedPostgres) Get(t testing.TB) *Postgres {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL; skipped under -short")
	}
	s.once.Do(func() { s.pg, s.err = NewPostgres(s.Options) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.pg
}

// NewDatabase creates a role and a database of the same name on the server,
// prefix followed by a number unique in the test binary, and returns the
// name and the role's password ("pw-" and the name).
func (s *SharedPostgres) NewDatabase(t testing.TB, prefix string) (name, password string) {
	t.Helper()
	pg := s.Get(t)
	name = fmt.Sprintf("%s%d", prefix, s.seq.Add(1))
	password = "pw-" + name
	if err := pg.CreateRoleAndDB(name, password); err != nil {
		t.Fatal(err)
	}
	return name, password
}

// Stop stops the server if a test started it.
func (s *SharedPostgres) Stop() {
	if s.pg != nil {
		s.pg.Stop()
	}
}
