package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// convertRow is one checkpoint as a full table (or a delta table's view) holds it: the snapshot as
// JSONB prints it, which is equal for equal JSONB values.
type convertRow struct {
	thread, id, snapshot string
	version, size        int32
	created              time.Time
	seq                  sql.NullInt64
}

// dumpTable reads every row of a full table or a delta table's view, in thread and id order.
func dumpTable(t testing.TB, db *sql.DB, schema, table string) []convertRow {
	t.Helper()
	rows, err := db.QueryContext(testCtx(t), `SELECT thread_id, checkpoint_id, snapshot::text, version, size_bytes, created_at, seq FROM "`+
		schema+`"."`+table+`" ORDER BY thread_id, checkpoint_id`)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	var out []convertRow
	for rows.Next() {
		var r convertRow
		if err := rows.Scan(&r.thread, &r.id, &r.snapshot, &r.version, &r.size, &r.created, &r.seq); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRows compares two dumps: every checkpoint, its id, created_at, version, size, snapshot and seq.
func sameRows(t testing.TB, what string, got, want []convertRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.thread != w.thread || g.id != w.id || g.snapshot != w.snapshot || g.version != w.version ||
			g.size != w.size || !g.created.Equal(w.created) || g.seq != w.seq {
			t.Fatalf("%s: row %d\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

// numbered is the dump as a conversion leaves it: the threads with unnumbered rows (the TypeScript
// package's) numbered base+1, base+2, ... in id order, base the thread's greatest number.
func numbered(rows []convertRow) []convertRow {
	out := append([]convertRow(nil), rows...)
	for i := 0; i < len(out); {
		j, all, base := i, true, int64(0)
		for ; j < len(out) && out[j].thread == out[i].thread; j++ {
			all = all && out[j].seq.Valid
			if out[j].seq.Valid {
				base = max(base, out[j].seq.Int64)
			}
		}
		if !all {
			for k := i; k < j; k++ {
				out[k].seq = sql.NullInt64{Int64: base + int64(k-i) + 1, Valid: true}
			}
		}
		i = j
	}
	return out
}

// fillConvertSource writes the threads a conversion must carry over exactly into the full table src: an
// append-only conversation, rewritten histories (an edited message, a compaction, arrays that shrink,
// vanish, change type, come back), a trimmed thread (numbers not starting at 1), TypeScript rows
// (seq NULL, written with SQL as the TypeScript package writes them) and many small threads (several
// batches).
func fillConvertSource(t testing.TB, db *sql.DB, tg target, schema string) {
	t.Helper()
	ctx := testCtx(t)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "src", MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	put := func(thread, doc string) {
		t.Helper()
		if _, err := cp.Put(ctx, thread, []byte(doc)); err != nil {
			t.Fatalf("put %s %s: %v", thread, doc, err)
		}
	}
	var msgs []string
	for i := range 30 {
		msgs = append(msgs, fmt.Sprintf(`{"role": "user", "text": "message %d"}`, i))
		put("grow", fmt.Sprintf(`{"version": 2, "step": %d, "messages": [%s], "steps": [%d]}`, i, strings.Join(msgs, ","), i))
	}
	for _, doc := range []string{
		`{"version": 1, "messages": [1, 2, 3, 4], "tags": ["a"]}`,
		`{"version": 1, "messages": [1, 2, 3, 4, 5], "tags": []}`,
		`{"version": 1, "messages": [1, 20, 3, 4, 5, 6], "tags": ["b", "c"]}`,   // an edited element
		`{"version": 1, "messages": [{"summary": "1..6"}], "tags": ["b", "c"]}`, // a compaction
		`{"version": 1, "messages": [{"summary": "1..6"}, 7], "tags": "none"}`,  // a key that is no longer an array
		`{"version": 1, "messages": [{"summary": "1..6"}, 7, [8, [9]]]}`,        // a key that vanished
		`{"version": 1, "messages": [], "tags": ["back"], "n": 1.50, "s": "x"}`, // an array emptied; numbers as JSONB keeps them
		`{"version": 1, "messages": [{"summary": "1..6"}], "tags": ["back", {"deep": [1, 2]}]}`,
		`{"version": 3}`,
		`{"version": 3, "messages": [1, 2, 3]}`,
	} {
		put("rewrite", doc)
	}
	if err := cp.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: 5}); err != nil {
		t.Fatal(err)
	}
	trimmer, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "src"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := trimmer.Put(ctx, "trimmed", []byte(fmt.Sprintf(`{"version": 2, "log": [%s]}`, strings.Repeat("1,", i)+"0"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit}); err != nil {
		t.Fatal(err)
	}
	// TypeScript rows: no seq, created_at apart, ids in order.
	base := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i := range 4 {
		id := fmt.Sprintf("0190a000-0000-7000-8000-%012x", i+1)
		doc := fmt.Sprintf(`{"version": 2, "messages": [%s]}`, strings.TrimSuffix(strings.Repeat(`"m",`, i+1), ","))
		if _, err := db.ExecContext(ctx, `INSERT INTO "`+schema+`"."src" (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at)
VALUES ($1, $2, $3::text::jsonb, 2, $4, $5)`, "ts-thread", id, doc, len(doc), base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 17 {
		for j := range 3 {
			put(fmt.Sprintf("small-%02d", i), fmt.Sprintf(`{"version": 2, "messages": [%s], "i": %d}`, strings.Repeat(`"x",`, j)+`"y"`, i))
		}
	}
}

// TestConvertRoundTrip converts a full table to delta and back, on both drivers and dialects: the delta
// table answers every read as the full one did (Get of each checkpoint, List, Latest), and the full
// table converted back equals the original row for row (ids, created_at, version, size, snapshot, seq;
// the TypeScript package's unnumbered rows come back numbered, as a Go put numbers them).
func TestConvertRoundTrip(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			ctx := testCtx(t)
			fillConvertSource(t, db, tg, schema)
			orig := dumpTable(t, db, schema, "src")

			var heard []pgcheckpoint.ConvertProgress
			p, err := pgcheckpoint.Convert(ctx, db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: "src", To: "mid",
				ToStorage: pgcheckpoint.StorageDelta, BatchThreads: 4, Progress: func(p pgcheckpoint.ConvertProgress) { heard = append(heard, p) }})
			if err != nil {
				t.Fatalf("convert to delta: %v", err)
			}
			if p.Threads != 21 || p.Checkpoints != int64(len(orig)) || len(heard) != 6 || heard[len(heard)-1].LastThread != "ts-thread" {
				t.Fatalf("convert to delta: %+v after %d progress reports (%+v), want 21 threads, %d checkpoints, 6 reports", p, len(heard), heard, len(orig))
			}
			want := numbered(orig)
			sameRows(t, "the delta table's view", dumpTable(t, db, schema, "mid"), want)

			full, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "src"})
			if err != nil {
				t.Fatal(err)
			}
			dl, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "mid", Storage: pgcheckpoint.StorageDelta})
			if err != nil {
				t.Fatal(err)
			}
			if r, err := dl.Retention(ctx); err != nil || r.MaxCheckpointsPerThread != pgcheckpoint.NoLimit {
				t.Fatalf("the delta table's policy: %v, %v; want the source's (NoLimit)", r, err)
			}
			sameReads(t, db, full, dl, orig)

			p, err = pgcheckpoint.Convert(ctx, db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: "mid", To: "back",
				ToStorage: pgcheckpoint.StorageFull, BatchThreads: 5})
			if err != nil {
				t.Fatalf("convert back to full: %v", err)
			}
			if p.Threads != 21 || p.Checkpoints != int64(len(orig)) {
				t.Fatalf("convert back: %+v", p)
			}
			sameRows(t, "the full table converted back", dumpTable(t, db, schema, "back"), want)

			// The delta table takes puts where each thread left off (its planning state is rebuilt
			// from the converted heads).
			id, err := dl.Put(ctx, "grow", []byte(`{"version": 2, "messages": [1]}`))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := dl.Latest(ctx, "grow"); err != nil || got.ID != id || string(got.Snapshot) != `{"version": 2, "messages": [1]}` {
				t.Fatalf("put after the conversion: %+v, %v", got, err)
			}
		})
	}
}

// sameReads checks that b answers every read of the checkpoints in rows as a does: Latest and List of
// each thread, and Get of each checkpoint (snapshots compared as JSONB, by the server).
func sameReads(t *testing.T, db *sql.DB, a, b *pgcheckpoint.Checkpointer, rows []convertRow) {
	t.Helper()
	ctx := testCtx(t)
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.thread] {
			seen[r.thread] = true
			la, err1 := a.Latest(ctx, r.thread)
			lb, err2 := b.Latest(ctx, r.thread)
			if err1 != nil || err2 != nil || la.ID != lb.ID || !la.CreatedAt.Equal(lb.CreatedAt) || !jsonbEqual(t, ctx, db, la.Snapshot, lb.Snapshot) {
				t.Fatalf("Latest(%s): %+v, %v; want %+v, %v", r.thread, lb, err2, la, err1)
			}
			ma, err1 := a.List(ctx, r.thread, pgcheckpoint.ListOptions{Limit: -1})
			mb, err2 := b.List(ctx, r.thread, pgcheckpoint.ListOptions{Limit: -1})
			if err1 != nil || err2 != nil || len(ma) != len(mb) {
				t.Fatalf("List(%s): %d, %v; want %d, %v", r.thread, len(mb), err2, len(ma), err1)
			}
			for i := range ma {
				if ma[i].ID != mb[i].ID || !ma[i].CreatedAt.Equal(mb[i].CreatedAt) || ma[i].Version != mb[i].Version || ma[i].SizeBytes != mb[i].SizeBytes {
					t.Fatalf("List(%s)[%d] = %+v, want %+v", r.thread, i, mb[i], ma[i])
				}
			}
		}
		g, err := b.Get(ctx, r.thread, r.id)
		if err != nil || !g.CreatedAt.Equal(r.created) || g.Version != r.version || !jsonbEqual(t, ctx, db, g.Snapshot, []byte(r.snapshot)) {
			t.Fatalf("Get(%s, %s) = %s, %v; want %s", r.thread, r.id, g.Snapshot, err, r.snapshot)
		}
	}
}

// TestConvertRefuses: a target with checkpoints (ErrTableNotEmpty), a target or source of the wrong
// layout (ErrStorageMismatch), a missing source (ErrSchemaMissing) and a Resume into another
// conversion's table are refused, and write nothing.
func TestConvertRefuses(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			ctx := testCtx(t)
			full := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "full"})
			if _, err := full.Put(ctx, "t", []byte(`{"messages": [1]}`)); err != nil {
				t.Fatal(err)
			}
			dl := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "dl", Storage: pgcheckpoint.StorageDelta})
			if _, err := dl.Put(ctx, "other", []byte(`{"messages": [2]}`)); err != nil {
				t.Fatal(err)
			}
			empty := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "empty_full"})
			_ = empty
			opts := func(from, to string, s pgcheckpoint.Storage, resume bool) pgcheckpoint.ConvertOptions {
				return pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: from, To: to, ToStorage: s, Resume: resume}
			}
			for _, c := range []struct {
				name string
				o    pgcheckpoint.ConvertOptions
				want error
			}{
				{"into a delta table with checkpoints", opts("full", "dl", pgcheckpoint.StorageDelta, false), pgcheckpoint.ErrTableNotEmpty},
				{"resume into another conversion's delta table", opts("full", "dl", pgcheckpoint.StorageDelta, true), pgcheckpoint.ErrTableNotEmpty},
				{"into a full table with checkpoints", opts("dl", "full", pgcheckpoint.StorageFull, false), pgcheckpoint.ErrTableNotEmpty},
				{"into a full table as delta", opts("full", "empty_full", pgcheckpoint.StorageDelta, false), pgcheckpoint.ErrStorageMismatch},
				{"from a delta table to delta", opts("dl", "new", pgcheckpoint.StorageDelta, false), pgcheckpoint.ErrStorageMismatch},
				{"from a full table to full", opts("full", "new", pgcheckpoint.StorageFull, false), pgcheckpoint.ErrStorageMismatch},
				{"from nothing", opts("nothing", "new", pgcheckpoint.StorageDelta, false), pgcheckpoint.ErrSchemaMissing},
				{"into itself", opts("full", "full", pgcheckpoint.StorageDelta, false), pgcheckpoint.ErrInvalidOptions},
			} {
				_, err := pgcheckpoint.Convert(ctx, db, c.o)
				var e *pgcheckpoint.Error
				if !errors.Is(err, c.want) || !errors.As(err, &e) || e.Op != pgcheckpoint.OpConvert {
					t.Errorf("%s: %v, want %v from OpConvert", c.name, err, c.want)
				}
			}
			if got := dumpTable(t, db, schema, "dl"); len(got) != 1 || got[0].thread != "other" {
				t.Errorf("the refused conversions wrote into dl: %+v", got)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'new%'`, schema).Scan(&n); err != nil || n != 0 {
				t.Errorf("a refused conversion created its target: %d tables, %v", n, err)
			}
		})
	}
}

// TestConvertResume interrupts a conversion (its context is cancelled after the second batch), then
// runs it again with Resume: the target holds whole threads after the interruption, and exactly the
// source after the rerun; both directions.
func TestConvertResume(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			fillConvertSource(t, db, tg, schema)
			want := numbered(dumpTable(t, db, schema, "src"))
			for _, step := range []struct {
				from, to string
				s        pgcheckpoint.Storage
			}{{"src", "mid", pgcheckpoint.StorageDelta}, {"mid", "back", pgcheckpoint.StorageFull}} {
				ctx, cancel := context.WithCancel(testCtx(t))
				batches := 0
				o := pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: step.from, To: step.to, ToStorage: step.s, BatchThreads: 3,
					Progress: func(pgcheckpoint.ConvertProgress) {
						if batches++; batches == 2 {
							cancel()
						}
					}}
				p, err := pgcheckpoint.Convert(ctx, db, o)
				cancel()
				if !errors.Is(err, context.Canceled) || p.Threads != 6 {
					t.Fatalf("%s: interrupted run: %+v, %v; want 6 threads and context.Canceled", step.to, p, err)
				}
				part := dumpTable(t, db, schema, step.to)
				threads := map[string]bool{}
				for _, r := range part {
					threads[r.thread] = true
				}
				if len(threads) != 6 {
					t.Fatalf("%s after the interruption: %d threads, want 6", step.to, len(threads))
				}
				sameRows(t, step.to+" after the interruption", part, want[:len(part)])
				if _, err := pgcheckpoint.Convert(testCtx(t), db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema,
					From: step.from, To: step.to, ToStorage: step.s}); !errors.Is(err, pgcheckpoint.ErrTableNotEmpty) {
					t.Fatalf("%s: rerun without Resume: %v, want ErrTableNotEmpty", step.to, err)
				}
				o.Progress, o.Resume = nil, true
				p, err = pgcheckpoint.Convert(testCtx(t), db, o)
				if err != nil || p.Threads != 15 {
					t.Fatalf("%s: resumed run: %+v, %v; want the 15 threads left", step.to, p, err)
				}
				sameRows(t, step.to+" after the resumed run", dumpTable(t, db, schema, step.to), want)
			}
		})
	}
}

// convertRowsEnv sets the size of TestConvertScale: PGCHECKPOINT_CONVERT_ROWS=1000000 converts 10,000
// threads of 100 checkpoints (docs/storage.md, "Converting"); by default 2,000 rows (20 threads).
const convertRowsEnv = "PGCHECKPOINT_CONVERT_ROWS"

// TestConvertScale generates a full table on the server (threads of 100 checkpoints of a conversation
// that grows by one message a step), converts it to delta and back, and checks the result row for row
// on the server. It logs the times, the rates and the tables' sizes.
func TestConvertScale(t *testing.T) {
	rows := 2000
	if v := os.Getenv(convertRowsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("%s=%q: want a number of rows, at least 100", convertRowsEnv, v)
		}
		rows = n
	}
	const steps = 100
	threads := rows / steps
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	schema := newSchema(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "src", MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	q := func(s string) string { return strings.ReplaceAll(s, "{S}", `"`+schema+`"`) }
	start := time.Now()
	if _, err := db.ExecContext(ctx, q(`INSERT INTO {S}.src (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq)
SELECT 'thread-' || lpad(th::text, 6, '0'),
       lpad(to_hex(s), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(th), 12, '0'),
       d.doc, 2, octet_length(d.doc::text), timestamptz '2026-01-01' + th * interval '1 hour' + s * interval '1 second', s
FROM generate_series(1, $1::int) AS th, generate_series(1, $2::int) AS s,
LATERAL (SELECT jsonb_build_object('version', 2, 'step', s, 'messages',
    (SELECT jsonb_agg(jsonb_build_object('r', CASE WHEN m % 2 = 0 THEN 'a' ELSE 'u' END, 't', 'message ' || m)) FROM generate_series(1, s) AS m)) AS doc) AS d`),
		threads, steps); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d rows in %v", threads*steps, time.Since(start).Round(time.Millisecond))
	if _, err := db.ExecContext(ctx, q(`ANALYZE {S}.src`)); err != nil {
		t.Fatal(err)
	}
	size := func(tables ...string) string {
		var total int64
		for _, tb := range tables {
			var n int64
			if err := db.QueryRowContext(ctx, `SELECT pg_total_relation_size($1::regclass)`, `"`+schema+`".`+tb).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return fmt.Sprintf("%.1f MB", float64(total)/1e6)
	}
	t.Logf("full table: %s", size("src"))
	for _, step := range []struct {
		from, to string
		s        pgcheckpoint.Storage
		tables   []string
	}{{"src", "mid", pgcheckpoint.StorageDelta, []string{"mid_heads", "mid_items"}}, {"mid", "back", pgcheckpoint.StorageFull, []string{"back"}}} {
		p, err := pgcheckpoint.Convert(ctx, db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: step.from, To: step.to, ToStorage: step.s})
		if err != nil {
			t.Fatalf("convert %s to %s: %v", step.from, step.to, err)
		}
		if p.Checkpoints != int64(threads*steps) || p.Threads != int64(threads) {
			t.Fatalf("convert %s to %s: %+v", step.from, step.to, p)
		}
		t.Logf("%s -> %s (%s): %d threads, %d checkpoints, %d items in %v: %.0f rows/s; %s",
			step.from, step.to, step.s, p.Threads, p.Checkpoints, p.Items, p.Elapsed.Round(time.Millisecond),
			float64(p.Checkpoints)/p.Elapsed.Seconds(), size(step.tables...))
	}
	var same, total int64
	if err := db.QueryRowContext(ctx, q(`SELECT count(*) FILTER (WHERE s.snapshot = b.snapshot AND s.created_at = b.created_at AND s.seq = b.seq
    AND s.version = b.version AND s.size_bytes = b.size_bytes), count(*)
FROM {S}.src AS s LEFT JOIN {S}.back AS b USING (thread_id, checkpoint_id)`)).Scan(&same, &total); err != nil {
		t.Fatal(err)
	}
	var backRows int64
	if err := db.QueryRowContext(ctx, q(`SELECT count(*) FROM {S}.back`)).Scan(&backRows); err != nil {
		t.Fatal(err)
	}
	if same != total || backRows != total || total != int64(threads*steps) {
		t.Fatalf("round trip: %d of %d rows equal, %d rows back", same, total, backRows)
	}
}

// swapToDeltaSQL is docs/storage.md's recipe (Converting) for putting a converted delta table in the
// place of the full table it was converted from: the names swapped in one transaction.
const swapToDeltaSQL = `BEGIN;
ALTER TABLE agent_state RENAME TO agent_state_old;
ALTER TABLE agent_state_policy RENAME TO agent_state_old_policy;
ALTER TABLE agent_state_delta_heads RENAME TO agent_state_heads;
ALTER TABLE agent_state_delta_items RENAME TO agent_state_items;
ALTER INDEX agent_state_delta_heads_thread_seq_key RENAME TO agent_state_heads_thread_seq_key;
ALTER VIEW agent_state_delta RENAME TO agent_state;
ALTER TABLE agent_state_delta_policy RENAME TO agent_state_policy;
COMMIT;`

// TestConvertSwap converts a full table, swaps the names as docs/storage.md says, and uses the result
// under the old name as a delta table: EnsureSchema finds it complete, reads and puts work.
func TestConvertSwap(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	ctx := testCtx(t)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	schema := newSchema(t, db)
	if _, err := conn.ExecContext(ctx, `SET search_path TO "`+schema+`"`); err != nil {
		t.Fatal(err)
	}
	full := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "agent_state", MaxCheckpointsPerThread: 50})
	id, err := full.Put(ctx, "t", []byte(`{"version": 2, "messages": ["a", "b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgcheckpoint.Convert(ctx, db, pgcheckpoint.ConvertOptions{Schema: schema, From: "agent_state", To: "agent_state_delta", ToStorage: pgcheckpoint.StorageDelta}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, swapToDeltaSQL); err != nil {
		t.Fatalf("the swap: %v", err)
	}
	dl, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema, Table: "agent_state", Storage: pgcheckpoint.StorageDelta})
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.EnsureSchema(ctx); err != nil {
		t.Fatalf("EnsureSchema after the swap: %v", err)
	}
	if r, err := dl.Retention(ctx); err != nil || r.MaxCheckpointsPerThread != 50 {
		t.Fatalf("retention after the swap: %v, %v", r, err)
	}
	if got, err := dl.Latest(ctx, "t"); err != nil || got.ID != id {
		t.Fatalf("Latest after the swap: %+v, %v", got, err)
	}
	next, err := dl.PutAfter(ctx, "t", id, []byte(`{"version": 2, "messages": ["a", "b", "c"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dl.Get(ctx, "t", next); err != nil || string(got.Snapshot) != `{"version": 2, "messages": ["a", "b", "c"]}` {
		t.Fatalf("Get after the swap: %s, %v", got.Snapshot, err)
	}
	var items int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+schema+`".agent_state_items`).Scan(&items); err != nil || items != 3 {
		t.Fatalf("items after a put on the swapped table: %d, %v", items, err)
	}
}
