// Package testenv starts real PostgreSQL and Redis processes for tests: on
// loopback addresses and free ports, in temporary directories, with TLS from a
// throwaway certificate authority and the same authentication rules the
// operator configures in a cluster (pg_hba hostssl + scram-sha-256; Redis
// TLS-only with per-service ACL users). Everything started is stopped in
// t.Cleanup, by process group.
//
// Binaries: PostgreSQL is looked up in $SHOPSTACK_TEST_PG_BINDIR, then on PATH,
// then in /usr/lib/postgresql/<version>/bin (newest first); Redis as
// redis-server on PATH. Postgres refuses to run as root, so under root the
// server runs as the "postgres" OS user. Under `go test -short` the helpers
// skip the test instead of starting anything.
//
// A typical test:
//
//	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
//	if err := pg.CreateRoleAndDB("order", "secret"); err != nil {
//		t.Fatal(err)
//	}
//	conn, err := pgx.Connect(ctx, pg.DSN("order", "secret", "order"))
//
// A package whose tests share one server starts it in TestMain with
// NewPostgres and stops it after m.Run.
package testenv
