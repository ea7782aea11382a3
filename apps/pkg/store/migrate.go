package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock is the pg_advisory_lock key every replica takes before it
// migrates. Advisory locks are per database, so services sharing a server do
// not wait for each other.
const migrationLock int64 = 0x73686f7073746163 // "shopstac"

// migrationName is <version>_<description>.sql, e.g. 0001_create_orders.sql.
var migrationName = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_.-]+\.sql$`)

type migration struct {
	version  int64
	name     string // the file's base name
	sql      string
	checksum string
}

// Migrate applies the migrations in fsys that the database has not seen yet,
// in version order, each in its own transaction, and records each in the
// schema_migrations table.
//
// Migrations are the .sql files anywhere in fsys named
// <version>_<description>.sql (0001_create_orders.sql); versions are
// integers, compared as numbers, and must be unique. A file may hold several
// statements. A service keeps them in internal/store/migrations and embeds
// them from package internal/store:
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//
// Several replicas starting at once is the normal case: a session-level
// pg_advisory_lock makes the others wait while one migrates, after which they
// find nothing left to do. A failed migration is rolled back entirely and
// the error names the file (and the line, where the server says). A file
// changed after it was applied is an error too: a migration is a record of
// what happened, and editing it would make databases differ silently.
// Versions recorded in the database but missing from fsys are ignored, so
// an older replica keeps running during a rolling update.
//
// Migrations run without the pool's statement timeout.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	migrations, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if len(migrations) == 0 {
		return nil
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrations: acquiring a connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrations: waiting for the migration lock: %w", err)
	}
	defer func() {
		// The lock belongs to the session: if it cannot be released, end the
		// session rather than return a connection that still holds it.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			_ = conn.Conn().Close(unlockCtx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    bigint PRIMARY KEY,
		name       text NOT NULL,
		checksum   text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrations: creating schema_migrations: %w", err)
	}
	applied := map[int64]migration{}
	rows, err := conn.Query(ctx, "SELECT version, name, checksum FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrations: reading schema_migrations: %w", err)
	}
	for rows.Next() {
		var m migration
		if err := rows.Scan(&m.version, &m.name, &m.checksum); err != nil {
			rows.Close()
			return fmt.Errorf("migrations: reading schema_migrations: %w", err)
		}
		applied[m.version] = m
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrations: reading schema_migrations: %w", err)
	}

	for _, m := range migrations {
		if done, ok := applied[m.version]; ok {
			if done.checksum != m.checksum {
				return fmt.Errorf("migrations: %s was changed after it was applied (as %s): add a new migration instead", m.name, done.name)
			}
			continue
		}
		if err := apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgxpool.Conn, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrations: %s: %w", m.name, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		return fmt.Errorf("migrations: %s: %w", m.name, err)
	}
	// No arguments: pgx sends the file with the simple protocol, which
	// allows several statements.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("migrations: %s failed and was rolled back%s: %w", m.name, errorLine(m.sql, err), err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
		m.version, m.name, m.checksum); err != nil {
		return fmt.Errorf("migrations: recording %s: %w", m.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrations: committing %s: %w", m.name, err)
	}
	return nil
}

// errorLine turns the server's character position into " at line N".
func errorLine(sql string, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return ""
	}
	runes := []rune(sql)
	pos := min(int(pgErr.Position)-1, len(runes))
	return fmt.Sprintf(" at line %d", 1+strings.Count(string(runes[:pos]), "\n"))
}

// loadMigrations reads and orders the migrations in fsys.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	var out []migration
	byVersion := map[int64]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".sql" {
			return nil
		}
		name := path.Base(p)
		match := migrationName.FindStringSubmatch(name)
		if match == nil {
			return fmt.Errorf("migrations: %s: the name must be <version>_<description>.sql, like 0001_create_orders.sql", p)
		}
		version, err := strconv.ParseInt(match[1], 10, 64)
		if err != nil {
			return fmt.Errorf("migrations: %s: version: %w", p, err)
		}
		if other, dup := byVersion[version]; dup {
			return fmt.Errorf("migrations: %s and %s have the same version %d", other, name, version)
		}
		byVersion[version] = name
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		sum := sha256.Sum256(data)
		out = append(out, migration{version: version, name: name, sql: string(data), checksum: hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}
