package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// Retention by bytes (issue 15): Retention.MaxBytesPerThread. After a put returns, the thread keeps its
// newest checkpoints whose size_bytes sum to at most the budget, always at least the newest, and at
// most the cap when there is one too; the trim finds its boundary through the rows' running totals
// (total_bytes) in O(rows trimmed).

// bytesEnv is one target and storage with its Checkpointer and the table that holds its rows (the heads
// table of a delta table).
type bytesEnv struct {
	name   string
	tg     target
	db     *sql.DB
	cp     *pgcheckpoint.Checkpointer
	rows   string // quoted table with thread_id, seq, size_bytes, total_bytes
	schema string
	delta  bool
}

// bytesEnvs runs fn for every driver x dialect x storage with a fresh table whose policy is cap (NoLimit:
// none) and budget bytes.
func bytesEnvs(t *testing.T, cap int, budget int64, fn func(t *testing.T, e bytesEnv)) {
	for _, tg := range postgresTargets(t) {
		for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
			t.Run(tg.name+"/"+storage.String(), func(t *testing.T) {
				fn(t, newBytesEnv(t, tg, storage, cap, budget))
			})
		}
	}
}

func newBytesEnv(t *testing.T, tg target, storage pgcheckpoint.Storage, cap int, budget int64) bytesEnv {
	t.Helper()
	db := tg.open(t)
	schema := newSchema(t, db)
	opts := pgcheckpoint.Options{Schema: schema, Storage: storage, MaxCheckpointsPerThread: cap, MaxBytesPerThread: budget}
	e := bytesEnv{name: tg.name, tg: tg, db: db, cp: tg.newCheckpointer(t, db, opts), rows: tableIn(schema),
		schema: schema, delta: storage == pgcheckpoint.StorageDelta}
	if e.delta {
		e.rows = `"` + schema + `"."` + pgcheckpoint.DefaultTable + `_heads"`
	}
	return e
}

// sized is a snapshot of exactly n bytes (n >= 8) with a "messages" array, so that delta storage
// spills something.
func sized(n int) []byte {
	const frame = `{"messages":[""]}`
	if n < len(frame) {
		return []byte(`{"p":"` + strings.Repeat("x", n-8) + `"}`)
	}
	return []byte(`{"messages":["` + strings.Repeat("x", n-len(frame)) + `"]}`)
}

// put is one stored checkpoint: its id and size.
type put struct {
	id   string
	size int
}

// wantKept is how many of puts (oldest first) the policy keeps: the newest, at most cap (<= 0: no cap),
// whose sizes sum to at most budget (<= 0: no budget), at least one.
func wantKept(puts []put, cap int, budget int64) int {
	keep := len(puts)
	if cap > 0 {
		keep = min(keep, cap)
	}
	if budget <= 0 {
		return keep
	}
	var sum int64
	n := 0
	for i := len(puts) - 1; i >= 0 && n < keep; i-- {
		sum += int64(puts[i].size)
		if sum > budget && n > 0 {
			break
		}
		n++
	}
	return n
}

// checkRetained fails unless the thread holds exactly the newest puts the policy keeps (trimming puts
// to them) and its running totals are right.
func checkRetained(t *testing.T, e bytesEnv, thread string, puts *[]put, cap int, budget int64, when string) {
	t.Helper()
	all := *puts
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	keep := all[len(all)-wantKept(all, cap, budget):]
	var want []string
	for _, p := range keep {
		want = append(want, p.id)
	}
	if got := reversed(listIDs(t, e.cp, thread)); !slices.Equal(got, want) {
		t.Fatalf("%s: the thread holds %d checkpoints %v; want the newest %d (sizes %v, cap %d, budget %d): %v",
			when, len(got), got, len(want), sizesOf(all), cap, budget, want)
	}
	*puts = slices.Clone(keep)
	checkTotals(t, e, thread)
}

func sizesOf(ps []put) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.size
	}
	return out
}

// checkTotals fails unless the thread's rows are numbered densely and every row's total_bytes is the
// one before it plus its own size (the running total the byte budget trims by).
func checkTotals(t *testing.T, e bytesEnv, thread string) {
	t.Helper()
	rows, err := e.db.QueryContext(testCtx(t), `SELECT seq, size_bytes, total_bytes FROM `+e.rows+
		` WHERE thread_id = $1 ORDER BY checkpoint_id`, thread)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var prevSeq, prevTotal sql.NullInt64
	for i := 0; rows.Next(); i++ {
		var seq, total sql.NullInt64
		var size int64
		if err := rows.Scan(&seq, &size, &total); err != nil {
			t.Fatal(err)
		}
		switch {
		case !seq.Valid || !total.Valid:
			t.Fatalf("thread %q row %d: seq %v, total_bytes %v: want both set", thread, i, seq, total)
		case i > 0 && (seq.Int64 != prevSeq.Int64+1 || total.Int64 != prevTotal.Int64+size):
			t.Fatalf("thread %q row %d: seq %d total %d size %d after seq %d total %d: not a dense running total",
				thread, i, seq.Int64, total.Int64, size, prevSeq.Int64, prevTotal.Int64)
		}
		prevSeq, prevTotal = seq, total
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// bytesSizes is a fixed sequence of snapshot sizes around a budget of 1000: small ones that add up, one
// exactly the budget, some larger than the budget (only the newest is kept then), then small ones again.
var bytesSizes = []int{100, 300, 50, 600, 20, 999, 1000, 10, 1500, 10, 10, 400, 200, 2000, 300, 300, 300, 99, 8, 80, 700, 30}

// TestBytesRetentionExact: with a byte budget alone and with a cap as well, after every put of mixed
// sizes the thread holds exactly the newest checkpoints the policy keeps, on both drivers, both dialects
// and both storages, and in Memory.
func TestBytesRetentionExact(t *testing.T) {
	for _, c := range []struct {
		name   string
		cap    int
		budget int64
	}{{"budget", pgcheckpoint.NoLimit, 1000}, {"cap+budget", 3, 1000}, {"tiny budget", pgcheckpoint.NoLimit, 9}} {
		t.Run(c.name, func(t *testing.T) {
			bytesEnvs(t, c.cap, c.budget, func(t *testing.T, e bytesEnv) {
				ctx := testCtx(t)
				if r, err := e.cp.Retention(ctx); err != nil || r.MaxBytesPerThread != c.budget || r.MaxCheckpointsPerThread != c.cap {
					t.Fatalf("Retention: %+v, %v; want cap %d, budget %d", r, err, c.cap, c.budget)
				}
				var puts []put
				for i, n := range bytesSizes {
					id, err := e.cp.Put(ctx, "t", sized(n))
					if err != nil {
						t.Fatalf("put %d (%d bytes): %v", i, n, err)
					}
					puts = append(puts, put{id, n})
					checkRetained(t, e, "t", &puts, c.cap, c.budget, fmt.Sprintf("after put %d (%d bytes)", i, n))
				}
			})
		})
	}
	t.Run("memory", func(t *testing.T) {
		m := pgcheckpoint.NewMemory(pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: 1000})
		var puts []put
		for i, n := range bytesSizes {
			id, err := m.Put(testCtx(t), "t", sized(n))
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{id, n})
			sort.Slice(puts, func(i, j int) bool { return puts[i].id < puts[j].id })
			puts = puts[len(puts)-wantKept(puts, 0, 1000):]
			var want []string
			for _, p := range puts {
				want = append(want, p.id)
			}
			if got := reversed(listIDs(t, m, "t")); !slices.Equal(got, want) {
				t.Fatalf("Memory after put %d: %v, want %v", i, got, want)
			}
		}
	})
}

// TestBytesDeleteMiddle: deleting a checkpoint in the middle of a thread under a byte budget (Delete
// renumbers the thread and recomputes its totals) leaves the totals right: the following puts keep
// exactly what the budget allows, counting only the checkpoints still there.
func TestBytesDeleteMiddle(t *testing.T) {
	const budget = 1000
	bytesEnvs(t, pgcheckpoint.NoLimit, budget, func(t *testing.T, e bytesEnv) {
		ctx := testCtx(t)
		var puts []put
		step := func(n int) {
			t.Helper()
			id, err := e.cp.Put(ctx, "t", sized(n))
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{id, n})
			checkRetained(t, e, "t", &puts, 0, budget, fmt.Sprintf("after a put of %d bytes", n))
		}
		for _, n := range []int{100, 200, 300, 350} {
			step(n)
		}
		// The thread holds 950 bytes in 4 checkpoints; delete the 300-byte one.
		if err := e.cp.Delete(ctx, "t", puts[2].id); err != nil {
			t.Fatal(err)
		}
		puts = slices.Delete(puts, 2, 3)
		checkTotals(t, e, "t")
		// 650 bytes left: a 300-byte put fits with all of them (950); with stale totals (still counting
		// the deleted 300) it would trim the 100-byte one.
		step(300)
		step(50)                                                            // 1000 exactly: all five kept
		step(8)                                                             // 1008: the oldest goes
		if err := e.cp.Delete(ctx, "t", puts[len(puts)-1].id); err != nil { // the newest
			t.Fatal(err)
		}
		puts = puts[:len(puts)-1]
		checkTotals(t, e, "t")
		step(400)
	})
}

// TestBytesRowsWithoutTotals: rows that have no running total (written before the table had the column,
// or by an older version) and, on the full layout, rows the TypeScript package wrote (no seq, no total)
// below the head: the next put under a byte budget renumbers the thread, which computes every total,
// and then keeps exactly what the budget allows, counting those rows.
func TestBytesRowsWithoutTotals(t *testing.T) {
	const budget = 1000
	bytesEnvs(t, pgcheckpoint.NoLimit, budget, func(t *testing.T, e bytesEnv) {
		ctx := testCtx(t)
		var puts []put
		for _, n := range []int{100, 200, 300} {
			id, err := e.cp.Put(ctx, "t", sized(n))
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{id, n})
		}
		// As an older version left them: no totals at all.
		if _, err := e.db.ExecContext(ctx, `UPDATE `+e.rows+` SET total_bytes = NULL WHERE thread_id = 't'`); err != nil {
			t.Fatal(err)
		}
		id, err := e.cp.Put(ctx, "t", sized(390))
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{id, 390})
		checkRetained(t, e, "t", &puts, 0, budget, "after a put on rows without totals")
		// Only the head without a total (an older version's put after this version's).
		if _, err := e.db.ExecContext(ctx, `UPDATE `+e.rows+` SET total_bytes = NULL WHERE thread_id = 't' AND checkpoint_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		id, err = e.cp.Put(ctx, "t", sized(20))
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{id, 20})
		checkRetained(t, e, "t", &puts, 0, budget, "after a put on a head without a total")
		if e.delta {
			return // a TypeScript put into a delta table fails (docs/storage.md)
		}
		// A TypeScript row (no seq, no total) of 250 bytes below the head, as in
		// TestRegressTypeScriptRowBelowHead: the thread holds 200+300+390+20 = 910 bytes; with it 1160.
		below := idBetween(t, puts[len(puts)-2].id, puts[len(puts)-1].id)
		ts := sized(250)
		if _, err := e.db.ExecContext(ctx, `INSERT INTO `+e.rows+` (thread_id, checkpoint_id, snapshot, version, size_bytes) VALUES ('t', $1, $2::text::jsonb, 0, $3)`,
			below, string(ts), len(ts)); err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{below, len(ts)})
		id, err = e.cp.Put(ctx, "t", sized(30))
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{id, 30})
		checkRetained(t, e, "t", &puts, 0, budget, "after a put over a TypeScript row below the head")
	})
}

// idBetween is a checkpoint id that sorts strictly between a and b: b minus one in its last 12 hex
// digits (ids from one generator differ well before those).
func idBetween(t *testing.T, a, b string) string {
	t.Helper()
	tail, err := strconv.ParseUint(b[len(b)-12:], 16, 64)
	if err != nil || tail == 0 {
		t.Fatalf("id %s: %v", b, err)
	}
	id := b[:len(b)-12] + fmt.Sprintf("%012x", tail-1)
	if !(a < id && id < b) {
		t.Fatalf("no id between %s and %s (tried %s)", a, b, id)
	}
	return id
}

// TestBytesConcurrentWriters: four writers of one thread under a byte budget, on both drivers, dialects
// and storages, each in a database of its own so that the server's deadlock count is the test's: no put
// fails and afterwards the thread holds exactly the newest checkpoints the budget keeps of every put that
// returned, with right totals. Then three writers and a deleter of middle checkpoints (Delete renumbers
// and recomputes the totals under the thread's row locks): no operation fails, the thread stays within
// the budget with right totals. The server detected no deadlock in either phase.
func TestBytesConcurrentWriters(t *testing.T) {
	const (
		writers = 4
		each    = 12
		budget  = 1500
	)
	for _, tg := range postgresTargets(t) {
		for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
			t.Run(tg.name+"/"+storage.String(), func(t *testing.T) {
				ptg, deadlocks := privateDatabase(t, tg)
				db, err := sql.Open(ptg.driver, ptg.dsn) // closed before the deadlock count is read
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				db.SetMaxOpenConns(maxConnsPerPool)
				e := bytesEnv{name: tg.name, tg: ptg, db: db, schema: "public", delta: storage == pgcheckpoint.StorageDelta, // the database is the test's own
					cp: ptg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: "public", Storage: storage, MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: budget})}
				e.rows = tableIn("public")
				if e.delta {
					e.rows = `"public"."` + pgcheckpoint.DefaultTable + `_heads"`
				}
				before := deadlocksOpen(t, e.db, deadlocks)
				var mu sync.Mutex
				var puts []put
				putOne := func(ctx context.Context) error {
					n := 40 + rand.IntN(500)
					id, err := e.cp.Put(ctx, "t", sized(n))
					if err == nil {
						mu.Lock()
						puts = append(puts, put{id, n})
						mu.Unlock()
					}
					return err
				}
				errs := runWriters(t, writers, each, func(ctx context.Context, w, i int) error { return putOne(ctx) })
				for _, err := range errs {
					t.Errorf("put: %v", err)
				}
				if len(errs) == 0 {
					checkRetained(t, e, "t", &puts, 0, budget, "after the concurrent puts")
				}
				errs = runWriters(t, writers, each, func(ctx context.Context, w, i int) error {
					if w > 0 {
						return putOne(ctx)
					}
					list, err := e.cp.List(ctx, "t", pgcheckpoint.ListOptions{})
					if err != nil || len(list) < 3 {
						return err
					}
					return e.cp.Delete(ctx, "t", list[len(list)/2].ID)
				})
				for _, err := range errs {
					t.Errorf("put or delete: %v", err)
				}
				checkTotals(t, e, "t")
				list, err := e.cp.List(testCtx(t), "t", pgcheckpoint.ListOptions{Limit: -1})
				if err != nil {
					t.Fatal(err)
				}
				var sum int64
				for _, cp := range list {
					sum += int64(cp.SizeBytes)
				}
				if len(list) > 1 && sum > budget {
					t.Errorf("after puts and deletes the thread holds %d checkpoints of %d bytes, over the budget %d", len(list), sum, budget)
				}
				e.db.Close()
				if after := deadlocks(); after != before {
					t.Errorf("the server detected %d deadlocks in the test's database", after-before)
				}
			})
		}
	}
}

// TestBytesPlanTrimDoesNotScanThread: a thread of 20,000 rows of which the budget keeps 10,000. After
// one put (which trims the 10,001 oldest), the next put's trim reads only the rows it trims and the one
// it keeps first: EXPLAIN ANALYZE of the put's statement (PostgreSQL: the one statement; CockroachDB:
// the trim after the insert, in one transaction, rolled back) shows every index scan of the table
// reading at most a handful of rows, not the thread's 10,000.
func TestBytesPlanTrimDoesNotScanThread(t *testing.T) {
	const (
		rows   = 20000
		size   = 27
		budget = size * 10000
	)
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			e := newBytesEnv(t, tg, pgcheckpoint.StorageFull, pgcheckpoint.NoLimit, budget)
			ctx := testCtx(t)
			base := time.Now().Add(-time.Hour)
			if _, err := e.db.ExecContext(ctx, `INSERT INTO `+e.rows+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
SELECT 'big', $1::text || lpad(to_hex(s), 8, '0'), '{"version": 2}', 2, $2::int, s, s * $2::int
FROM generate_series(1, $3::int) AS s`, idAt(base)[:28], size, rows); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.ExecContext(ctx, `ANALYZE `+e.rows); err != nil {
				t.Fatal(err)
			}
			snap := []byte(`{"version": 2, "pad": "`)
			snap = append(snap, strings.Repeat("x", size-len(snap)-2)...)
			snap = append(snap, `"}`...)
			if len(snap) != size {
				t.Fatalf("snapshot is %d bytes", len(snap))
			}
			if _, err := e.cp.Put(ctx, "big", snap); err != nil {
				t.Fatal(err)
			}
			if n := count(t, e.db, e.rows, "big"); n != 10000 {
				t.Fatalf("after the first put the thread holds %d rows, want 10000", n)
			}
			stmts, err := pgcheckpoint.Statements(tg.dialect, e.schema, "")
			if err != nil {
				t.Fatal(err)
			}
			latest, err := e.cp.Latest(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			next := latest.ID[:len(latest.ID)-4] + "ffff"
			tx, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var plan string
			if tg.dialect == pgcheckpoint.CockroachDB {
				var newSeq sql.NullInt64
				var skip [7]any
				for i := range skip {
					skip[i] = new(any)
				}
				if err := tx.QueryRowContext(ctx, stmts["insertBytes"], "big", next, json.RawMessage(snap), 2, size, nil).
					Scan(&newSeq, skip[0], skip[1], skip[2], skip[3], skip[4], skip[5], skip[6]); err != nil || !newSeq.Valid {
					t.Fatalf("insert: %v (seq %v)", err, newSeq)
				}
				err = tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+stmts["trimBytes"], "big", newSeq.Int64, nil, int64(budget)).Scan(&plan)
			} else {
				err = tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+stmts["putBytes"], "big", next, json.RawMessage(snap), 2, size, nil, nil, int64(budget)).Scan(&plan)
			}
			if err != nil {
				t.Fatal(err)
			}
			read, summary := indexReads(t, plan)
			t.Logf("index scans: %s", summary)
			if read > 3 {
				t.Errorf("an index scan read %v rows of a thread of 10,000 whose put trims one: the trim scans the thread\n%s", read, plan)
			}
			// The check itself: a statement that reads the thread (through its index) must be caught.
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) SELECT max(total_bytes - size_bytes) FROM "+e.rows+" WHERE thread_id = 'big' AND seq IS NOT NULL").Scan(&plan); err != nil {
				t.Fatal(err)
			}
			if read, summary := indexReads(t, plan); read < 10000 {
				t.Errorf("the check missed a read of the whole thread: %v rows (%s)", read, summary)
			}
		})
	}
}

// TestBytesPolicy: the byte budget is part of the table's policy: recorded by EnsureSchema from the
// first client's options, read back by Retention, changed by SetRetention (and RetentionSQL), described
// by String; a client that names another budget fails with ErrRetentionMismatch and writes nothing;
// EnsureSchema upgrades a table of an older version (no total_bytes, no max_bytes_per_thread) keeping
// its cap.
func TestBytesPolicy(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			e := newBytesEnv(t, tg, pgcheckpoint.StorageFull, 5, 4096)
			schema := e.schema
			r, err := e.cp.Retention(ctx)
			if err != nil || r != (pgcheckpoint.Retention{MaxCheckpointsPerThread: 5, MaxBytesPerThread: 4096}) {
				t.Fatalf("Retention: %+v, %v", r, err)
			}
			if s := r.String(); s != "5 checkpoints and at most 4096 bytes per thread" {
				t.Errorf("String: %q", s)
			}
			other := mustNew(t, e.db, pgcheckpoint.Options{Schema: schema, Dialect: tg.dialect, MaxBytesPerThread: 1 << 20})
			if _, err := other.Put(ctx, "t", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
				t.Fatalf("put with another budget: %v, want ErrRetentionMismatch", err)
			}
			if n := count(t, e.db, e.rows, "t"); n != 0 {
				t.Fatalf("the refused put wrote %d rows", n)
			}
			follower := mustNew(t, e.db, pgcheckpoint.Options{Schema: schema, Dialect: tg.dialect})
			if err := follower.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: 100}); err != nil {
				t.Fatal(err)
			}
			if r, err := follower.Retention(ctx); err != nil || r != (pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: 100}) {
				t.Fatalf("after SetRetention: %+v, %v", r, err)
			}
			for range 3 {
				if _, err := follower.Put(ctx, "t", sized(40)); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(t, e.db, e.rows, "t"); n != 2 {
				t.Fatalf("budget 100, three puts of 40 bytes: %d rows, want 2", n)
			}
			q, err := pgcheckpoint.RetentionSQL(tg.dialect, schema, "", pgcheckpoint.Retention{MaxCheckpointsPerThread: 7, MaxBytesPerThread: pgcheckpoint.NoLimit})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if r, err := follower.Retention(ctx); err != nil || r != (pgcheckpoint.Retention{MaxCheckpointsPerThread: 7}) {
				t.Fatalf("after RetentionSQL: %+v, %v", r, err)
			}
			// An older version's table: no total_bytes, a policy without max_bytes_per_thread.
			for _, s := range []string{`ALTER TABLE ` + e.rows + ` DROP COLUMN total_bytes`,
				`ALTER TABLE "` + schema + `"."ziro_checkpoints_policy" DROP COLUMN max_bytes_per_thread`} {
				if _, err := e.db.ExecContext(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := follower.Retention(ctx); !errors.Is(err, pgcheckpoint.ErrSchemaMissing) {
				t.Fatalf("Retention on an older version's policy table: %v, want ErrSchemaMissing", err)
			}
			if err := follower.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if r, err := follower.Retention(ctx); err != nil || r != (pgcheckpoint.Retention{MaxCheckpointsPerThread: 7}) {
				t.Fatalf("after upgrading an older version's table: %+v, %v; want its cap 7 and no budget", r, err)
			}
			if err := follower.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: 100}); err != nil {
				t.Fatal(err)
			}
			var puts []put
			for _, cp := range listIDs(t, follower, "t") {
				puts = append(puts, put{cp, 40})
			}
			fresh := mustNew(t, e.db, pgcheckpoint.Options{Schema: schema, Dialect: tg.dialect}) // reads the new policy now
			id, err := fresh.Put(ctx, "t", sized(50))
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{id, 50})
			e.cp = fresh
			checkRetained(t, e, "t", &puts, 0, 100, "after the upgrade, a put on rows without totals")
		})
	}
}

// TestBytesForkHistory: Fork with History under a byte budget copies only the newest checkpoints (up to
// the forked one) whose sizes fit in the budget, the forked one always, numbered and totalled like any
// thread, on both storages (a delta fork copies only the copied heads' items); Memory does the same.
func TestBytesForkHistory(t *testing.T) {
	const budget = 1000
	sizes := []int{400, 300, 500, 200, 2000}
	want := func(puts []put, at int) []string { // the newest that fit, up to puts[at]
		keep := wantKept(puts[:at+1], 0, budget)
		var out []string
		for _, p := range puts[at+1-keep : at+1] {
			out = append(out, p.id)
		}
		return out
	}
	check := func(t *testing.T, s pgcheckpoint.Store, e *bytesEnv) {
		ctx := testCtx(t)
		var puts []put
		for _, n := range sizes[:4] { // 200+500+300 = 1000: the thread holds the last three
			id, err := s.Put(ctx, "src", sized(n))
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{id, n})
		}
		for i, c := range []struct {
			at   int
			want []string
		}{{3, want(puts, 3)}, {2, want(puts, 2)}} {
			to := fmt.Sprintf("fork%d", i)
			if _, err := s.Fork(ctx, "src", puts[c.at].id, to, pgcheckpoint.ForkOptions{History: true}); err != nil {
				t.Fatal(err)
			}
			if got := reversed(listIDs(t, s, to)); !slices.Equal(got, c.want) {
				t.Fatalf("fork of checkpoint %d with history: %v, want %v", c.at, got, c.want)
			}
			if e != nil {
				checkTotals(t, *e, to)
			}
		}
	}
	bytesEnvs(t, pgcheckpoint.NoLimit, budget, func(t *testing.T, e bytesEnv) { check(t, e.cp, &e) })
	t.Run("memory", func(t *testing.T) {
		check(t, pgcheckpoint.NewMemory(pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: budget}), nil)
	})
}

// indexReads is the most rows one index or bitmap scan node of an EXPLAIN (ANALYZE, FORMAT JSON) plan
// read (rows returned plus rows its filter removed, times its loops), and a summary of those nodes. A
// sequential scan fails the test.
func indexReads(t *testing.T, plan string) (float64, string) {
	t.Helper()
	var read float64
	var summary []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		typ, _ := n["Node Type"].(string)
		idx, _ := n["Index Name"].(string)
		rows, _ := n["Actual Rows"].(float64)
		removed, _ := n["Rows Removed by Filter"].(float64)
		loops, _ := n["Actual Loops"].(float64)
		if typ == "Seq Scan" {
			t.Errorf("sequential scan in the plan:\n%s", plan)
		}
		if strings.HasPrefix(typ, "Index") || strings.HasPrefix(typ, "Bitmap") {
			read = max(read, (rows+removed)*loops)
			summary = append(summary, fmt.Sprintf("%s %s: %v rows + %v filtered x %v", typ, idx, rows, removed, loops))
		}
		if ps, ok := n["Plans"].([]any); ok {
			for _, p := range ps {
				walk(p.(map[string]any))
			}
		}
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) != 1 {
		t.Fatalf("plan: %v", err)
	}
	walk(out[0]["Plan"].(map[string]any))
	return read, strings.Join(summary, "; ")
}

// TestBytesPlanDeltaTrimDoesNotScanThread is TestBytesPlanTrimDoesNotScanThread for a delta table (the
// PostgreSQL dialect, whose put is one statement that the test can record): 20,000 heads of which the
// budget keeps 10,000; the put after the first is recorded, then explained again on top of it (a newer
// id, the recorded put's head as its basis) in a transaction that is rolled back: its trim of one head
// and of the items only that head held reads at most a handful of rows in any index scan.
func TestBytesPlanDeltaTrimDoesNotScanThread(t *testing.T) {
	const (
		rows   = 20000
		size   = 48
		budget = size * 10000
	)
	for _, tg := range postgresTargets(t)[:2] {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			rec := &recorder{db: db}
			cp, err := pgcheckpoint.New(rec, pgcheckpoint.Options{Schema: schema, Dialect: tg.dialect, Storage: pgcheckpoint.StorageDelta,
				MaxCheckpointsPerThread: pgcheckpoint.NoLimit, MaxBytesPerThread: budget})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			if err := cp.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			heads := `"` + schema + `"."ziro_checkpoints_heads"`
			if _, err := db.ExecContext(ctx, `INSERT INTO `+heads+` (thread_id, checkpoint_id, seq, snapshot, arrays, lo, hi, alloc, version, size_bytes, total_bytes)
SELECT 'big', $1::text || lpad(to_hex(s), 8, '0'), s, '{"version": 2}', '{}', '{}', '{}', '{}', 2, $2::int, s * $2::int
FROM generate_series(1, $3::int) AS s`, idAt(time.Now().Add(-time.Hour))[:28], size, rows); err != nil {
				t.Fatal(err)
			}
			// Other threads, 2,000 of 100 heads, so that the planner sees a table of many threads (as
			// TestPlansUseIndexes seeds it): with one thread only it reads the heads sequentially.
			if _, err := db.ExecContext(ctx, `INSERT INTO `+heads+` (thread_id, checkpoint_id, seq, snapshot, arrays, lo, hi, alloc, version, size_bytes, total_bytes)
SELECT 'other-' || th, $1::text || lpad(to_hex(s), 8, '0'), s, '{"version": 2}', '{}', '{}', '{}', '{}', 2, $2::int, s * $2::int
FROM generate_series(1, 2000) AS th, generate_series(1, 100) AS s`, idAt(time.Now().Add(-time.Hour))[:28], size); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `ANALYZE `+heads); err != nil {
				t.Fatal(err)
			}
			prefix := `{"version": 2, "messages": ["`
			snap := []byte(prefix + strings.Repeat("x", size-len(prefix)-3) + `"]}`)
			if len(snap) != size {
				t.Fatalf("snapshot is %d bytes", len(snap))
			}
			for range 2 {
				rec.seen = nil
				if _, err := cp.Put(ctx, "big", snap); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(t, db, heads, "big"); n != 10000 {
				t.Fatalf("the thread holds %d heads, want 10000", n)
			}
			var put call
			for _, c := range rec.seen {
				if strings.Contains(c.query, "INSERT INTO "+heads) {
					put = c
				}
			}
			if put.query == "" {
				t.Fatalf("no put statement recorded: %v", rec.seen)
			}
			latest, err := cp.Latest(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			args := slices.Clone(put.args)
			args[1], args[8] = latest.ID[:len(latest.ID)-4]+"ffff", latest.ID // a newer id, on the recorded put's head
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var plan string
			if err := tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+put.query, args...).Scan(&plan); err != nil {
				t.Fatal(err)
			}
			read, summary := indexReads(t, plan)
			t.Logf("index scans: %s", summary)
			if read > 3 {
				t.Errorf("an index scan read %v rows of a thread of 10,000 whose put trims one: the trim scans the thread\n%s", read, plan)
			}
			if !strings.Contains(plan, `"Relation Name": "ziro_checkpoints_heads"`) || !strings.Contains(plan, `"Operation": "Delete"`) {
				t.Errorf("the explained statement is not the delta put with its trim:\n%s", plan)
			}
		})
	}
}

// TestBytesConvert: Convert writes every row's running total (full to delta and back), carries the byte
// budget to the table it creates, and the next put under the budget on the converted table keeps exactly
// what the budget allows.
func TestBytesConvert(t *testing.T) {
	const budget = 1000
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			e := newBytesEnv(t, tg, pgcheckpoint.StorageFull, pgcheckpoint.NoLimit, budget)
			ctx := testCtx(t)
			var puts []put
			for _, n := range []int{300, 200, 400, 100} {
				id, err := e.cp.Put(ctx, "t", sized(n))
				if err != nil {
					t.Fatal(err)
				}
				puts = append(puts, put{id, n})
			}
			checkRetained(t, e, "t", &puts, 0, budget, "before the conversion")
			for _, to := range []struct {
				table   string
				storage pgcheckpoint.Storage
				from    string
			}{{"as_delta", pgcheckpoint.StorageDelta, pgcheckpoint.DefaultTable}, {"as_full", pgcheckpoint.StorageFull, "as_delta"}} {
				if _, err := pgcheckpoint.Convert(ctx, e.db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: e.schema,
					From: to.from, To: to.table, ToStorage: to.storage}); err != nil {
					t.Fatalf("convert to %s: %v", to.table, err)
				}
				cp := mustNew(t, e.db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: e.schema, Table: to.table, Storage: to.storage})
				if r, err := cp.Retention(ctx); err != nil || r.MaxBytesPerThread != budget {
					t.Fatalf("%s records %+v, %v; want the source's budget %d", to.table, r, err, budget)
				}
				ce := e
				ce.cp, ce.delta, ce.rows = cp, to.storage == pgcheckpoint.StorageDelta, `"`+e.schema+`"."`+to.table+`"`
				if ce.delta {
					ce.rows = `"` + e.schema + `"."` + to.table + `_heads"`
				}
				checkTotals(t, ce, "t")
				id, err := cp.Put(ctx, "t", sized(250))
				if err != nil {
					t.Fatal(err)
				}
				converted := append(slices.Clone(puts), put{id, 250})
				checkRetained(t, ce, "t", &converted, 0, budget, "after a put on the converted table "+to.table)
				puts = converted // what the next conversion reads
			}
		})
	}
}
