package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TxAttempts is how many times InTx runs a transaction that keeps failing
// with a serialization failure or a deadlock.
const TxAttempts = 5

// TxBeginner starts transactions: a *pgxpool.Pool, a *pgxpool.Conn or a
// *pgx.Conn.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// InTx runs fn in a read-committed transaction; see InTxWith.
func InTx(ctx context.Context, db TxBeginner, fn func(pgx.Tx) error) error {
	return InTxWith(ctx, db, pgx.TxOptions{}, fn)
}

// InTxWith runs fn in a transaction with the given options and commits it
// when fn returns nil; any error or panic rolls it back.
//
// A serialization failure or a deadlock (which PostgreSQL resolves by
// aborting one of the transactions, and expects the client to retry) runs
// the whole transaction again, up to TxAttempts times with a short random
// backoff. fn must therefore have no effect outside the transaction that a
// second run would repeat.
//
// The returned error has passed through MapError.
func InTxWith(ctx context.Context, db TxBeginner, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= TxAttempts; attempt++ {
		err = pgx.BeginTxFunc(ctx, db, opts, fn)
		if err == nil || !Retryable(err) || attempt == TxAttempts {
			break
		}
		// 5, 10, 20, 40 ms, jittered so the conflicting transactions do not
		// collide again in lockstep.
		backoff := time.Duration(5<<(attempt-1)) * time.Millisecond
		select {
		case <-ctx.Done():
			return MapError(err)
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
	}
	return MapError(err)
}

// Retryable reports whether err is a serialization failure or a deadlock:
// the transaction was sound and will likely succeed when run again.
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization_failure, deadlock_detected
}
