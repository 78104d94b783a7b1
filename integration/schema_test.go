package integration

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// seedDDL is the table the TypeScript package's ensureCheckpointsSchema creates (its README, v0.3.15),
// including its second index, which duplicates the primary key.
const seedDDL = `CREATE TABLE IF NOT EXISTS %[1]s.ziro_checkpoints (
  thread_id TEXT NOT NULL,
  checkpoint_id TEXT NOT NULL,
  snapshot JSONB NOT NULL,
  version INTEGER NOT NULL,
  size_bytes INTEGER NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (thread_id, checkpoint_id)
);
CREATE INDEX IF NOT EXISTS ziro_checkpoints_thread_idx
  ON %[1]s.ziro_checkpoints (thread_id, checkpoint_id DESC)`

// TestQuotedIdentifiers runs the contract on a mixed-case schema and a table named by a reserved word,
// and on the longest table name whose derived index name still fits in 63 bytes.
func TestQuotedIdentifiers(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			for _, table := range []string{"select", "Check_Points", strings.Repeat("T", 63-len("_thread_seq_key"))} {
				t.Run(table, func(t *testing.T) {
					pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
						schema := "Mixed_" + newSchema(t, db)
						if _, err := db.ExecContext(testCtx(t), `CREATE SCHEMA "`+schema+`"`); err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { _, _ = db.Exec(`DROP SCHEMA "` + schema + `" CASCADE`) })
						opts.Schema, opts.Table = schema, table
						return tg.newCheckpointer(t, db, opts)
					})
				})
			}
		})
	}
}

// TestSeedTableUpgrade: a table created by the TypeScript package works after EnsureSchema (which adds
// the seq column and its index and leaves the rest alone), also for threads that already hold rows
// the TypeScript package wrote, and EnsureSchema stays idempotent.
func TestSeedTableUpgrade(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				schema := newSchema(t, db)
				if _, err := db.ExecContext(testCtx(t), fmt.Sprintf(seedDDL, `"`+schema+`"`)); err != nil {
					t.Fatal(err)
				}
				opts.Schema = schema
				cp := tg.newCheckpointer(t, db, opts)
				if err := cp.EnsureSchema(testCtx(t)); err != nil {
					t.Fatalf("second EnsureSchema: %v", err)
				}
				return cp
			})

			// Rows written without seq (as the TypeScript package writes them) followed by Go puts.
			schema := newSchema(t, db)
			if _, err := db.ExecContext(testCtx(t), fmt.Sprintf(seedDDL, `"`+schema+`"`)); err != nil {
				t.Fatal(err)
			}
			table := `"` + schema + `".ziro_checkpoints`
			tsPut := func(id string) {
				t.Helper()
				if _, err := db.ExecContext(testCtx(t), `INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes)
VALUES ('mixed', $1, '{"by": "ts"}', 2, 12)`, id); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 6 {
				tsPut(fmt.Sprintf("01900000-0000-7000-8000-00000000000%d", i))
			}
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 4})
			var goIDs []string
			for i := range 3 {
				id, err := cp.Put(testCtx(t), "mixed", []byte(fmt.Sprintf(`{"by": "go", "i": %d}`, i)))
				if err != nil {
					t.Fatalf("Go put after TypeScript rows: %v", err)
				}
				goIDs = append(goIDs, id)
				if n := count(t, db, table, "mixed"); n != 4 {
					t.Fatalf("after Go put %d the thread holds %d rows, want the cap 4", i, n)
				}
			}
			// A TypeScript row on top (newest, no seq), then a Go put: still newest last, still the cap.
			tsPut("01ffffff-0000-7000-8000-000000000000")
			last, err := cp.Put(testCtx(t), "mixed", []byte(`{"by": "go", "i": 3}`))
			if err != nil {
				t.Fatal(err)
			}
			list, err := cp.List(testCtx(t), "mixed", pgcheckpoint.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, c := range list {
				got = append(got, c.ID)
			}
			want := []string{last, "01ffffff-0000-7000-8000-000000000000", goIDs[2], goIDs[1]}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("thread after mixed writers = %v, want %v", got, want)
			}
			assertDenseSeq(t, db, table, "mixed")
		})
	}
}

// assertDenseSeq checks the invariant retention relies on: the thread's seq values are consecutive and
// follow id order.
func assertDenseSeq(t *testing.T, db *sql.DB, table, thread string) {
	t.Helper()
	var bad int
	err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM (
  SELECT seq - lag(seq) OVER (ORDER BY checkpoint_id) AS step FROM `+table+` WHERE thread_id = $1) s
WHERE step IS DISTINCT FROM 1 AND step IS NOT NULL`, thread).Scan(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("thread %q: %d rows break the dense seq numbering", thread, bad)
	}
}
