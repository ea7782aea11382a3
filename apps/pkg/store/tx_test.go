package store_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopstack/shopstack/apps/pkg/store"
)

func TestInTxCommitsOrRollsBack(t *testing.T) {
	pool := openDB(t)
	exec(t, pool, "CREATE TABLE notes (body text)")
	ctx := testContext(t)

	if err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes VALUES ('kept')")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO notes VALUES ('dropped')"); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("InTx returned %v, want the function's error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		_ = store.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, "INSERT INTO notes VALUES ('panicked')")
			panic("boom")
		})
	}()
	if n := queryInt(t, pool, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("%d notes, want only the committed one", n)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"); n != 0 {
		t.Errorf("%d connections left inside a transaction", n)
	}
}

// A repeatable-read transaction whose row changed under it fails with a
// serialization failure; InTx runs it again and the second run sees the
// change.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	pool := openDB(t)
	exec(t, pool, "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
	exec(t, pool, "INSERT INTO counters VALUES (1, 0)")
	ctx := testContext(t)

	attempts := 0
	err := store.InTxWith(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		attempts++
		var n int
		if err := tx.QueryRow(ctx, "SELECT n FROM counters WHERE id = 1").Scan(&n); err != nil {
			return err
		}
		if attempts == 1 {
			// Another replica increments the counter after our snapshot.
			exec(t, pool, "UPDATE counters SET n = n + 1 WHERE id = 1")
		}
		_, err := tx.Exec(ctx, "UPDATE counters SET n = $1 WHERE id = 1", n+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("ran %d times, want 2 (one serialization failure, one success)", attempts)
	}
	if n := queryInt(t, pool, "SELECT n FROM counters WHERE id = 1"); n != 2 {
		t.Errorf("counter = %d, want 2: an increment was lost", n)
	}
}

// Two transactions locking the same rows in opposite orders deadlock;
// PostgreSQL aborts one, InTx runs it again, and both complete.
func TestInTxRetriesDeadlocks(t *testing.T) {
	pool := openDB(t)
	exec(t, pool, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
	exec(t, pool, "INSERT INTO accounts VALUES (1, 100), (2, 100)")
	ctx := testContext(t)

	var attempts atomic.Int32
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	var once [2]sync.Once
	transfer := func(i int, from, to int) error {
		return store.InTx(ctx, pool, func(tx pgx.Tx) error {
			attempts.Add(1)
			if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - 10 WHERE id = $1", from); err != nil {
				return err
			}
			// Only the first attempts wait for each other, to make the
			// deadlock certain.
			once[i].Do(func() {
				bothLocked.Done()
				bothLocked.Wait()
			})
			_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + 10 WHERE id = $1", to)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- transfer(0, 1, 2) }()
	go func() { errs <- transfer(1, 2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a transfer failed: %v", err)
		}
	}
	// At least one deadlock victim was retried; on a busy machine a retry can
	// meet the other transaction again, but never beyond the bound.
	if n := attempts.Load(); n < 3 || n > 2*store.TxAttempts {
		t.Errorf("%d attempts, want 3 to %d (deadlock victims retried, boundedly)", n, 2*store.TxAttempts)
	}
	if n := queryInt(t, pool, "SELECT sum(balance) FROM accounts"); n != 200 {
		t.Errorf("total balance %d, want 200", n)
	}
}

func TestInTxRetriesABoundedNumberOfTimes(t *testing.T) {
	pool := openDB(t)
	ctx := testContext(t)
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"serialization failure": {&pgconn.PgError{Code: "40001"}, store.TxAttempts},
		"deadlock":              {&pgconn.PgError{Code: "40P01"}, store.TxAttempts},
		"anything else":         {&pgconn.PgError{Code: "22012"}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			attempts := 0
			err := store.InTx(ctx, pool, func(pgx.Tx) error {
				attempts++
				return tc.err
			})
			if attempts != tc.want {
				t.Errorf("ran %d times, want %d", attempts, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("returned %v, want the last error", err)
			}
		})
	}
}
