package store_test

import (
	"embed"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shopstack/shopstack/apps/pkg/store"
)

//go:embed testdata/migrations/*.sql
var embedded embed.FS

func migrations(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, sql := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return fsys
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	return queryInt(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1", name) == 1
}

func TestMigrateEmbeddedFiles(t *testing.T) {
	pool := openDB(t)
	if err := store.Migrate(testContext(t), pool, embedded); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM products"); n != 2 {
		t.Errorf("%d products after the seed migration, want 2", n)
	}
	var names []string
	rows, _ := pool.Query(testContext(t), "SELECT name FROM schema_migrations ORDER BY version")
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	if strings.Join(names, ",") != "0001_create_products.sql,0002_seed_products.sql" {
		t.Errorf("schema_migrations = %v", names)
	}
}

// Replicas of a service start together; each runs Migrate. Every migration
// must run exactly once: the seed row would appear twice otherwise, and the
// CREATE TABLE would fail.
func TestMigrateRunsOnceWithConcurrentReplicas(t *testing.T) {
	cfg := newDB(t)
	fsys := migrations(map[string]string{
		"0001_create.sql": "CREATE TABLE events (id serial PRIMARY KEY, what text NOT NULL);",
		"0002_seed.sql":   "INSERT INTO events (what) VALUES ('seeded'); SELECT pg_sleep(0.2);",
		"0010_index.sql":  "CREATE INDEX events_what ON events (what);",
	})
	const replicas = 8
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		pools[i] = open(t, cfg)
	}
	errs := make(chan error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, pool := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- store.Migrate(testContext(t), pool, fsys)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a replica's Migrate: %v", err)
		}
	}
	pool := pools[0]
	if n := queryInt(t, pool, "SELECT count(*) FROM schema_migrations"); n != 3 {
		t.Errorf("%d migrations recorded, want 3", n)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM events"); n != 1 {
		t.Errorf("the seed ran %d times, want once", n)
	}
	if !tableExists(t, pool, "events") {
		t.Error("the events table is missing")
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); n != 0 {
		t.Errorf("%d advisory locks still held", n)
	}
}

func TestMigrateAgainIsANoOp(t *testing.T) {
	pool := openDB(t)
	fsys := migrations(map[string]string{
		"0001_create.sql": "CREATE TABLE things (id int PRIMARY KEY);",
		"0002_seed.sql":   "INSERT INTO things VALUES (1);",
	})
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Fatal(err)
	}
	var before time.Time
	_ = pool.QueryRow(testContext(t), "SELECT max(applied_at) FROM schema_migrations").Scan(&before)
	for range 2 {
		if err := store.Migrate(testContext(t), pool, fsys); err != nil {
			t.Fatalf("running the same migrations again: %v", err)
		}
	}
	var after time.Time
	_ = pool.QueryRow(testContext(t), "SELECT max(applied_at) FROM schema_migrations").Scan(&after)
	if !after.Equal(before) || queryInt(t, pool, "SELECT count(*) FROM things") != 1 {
		t.Error("a second Migrate applied something again")
	}

	// A later release adds a migration: only that one runs.
	fsys["0003_more.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO things VALUES (2);")}
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM things"); n != 2 {
		t.Errorf("%d things after the new migration, want 2", n)
	}
	// An older release (without 0003) still starts during a rolling update.
	delete(fsys, "0003_more.sql")
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Errorf("an older release's Migrate: %v", err)
	}
}

func TestMigrateRollsBackAFailedMigration(t *testing.T) {
	pool := openDB(t)
	fsys := migrations(map[string]string{
		"0001_ok.sql": "CREATE TABLE good (id int);",
		"0002_broken.sql": `CREATE TABLE half (id int);
INSERT INTO good VALUES (1);
CREATE TABLEE oops (id int);
`,
	})
	err := store.Migrate(testContext(t), pool, fsys)
	if err == nil {
		t.Fatal("a broken migration succeeded")
	}
	for _, want := range []string{"0002_broken.sql", "rolled back", "at line 3", "syntax error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if tableExists(t, pool, "half") || queryInt(t, pool, "SELECT count(*) FROM good") != 0 {
		t.Error("the failed migration left changes behind")
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM schema_migrations"); n != 1 {
		t.Errorf("%d migrations recorded, want only the good one", n)
	}

	fsys["0002_broken.sql"].Data = []byte("CREATE TABLE half (id int);")
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if !tableExists(t, pool, "half") {
		t.Error("the fixed migration did not run")
	}
}

func TestMigrateRefusesAnEditedMigration(t *testing.T) {
	pool := openDB(t)
	fsys := migrations(map[string]string{"0001_create.sql": "CREATE TABLE t (id int);"})
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Fatal(err)
	}
	fsys["0001_create.sql"].Data = []byte("CREATE TABLE t (id bigint);")
	err := store.Migrate(testContext(t), pool, fsys)
	if err == nil || !strings.Contains(err.Error(), "0001_create.sql was changed after it was applied") {
		t.Errorf("an edited migration: %v", err)
	}
}

func TestMigrateChecksFileNamesFirst(t *testing.T) {
	pool := openDB(t)
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"no version":        {map[string]string{"create.sql": ""}, "create.sql: the name must be <version>_<description>.sql"},
		"duplicate version": {map[string]string{"001_a.sql": "", "1_b.sql": ""}, "have the same version 1"},
	} {
		t.Run(name, func(t *testing.T) {
			err := store.Migrate(testContext(t), pool, migrations(tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if tableExists(t, pool, "schema_migrations") {
		t.Error("invalid migrations touched the database")
	}
}

// Versions are numbers: 2 runs before 10, whatever the padding.
func TestMigrateOrdersVersionsNumerically(t *testing.T) {
	pool := openDB(t)
	fsys := migrations(map[string]string{
		"10_second.sql": "INSERT INTO log VALUES ('10');",
		"2_first.sql":   "CREATE TABLE log (v text); INSERT INTO log VALUES ('2');",
		"README.md":     "not a migration",
		"sub/11_x.sql":  "INSERT INTO log VALUES ('11');",
	})
	if err := store.Migrate(testContext(t), pool, fsys); err != nil {
		t.Fatal(err)
	}
	var order string
	if err := pool.QueryRow(testContext(t), "SELECT string_agg(v, ',' ORDER BY ctid) FROM log").Scan(&order); err != nil {
		t.Fatal(err)
	}
	if order != "2,10,11" {
		t.Errorf("applied in the order %s", order)
	}
}
