package genkit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "github.com/lib/pq"              // driver "postgres"
	"github.com/ziroagent/pgcheckpoint"
)

// dsnEnv names the PostgreSQL server the tests use. Without it the tests that need the server skip,
// except when CI is set: there they fail, because what CI must run may not silently skip.
const dsnEnv = "PGCHECKPOINT_TEST_DSN"

func testDSN(t testing.TB) string {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, and CI is: the PostgreSQL tests must run", dsnEnv)
		}
		t.Skipf("%s is not set: no PostgreSQL to test against (this fails when CI is set)", dsnEnv)
	}
	return dsn
}

// drivers are the two database/sql drivers the adapter is tested with.
var drivers = []string{"pgx", "postgres"}

// openDB opens a bounded pool on the test server with the named driver.
func openDB(t testing.TB, driver string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

// newSchemaName returns a fresh schema name and drops that schema when the test ends.
func newSchemaName(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "genkit_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openCheckpointer returns a Checkpointer on the given schema, creating the table.
func openCheckpointer(t testing.TB, db *sql.DB, schema string) *pgcheckpoint.Checkpointer {
	t.Helper()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cp
}

// newCheckpointer returns a Checkpointer on a schema of its own.
func newCheckpointer(t testing.TB, driver string) (*pgcheckpoint.Checkpointer, *sql.DB, string) {
	t.Helper()
	db := openDB(t, driver)
	schema := newSchemaName(t, db)
	return openCheckpointer(t, db, schema), db, schema
}
