package integration

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	_ "github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// tsHelperDDL is the table @ziro-agent/checkpoint-postgres's ensureCheckpointsSchema creates (the seed's
// README); {T} stands for the qualified table name.
const tsHelperDDL = `CREATE TABLE IF NOT EXISTS {T} (
    thread_id     TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE INDEX IF NOT EXISTS ziro_checkpoints_thread_idx
    ON {T} (thread_id, checkpoint_id DESC);`

// migrateURL turns the test DSN into a golang-migrate URL for one of its drivers ("pgx5" or "postgres")
// whose search_path and migrations table live in schema.
func migrateURL(t testing.TB, scheme, schema string) string {
	t.Helper()
	u, err := url.Parse(postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = scheme
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("x-migrations-table", "schema_migrations")
	u.RawQuery = q.Encode()
	return u.String()
}

// migrateUp applies the committed golang-migrate files into schema with the real library.
func migrateUp(t testing.TB, scheme, schema string) *migrate.Migrate {
	t.Helper()
	src, err := iofs.New(os.DirFS("../migrations"), "golang-migrate")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, migrateURL(t, scheme, schema))
	if err != nil {
		t.Fatalf("migrate (%s): %v", scheme, err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Up(); err != nil {
		t.Fatalf("migrate up (%s): %v", scheme, err)
	}
	if err := m.Up(); !errors.Is(err, migrate.ErrNoChange) {
		t.Fatalf("second migrate up (%s): %v, want ErrNoChange", scheme, err)
	}
	return m
}

// TestGolangMigrate applies the golang-migrate files into a fresh schema for every contract subtest and
// runs the conformance suite on the result.
func TestGolangMigrate(t *testing.T) {
	for _, mg := range []struct {
		scheme string
		tg     target
	}{
		{"pgx5", postgresTargets(t)[0]},
		{"postgres", postgresTargets(t)[1]},
	} {
		t.Run(mg.scheme, func(t *testing.T) {
			t.Parallel()
			db := mg.tg.open(t)
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				opts.Schema = newSchema(t, db)
				opts.Dialect = mg.tg.dialect
				migrateUp(t, mg.scheme, opts.Schema)
				cp, err := pgcheckpoint.New(db, opts)
				if err != nil {
					t.Fatal(err)
				}
				matchPolicy(t, cp, opts)
				return cp
			})
		})
	}
}

// TestGolangMigrateDownUp: the down file removes the table, up recreates it.
func TestGolangMigrateDownUp(t *testing.T) {
	tg := postgresTargets(t)[0]
	t.Parallel()
	db := tg.open(t)
	schema := newSchema(t, db)
	m := migrateUp(t, "pgx5", schema)
	if err := m.Down(); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	if tableExists(t, db, schema) {
		t.Fatal("the table survived the down migration")
	}
	if err := m.Up(); err != nil {
		t.Fatalf("migrate up after down: %v", err)
	}
	if !tableExists(t, db, schema) {
		t.Fatal("no table after up")
	}
}

func tableExists(t testing.TB, db *sql.DB, schema string) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRowContext(testCtx(t), `SELECT to_regclass($1) IS NOT NULL`, fmt.Sprintf(`"%s".ziro_checkpoints`, schema)).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestGolangMigrateUpgradesSeedTable: a table the TypeScript helper created, holding its checkpoints
// (no seq), upgraded by the migration and then EnsureSchema; Go puts then keep exact retention and the
// TypeScript rows stay readable.
func TestGolangMigrateUpgradesSeedTable(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			schema := newSchema(t, db)
			table := fmt.Sprintf(`"%s".ziro_checkpoints`, schema)
			if _, err := db.ExecContext(ctx, strings.ReplaceAll(tsHelperDDL, "{T}", table)); err != nil {
				t.Fatalf("seed DDL: %v", err)
			}
			// Rows as the TypeScript package writes them: UUIDv7 ids of an earlier time, no seq.
			var old []string
			for i := range 4 {
				id := fmt.Sprintf("01890000-0000-7000-8000-%012d", i)
				old = append(old, id)
				if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes)
VALUES ('t', $1, '{"version":2,"__ziro_snapshot__":true}', 2, 38)`, id); err != nil {
					t.Fatal(err)
				}
			}
			scheme := "pgx5"
			if tg.driver == "postgres" {
				scheme = "postgres"
			}
			migrateUp(t, scheme, schema)
			cp := goCheckpointer(t, tg, db, schema, 3)
			if err := cp.EnsureSchema(ctx); err != nil {
				t.Fatalf("EnsureSchema after the migration: %v", err)
			}
			if got, err := cp.Latest(ctx, "t"); err != nil || got.ID != old[3] {
				t.Fatalf("Get latest of the TypeScript rows = %s, %v", got.ID, err)
			}
			all := old
			for range 3 {
				id, err := cp.Put(ctx, "t", []byte(`{"version":2,"__ziro_snapshot__":true}`))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, id)
				checkRetention(t, cp, "t", all, 3, id)
			}
		})
	}
}

// TestGooseFileApplies runs the Up section of the goose file the way goose does (one statement between
// StatementBegin and StatementEnd) into a fresh schema, then checks a Checkpointer works on the result.
func TestGooseFileApplies(t *testing.T) {
	tg := postgresTargets(t)[0]
	t.Parallel()
	b, err := os.ReadFile("../migrations/goose/00001_create_ziro_checkpoints.sql")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	begin := strings.Index(src, "-- +goose StatementBegin\n")
	end := strings.Index(src, "-- +goose StatementEnd")
	if !strings.Contains(src, "-- +goose Up\n") || !strings.Contains(src, "-- +goose Down\n") || begin < 0 || end < begin {
		t.Fatalf("goose annotations missing:\n%s", src)
	}
	up := src[begin+len("-- +goose StatementBegin\n") : end]
	db := tg.open(t)
	ctx := testCtx(t)
	schema := newSchema(t, db)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET search_path TO "%s"`, schema)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if _, err := conn.ExecContext(ctx, up); err != nil {
			t.Fatalf("goose Up section: %v", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `RESET search_path`); err != nil {
		t.Fatal(err)
	}
	cp := goCheckpointer(t, tg, db, schema, 2)
	var all []string
	for range 3 {
		id, err := cp.Put(ctx, "g", []byte(`{"version":1}`))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}
	checkRetention(t, cp, "g", all, 2, all[2])
}
