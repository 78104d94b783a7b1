// Package integration runs pgcheckpoint against a real server: the contract suite (pgcheckpointtest) and
// what only a real server can show, for every driver (pgx stdlib, lib/pq) and dialect combination.
//
// PGCHECKPOINT_TEST_DSN names the PostgreSQL server (scripts/test sets it to the local server); without it
// every test here skips, and CI fails on any skip. PGCHECKPOINT_COCKROACH_DSN names a CockroachDB cluster
// for the TestRealCockroach suite, the one suite CI cannot run.
package integration

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	"github.com/ziroagent/pgcheckpoint"
)

// Every pool is bounded: the server allows 100 connections and several test binaries run at once.
const maxConnsPerPool = 4

// target is one driver x dialect combination on one server.
type target struct {
	name    string
	driver  string // database/sql driver name: "pgx" or "postgres" (lib/pq)
	dsn     string
	dialect pgcheckpoint.Dialect
	storage pgcheckpoint.Storage // the table layout (the checker runs on both)
}

func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PGCHECKPOINT_TEST_DSN")
	if dsn == "" {
		t.Skip("PGCHECKPOINT_TEST_DSN is not set; scripts/test sets it to the local PostgreSQL")
	}
	return dsn
}

// postgresTargets is the matrix run against PostgreSQL: both drivers, both dialects (the CockroachDB
// dialect's statements are valid PostgreSQL).
func postgresTargets(t testing.TB) []target {
	dsn := postgresDSN(t)
	return []target{
		{name: "pgx/postgres", driver: "pgx", dsn: dsn, dialect: pgcheckpoint.PostgreSQL},
		{name: "pq/postgres", driver: "postgres", dsn: dsn, dialect: pgcheckpoint.PostgreSQL},
		{name: "pgx/cockroach", driver: "pgx", dsn: dsn, dialect: pgcheckpoint.CockroachDB},
		{name: "pq/cockroach", driver: "postgres", dsn: dsn, dialect: pgcheckpoint.CockroachDB},
	}
}

// open returns a bounded pool for the target, closed at cleanup.
func (tg target) open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open(tg.driver, tg.dsn)
	if err != nil {
		t.Fatalf("open %s: %v", tg.name, err)
	}
	db.SetMaxOpenConns(maxConnsPerPool)
	db.SetMaxIdleConns(maxConnsPerPool)
	t.Cleanup(func() { db.Close() })
	return db
}

func testCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// newSchema creates a schema of its own for one test and drops it at cleanup, even when the test fails.
func newSchema(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pgct_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(testCtx(t), `CREATE SCHEMA "`+name+`"`); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA "`+name+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// newCheckpointer returns a Checkpointer on a fresh schema with its table created.
func (tg target) newCheckpointer(t testing.TB, db *sql.DB, opts pgcheckpoint.Options) *pgcheckpoint.Checkpointer {
	t.Helper()
	if opts.Schema == "" {
		opts.Schema = newSchema(t, db)
	}
	opts.Dialect = tg.dialect
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ensureWithPolicy(t, cp, opts)
	return cp
}

// matchPolicy makes the cap opts names the table's policy, where the table has a policy table (one made
// by the TypeScript package has none: a client that names a cap trims by it there): the test means a
// table that keeps what its options say.
func matchPolicy(t testing.TB, cp *pgcheckpoint.Checkpointer, opts pgcheckpoint.Options) {
	t.Helper()
	if opts.MaxCheckpointsPerThread == 0 {
		return
	}
	err := cp.SetRetention(testCtx(t), pgcheckpoint.Retention{MaxCheckpointsPerThread: opts.MaxCheckpointsPerThread, MaxBytesPerThread: opts.MaxBytesPerThread})
	if err != nil && !errors.Is(err, pgcheckpoint.ErrSchemaMissing) {
		t.Fatalf("SetRetention: %v", err)
	}
}

// ensureWithPolicy runs EnsureSchema and, when the table records another retention cap than opts
// names (a test reusing a schema with another cap), makes opts' cap the table's: the test then runs
// against a table whose policy is the one it means.
func ensureWithPolicy(t testing.TB, cp *pgcheckpoint.Checkpointer, opts pgcheckpoint.Options) {
	t.Helper()
	err := cp.EnsureSchema(testCtx(t))
	if errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
		err = cp.SetRetention(testCtx(t), pgcheckpoint.Retention{MaxCheckpointsPerThread: opts.MaxCheckpointsPerThread, MaxBytesPerThread: opts.MaxBytesPerThread})
	}
	if err != nil {
		t.Fatalf("EnsureSchema: %v", err)
	}
}

// count returns the number of rows of a thread, straight from the table.
func count(t testing.TB, db *sql.DB, table, thread string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM `+table+` WHERE thread_id = $1`, thread).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// callerTx is the isolation a caller's transaction needs for the target's dialect: READ COMMITTED (the
// default) on PostgreSQL, SERIALIZABLE (CockroachDB's default, set explicitly on the rehearsal server).
func (tg target) callerTx() *sql.TxOptions {
	if tg.dialect == pgcheckpoint.CockroachDB {
		return &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	return nil
}

// putAfter is PutAfter when head names a checkpoint and PutIfEmpty when it is "": the fenced put of a
// writer that remembers the head it read ("" for an empty thread).
func putAfter(s interface {
	PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error)
	PutIfEmpty(ctx context.Context, threadID string, snapshot []byte) (string, error)
}, ctx context.Context, threadID, head string, snapshot []byte) (string, error) {
	if head == "" {
		return s.PutIfEmpty(ctx, threadID, snapshot)
	}
	return s.PutAfter(ctx, threadID, head, snapshot)
}
