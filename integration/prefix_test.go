package integration

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// Seeded for the prefix plan test: 10,000 threads of 100 checkpoints, 1,000,000 rows, spread over 100
// tenants ("tenant-<n>/<hash>").
const (
	prefixPlanThreads   = 10000
	prefixPlanPerThread = 100
)

// TestPrefixPlans seeds 1,000,000 checkpoints in a table of the test's own and asserts that every
// statement of a prefixed Threads and Prune, of both dialects, reads the table through its primary key
// (custom and generic plans), never by a sequential scan.
func TestPrefixPlans(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	schema := newSchema(t, db)
	tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
	table := `"` + schema + `"."ziro_checkpoints"`
	ctx := testCtx(t)
	start := time.Now()
	_, err := db.ExecContext(ctx, `INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq)
SELECT 'tenant-' || (th % 100) || '/' || md5(th::text),
       '01900000-0000-7000-8000-' || lpad(to_hex(s), 12, '0'),
       '{"version": 2}', 2, 14, now() - interval '1 hour', s
FROM generate_series(1, $1::int) AS th, generate_series(1, $2::int) AS s`, prefixPlanThreads, prefixPlanPerThread)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE `+table); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&rows); err != nil || rows != prefixPlanThreads*prefixPlanPerThread {
		t.Fatalf("seeded %d rows (%v), want %d", rows, err, prefixPlanThreads*prefixPlanPerThread)
	}
	t.Logf("seeded %d rows in %s", rows, time.Since(start).Round(time.Millisecond))

	// A prefix's bounds, as prefixEnd computes them ("tenant-42/" ends before "tenant-420"), and a batch
	// of its threads for the prune statements.
	const prefix, end = "tenant-42/", "tenant-420"
	var first, last string
	if err := db.QueryRowContext(ctx, `SELECT min(thread_id), max(thread_id) FROM (SELECT DISTINCT thread_id FROM `+table+`
WHERE thread_id >= $1 AND thread_id < $2 ORDER BY thread_id LIMIT 100) AS b`, prefix, end).Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-24 * time.Hour)
	newest := fmt.Sprintf("01900000-0000-7000-8000-%012x", prefixPlanPerThread)
	for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
		stmts, err := pgcheckpoint.Statements(d, schema, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []any
		}{
			{"threadsPrefix", []any{"", 100, prefix, end}},
			{"threadsPrefix", []any{first, 10, prefix, end}},
			{"pruneThreadsPrefix", []any{"", 100, prefix, end}},
			{"pruneLockPrefix", []any{first, last}},
			{"pruneOlderPrefix", []any{`[["` + first + `","` + newest + `"],["` + last + `","` + newest + `"]]`, first, last, cutoff}},
			{"pruneRunPrefix", []any{first, last, cutoff}},
		} {
			for _, mode := range []string{"custom", "generic"} {
				problem, summary := indexProblem(explain(t, db, mode, call{query: stmts[c.name], args: c.args}))
				if problem != "" {
					t.Errorf("%s %s %s plan %s:\n%s\nnodes: %s", d.Name(), c.name, mode, problem, stmts[c.name], summary)
				}
				t.Logf("%s %s %s plan: %s", d.Name(), c.name, mode, summary)
			}
		}
	}

	// And the listing itself on the million rows: every thread of the tenant, nothing else.
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cp.Threads(ctx, pgcheckpoint.ThreadsOptions{Prefix: prefix, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != prefixPlanThreads/100 {
		t.Errorf("Threads with prefix %q: %d threads, want %d", prefix, len(got), prefixPlanThreads/100)
	}
	for _, ti := range got {
		if !strings.HasPrefix(ti.ThreadID, prefix) || ti.Checkpoints != prefixPlanPerThread {
			t.Errorf("Threads with prefix %q returned %+v", prefix, ti)
		}
	}
}

// TestPrunePrefix: a prune with a prefix deletes the old checkpoints of the threads with the prefix
// only, keeping each one's newest, for every driver and dialect.
func TestPrunePrefix(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
			table := `"` + schema + `"."ziro_checkpoints"`
			prunePrefixCase(t, db, cp, table)
		})
	}
}

// TestPrunePrefixCollation runs the prefixed listing and prune on a table whose thread_id has a
// linguistic collation, as a table the TypeScript package created on an en_US database has. In
// en-x-icu "T/b" sorts between "t/B" and "t/c", so a range from the first to the last thread of
// prefix "t/" in the column's collation would hold it; the prefix statements compare in byte order.
func TestPrunePrefixCollation(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		if tg.dialect != pgcheckpoint.PostgreSQL {
			continue // CockroachDB compares uncollated strings bytewise: no such table there
		}
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
			table := `"` + schema + `"."ziro_checkpoints"`
			if _, err := db.ExecContext(testCtx(t), `ALTER TABLE `+table+` ALTER COLUMN thread_id TYPE TEXT COLLATE "en-x-icu"`); err != nil {
				t.Fatalf("collation: %v", err)
			}
			var between bool
			if err := db.QueryRowContext(testCtx(t), `SELECT 't/B' < 'T/b' COLLATE "en-x-icu" AND 'T/b' < 't/c' COLLATE "en-x-icu"`).Scan(&between); err != nil || !between {
				t.Fatalf("the test needs T/b between t/B and t/c in en-x-icu (%v)", err)
			}
			prunePrefixCase(t, db, cp, table)
		})
	}
}

// prunePrefixCase puts two checkpoints into each thread, ages them, and prunes prefix "t/".
func prunePrefixCase(t *testing.T, db *sql.DB, cp *pgcheckpoint.Checkpointer, table string) {
	t.Helper()
	ctx := testCtx(t)
	threads := []string{"t/a", "t/B", "T/b", "t/c", "t", "t0", "u/a", "t%/x", "t_/x"}
	newest := map[string]string{}
	for _, th := range threads {
		for range 2 {
			id, err := cp.Put(ctx, th, []byte(`{"version": 2}`))
			if err != nil {
				t.Fatal(err)
			}
			newest[th] = id
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE `+table+` SET created_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	list, err := cp.Threads(ctx, pgcheckpoint.ThreadsOptions{Prefix: "t/", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ti := range list {
		got = append(got, ti.ThreadID)
	}
	if want := []string{"t/B", "t/a", "t/c"}; !slices.Equal(got, want) {
		t.Errorf("Threads with prefix t/ = %q, want %q (byte order)", got, want)
	}
	res, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Hour, Prefix: "t/", BatchThreads: 2})
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if res.Deleted != 3 || res.Threads != 3 {
		t.Errorf("Prune with prefix t/ deleted %d checkpoints in %d threads, want 3 in 3", res.Deleted, res.Threads)
	}
	for _, th := range threads {
		want := 2
		if strings.HasPrefix(th, "t/") {
			want = 1
		}
		if n := count(t, db, table, th); n != want {
			t.Errorf("thread %q holds %d checkpoints after the prune, want %d", th, n, want)
		}
		if cpt, err := cp.Latest(ctx, th); err != nil || cpt.ID != newest[th] {
			t.Errorf("thread %q: newest %s (%v), want %s", th, cpt.ID, err, newest[th])
		}
	}
	if _, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Hour, Prefix: "bad\xff"}); err == nil {
		t.Error("Prune with an invalid prefix: no error")
	}
}
