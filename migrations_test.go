package pgcheckpoint_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

var updateMigrations = flag.Bool("update-migrations", false, "rewrite migrations/ from pgcheckpoint.SchemaSQL")

const migrationHeader = `-- Generated from pgcheckpoint.SchemaSQL (PostgreSQL, table ziro_checkpoints) by TestMigrationFiles: do not
-- edit. Names are not schema-qualified: the table lands in the first schema of search_path (public by
-- default), which Options.Schema must name. Other names: pgcheckpoint migrate --print --schema S --table T.
-- Idempotent: also upgrades a table created by @ziro-agent/checkpoint-postgres (adds seq and its index).
`

// migrationFiles returns the committed migration files as SchemaSQL produces them, by path.
func migrationFiles(t *testing.T) map[string]string {
	t.Helper()
	up, err := pgcheckpoint.SchemaSQL(pgcheckpoint.PostgreSQL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// Migration tools choose the schema (search_path, their own settings): drop the qualification.
	createSchema := `CREATE SCHEMA IF NOT EXISTS "public";` + "\n\n"
	if !strings.HasPrefix(up, createSchema) {
		t.Fatalf("SchemaSQL no longer starts with %q: adapt migrationFiles", createSchema)
	}
	up = strings.ReplaceAll(strings.TrimPrefix(up, createSchema), `"public".`, "")
	if strings.Contains(up, "public") {
		t.Fatalf("SchemaSQL names the schema in a way migrationFiles does not remove:\n%s", up)
	}
	down := `DROP TABLE IF EXISTS "ziro_checkpoints";` + "\n"
	downHeader := strings.Replace(migrationHeader, "-- Idempotent: also upgrades a table created by @ziro-agent/checkpoint-postgres (adds seq and its index).\n",
		"-- Drops the table and every checkpoint in it.\n", 1)
	return map[string]string{
		"migrations/golang-migrate/000001_create_ziro_checkpoints.up.sql":   migrationHeader + "\n" + up,
		"migrations/golang-migrate/000001_create_ziro_checkpoints.down.sql": downHeader + "\n" + down,
		// goose splits statements at semicolons unless told otherwise; the DO block has some inside, so
		// the whole Up runs as one statement (PostgreSQL's simple protocol takes several at once).
		"migrations/goose/00001_create_ziro_checkpoints.sql": migrationHeader + "\n-- +goose Up\n-- +goose StatementBegin\n" + up +
			"-- +goose StatementEnd\n\n-- +goose Down\n" + down,
	}
}

// TestMigrationFiles fails when the migration files differ from what SchemaSQL gives, so they never
// drift from EnsureSchema. Rewrite them with: go test -run TestMigrationFiles . -args -update-migrations
func TestMigrationFiles(t *testing.T) {
	t.Parallel()
	for path, want := range migrationFiles(t) {
		if *updateMigrations {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate with: go test -run TestMigrationFiles . -args -update-migrations)", err)
		}
		if string(got) != want {
			t.Errorf("%s differs from pgcheckpoint.SchemaSQL; regenerate with: go test -run TestMigrationFiles . -args -update-migrations\n got:\n%s\nwant:\n%s",
				path, got, want)
		}
	}
}
