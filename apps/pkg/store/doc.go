// Package store is the services' access to PostgreSQL: configuration from the
// environment the operator sets, a connection pool over verified TLS that
// waits for the database at start, embedded migrations run exactly once
// however many replicas start together, and transactions that retry the
// failures PostgreSQL expects clients to retry.
//
// A service wires it like this:
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//
//	cfg, err := store.FromEnv(os.LookupEnv)
//	pool, err := store.Open(ctx, cfg)
//	defer pool.Close()
//	err = store.Migrate(ctx, pool, migrations)
//
//	err = store.InTx(ctx, pool, func(tx pgx.Tx) error { ... })
//	switch {
//	case errors.Is(err, store.ErrConflict):   // unique or exclusion violation
//	case errors.Is(err, store.ErrConstraint): // check, foreign key or not-null violation
//	case errors.Is(err, store.ErrNotFound):   // no rows
//	}
package store
