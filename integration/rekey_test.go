package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// rekeyRing returns the key ring of ids, the first current; each id's secret is derived from the id,
// so two rings naming one id agree on its secret.
func rekeyRing(t testing.TB, ids ...string) *pgcheckpoint.KeyRing {
	t.Helper()
	r, err := pgcheckpoint.ParseKeyRing(rekeyRingText(ids...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rekeyRingText is rekeyRing's ring in ParseKeyRing's format.
func rekeyRingText(ids ...string) string {
	var entries []string
	for _, id := range ids {
		entries = append(entries, id+":"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(id[:1]), pgcheckpoint.KeySize)))
	}
	return strings.Join(entries, ",")
}

// rekeyCheckpointer returns a Checkpointer on schema with keys (nil: none), its table created.
func (tg target) rekeyCheckpointer(t testing.TB, db *sql.DB, schema string, keys pgcheckpoint.KeyProvider, cap int) *pgcheckpoint.Checkpointer {
	t.Helper()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Storage: tg.storage, Schema: schema, Keys: keys,
		MaxCheckpointsPerThread: cap})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.EnsureSchema(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return cp
}

// rekeySnapshot is a snapshot that names its thread and number (the marker raw rows must not show once
// sealed) with some padding, and a conversation that grows with i (up to 25 messages, then anew),
// which a delta table keeps in its items.
func rekeySnapshot(thread string, i int) []byte {
	var msgs []string
	for j := range i%25 + 1 {
		msgs = append(msgs, strconv.Quote(fmt.Sprintf("plain-%s-m%d", thread, j)))
	}
	return fmt.Appendf(nil, `{"version": 1, "marker": "plain-%s-%d", "pad": %q, "messages": [%s]}`, thread, i,
		strings.Repeat("x", 100+i%50), strings.Join(msgs, ", "))
}

// populate puts n checkpoints into each of threads and returns what was sent, by id.
func populate(t testing.TB, cp *pgcheckpoint.Checkpointer, threads []string, n int) map[[2]string][]byte {
	t.Helper()
	ctx := testCtx(t)
	want := map[[2]string][]byte{}
	for i := range n {
		for _, th := range threads {
			s := rekeySnapshot(th, i)
			id, err := cp.Put(ctx, th, s)
			if err != nil {
				t.Fatal(err)
			}
			want[[2]string{th, id}] = s
		}
	}
	return want
}

// rekeyTable is a fresh plaintext table with checkpoints: a Checkpointer without keys (plain), one
// with the ring k1 (cp), and what was put (want).
type rekeyTable struct {
	db        *sql.DB
	schema    string
	plain, cp *pgcheckpoint.Checkpointer
	want      map[[2]string][]byte
}

// plaintextTable puts n checkpoints into each of threads of a new table, without keys.
func (tg target) plaintextTable(t testing.TB, threads []string, n int) rekeyTable {
	t.Helper()
	db := tg.open(t)
	r := rekeyTable{db: db, schema: newSchema(t, db)}
	r.plain = tg.rekeyCheckpointer(t, db, r.schema, nil, 0)
	r.want = populate(t, r.plain, threads, n)
	r.cp = tg.rekeyCheckpointer(t, db, r.schema, rekeyRing(t, "k1"), 0)
	return r
}

// startRekey runs a Rekey of cp that stops after its first batch of batch rows: the table is migrating.
func startRekey(t testing.TB, cp *pgcheckpoint.Checkpointer, batch int) {
	t.Helper()
	stopped, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	if _, err := cp.Rekey(stopped, pgcheckpoint.RekeyOptions{Batch: batch, Progress: func(pgcheckpoint.RekeyResult) { cancel() }}); !errors.Is(err, context.Canceled) {
		t.Fatalf("the first batch's rekey: %v", err)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// checkReadBack fails unless every checkpoint of want reads back through cp as it was sent, and the
// table holds no other row.
func checkReadBack(t testing.TB, cp *pgcheckpoint.Checkpointer, db *sql.DB, schema string, want map[[2]string][]byte) {
	t.Helper()
	ctx := testCtx(t)
	for k, s := range want {
		got, err := cp.Get(ctx, k[0], k[1])
		if err != nil {
			t.Fatalf("get %s/%s: %v", k[0], k[1], err)
		}
		if !jsonEqual(got.Snapshot, s) {
			t.Fatalf("get %s/%s: %s, want %s", k[0], k[1], got.Snapshot, s)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+schema+`".ziro_checkpoints`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("the table holds %d rows, want %d", n, len(want))
	}
}

// rawKeys returns how many raw rows are plaintext, and the key ids the others name with their counts;
// it fails if a raw row shows a plaintext marker inside an envelope. A delta table's rows are its heads
// and its items.
func rawKeys(t testing.TB, db *sql.DB, schema string) (plain int, keys map[string]int) {
	t.Helper()
	keys = map[string]int{}
	queries := []string{`SELECT snapshot::text FROM "` + schema + `".ziro_checkpoints`}
	if isDelta(t, db, schema) {
		queries = []string{`SELECT snapshot::text FROM "` + schema + `".ziro_checkpoints_heads`,
			`SELECT item::text FROM "` + schema + `".ziro_checkpoints_items`}
	}
	for _, q := range queries {
		plain += rawKeysOf(t, db, q, keys)
	}
	return plain, keys
}

// isDelta reports whether schema's table is a delta table (it has a heads table).
func isDelta(t testing.TB, db *sql.DB, schema string) bool {
	t.Helper()
	var delta bool
	if err := db.QueryRowContext(testCtx(t), `SELECT to_regclass($1) IS NOT NULL`, `"`+schema+`".ziro_checkpoints_heads`).Scan(&delta); err != nil {
		t.Fatal(err)
	}
	return delta
}

// rawKeysOf is rawKeys for the values query returns: it counts their key ids into keys and returns
// how many are plaintext.
func rawKeysOf(t testing.TB, db *sql.DB, query string, keys map[string]int) (plain int) {
	t.Helper()
	rows, err := db.QueryContext(testCtx(t), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		var env struct {
			Marker string `json:"$"`
			K      string `json:"k"`
		}
		if err := json.Unmarshal([]byte(s), &env); err != nil {
			// A delta item may be any JSON value (a message here): plaintext.
			plain++
			continue
		}
		if env.Marker != "enc1" {
			plain++
			continue
		}
		if strings.Contains(s, "plain-") {
			t.Fatalf("an envelope shows plaintext: %s", s)
		}
		keys[env.K]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plain
}

// checkState fails unless the table's encryption state is want.
func checkState(t testing.TB, cp *pgcheckpoint.Checkpointer, want pgcheckpoint.EncryptionState) {
	t.Helper()
	s, err := cp.Encryption(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s != want {
		t.Fatalf("encryption state %v, want %v", s, want)
	}
}

// TestRekeyEncrypt encrypts a populated plaintext table: none before, migrating while batches run (a
// keyless writer is refused then), required after; every checkpoint reads back as it was, and no raw
// row is plaintext.
func TestRekeyEncrypt(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"a", "b", "c"}, 12)
			db, schema, plain, cp, want := tb.db, tb.schema, tb.plain, tb.cp, tb.want
			checkState(t, cp, pgcheckpoint.EncryptionNone)
			var progress []pgcheckpoint.RekeyResult
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 7, Progress: func(r pgcheckpoint.RekeyResult) {
				if len(progress) == 0 {
					checkState(t, cp, pgcheckpoint.EncryptionMigrating)
					_, err := plain.Put(ctx, "a", rekeySnapshot("a", 99))
					if !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
						t.Errorf("keyless put while migrating: %v, want ErrEncryptionRequired", err)
					}
				}
				progress = append(progress, r)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.State != pgcheckpoint.EncryptionRequired || res.Resealed != 36 || res.Scanned != 36 || res.Batches != 6 || res.Passes != 2 {
				t.Fatalf("result %+v", res)
			}
			if len(progress) != 6 || progress[0].Resealed != 7 || progress[0].Position.Thread != "a" {
				t.Fatalf("progress %+v", progress)
			}
			checkState(t, cp, pgcheckpoint.EncryptionRequired)
			checkReadBack(t, cp, db, schema, want)
			if n, keys := rawKeys(t, db, schema); n != 0 || keys["k1"] != 36 {
				t.Fatalf("%d plaintext rows, keys %v", n, keys)
			}
			// Once required, a keyless reader cannot read, and a second Rekey finds nothing.
			if _, err := plain.Latest(ctx, "a"); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
				t.Fatalf("keyless get: %v", err)
			}
			if res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{}); err != nil || res.Scanned != 0 || res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("second rekey: %+v, %v", res, err)
			}
		})
	}
}

// TestRekeyRotate moves a table sealed under k1 to k2: afterwards every row names k2 and a ring
// holding only k2 reads everything; a Checkpointer without keys, or with a ring lacking the rows'
// key, is ErrKeyMissing.
func TestRekeyRotate(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			old := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k1"), 0)
			checkState(t, old, pgcheckpoint.EncryptionRequired) // created with keys on an empty table
			want := populate(t, old, []string{"t1", "t2"}, 10)
			only2 := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k2"), 0)
			if _, err := only2.Latest(ctx, "t1"); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
				t.Fatalf("k2 alone reads a k1 row: %v", err)
			}
			if _, err := only2.Rekey(ctx, pgcheckpoint.RekeyOptions{}); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
				t.Fatalf("rekey without the old key: %v", err)
			}
			keyless := tg.rekeyCheckpointer(t, db, schema, nil, 0)
			if _, err := keyless.Rekey(ctx, pgcheckpoint.RekeyOptions{}); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
				t.Fatalf("rekey without keys: %v", err)
			}
			cp := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k2", "k1"), 0)
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 6})
			if err != nil {
				t.Fatal(err)
			}
			if res.Resealed != 20 || res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("result %+v", res)
			}
			if n, keys := rawKeys(t, db, schema); n != 0 || keys["k2"] != 20 || len(keys) != 1 {
				t.Fatalf("%d plaintext rows, keys %v", n, keys)
			}
			checkReadBack(t, only2, db, schema, want)
			// A fork of the rekeyed rows re-binds them to the new thread (rebindFork writes through
			// the same statement as Rekey).
			var newest [2]string
			for k := range want {
				if k[0] == "t1" && k[1] > newest[1] {
					newest = k
				}
			}
			if _, err := only2.Fork(ctx, "t1", newest[1], "t1-fork", pgcheckpoint.ForkOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, err := only2.Latest(ctx, "t1-fork"); err != nil || !jsonEqual(got.Snapshot, want[newest]) {
				t.Fatalf("fork: %s, %v", got.Snapshot, err)
			}
		})
	}
}

// TestRekeyResume stops a Rekey after two batches (its context cancelled) and resumes it from the
// position it returned: the second run reseals exactly the rest.
func TestRekeyResume(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			tb := tg.plaintextTable(t, []string{"x", "y", "z"}, 9)
			db, schema, cp, want := tb.db, tb.schema, tb.cp, tb.want
			ctx, cancel := context.WithCancel(testCtx(t))
			first, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 5, Progress: func(r pgcheckpoint.RekeyResult) {
				if r.Batches == 2 {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped rekey: %v", err)
			}
			if first.Resealed != 10 || first.Position.Thread != "y" || first.State != pgcheckpoint.EncryptionMigrating {
				t.Fatalf("stopped at %+v", first)
			}
			if n, _ := rawKeys(t, db, schema); n != 17 {
				t.Fatalf("%d plaintext rows after the stop, want 17", n)
			}
			second, err := cp.Rekey(testCtx(t), pgcheckpoint.RekeyOptions{Batch: 5, After: first.Position})
			if err != nil {
				t.Fatal(err)
			}
			if second.Resealed != 17 || second.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("resumed: %+v", second)
			}
			checkReadBack(t, cp, db, schema, want)
		})
	}
}

// rekeyWriter is one writer of TestRekeyConcurrent: it puts to its own threads in turn, deletes every
// fifth round the checkpoint before the one it just wrote, and logs what it did.
type rekeyWriter struct {
	cp      *pgcheckpoint.Checkpointer
	threads []string
	log     map[string][]rekeyOp // per thread, in order
}

// rekeyOp is one acknowledged put (snapshot set) or delete of a checkpoint.
type rekeyOp struct {
	id       string
	snapshot string // "" for a delete
}

// run writes until stop is closed, after at least one round (each writer then signals started).
func (w *rekeyWriter) run(ctx context.Context, stop <-chan struct{}, started chan<- struct{}) error {
	for i := 0; ; i++ {
		for _, th := range w.threads {
			s := rekeySnapshot(th, 1000+i)
			id, err := w.cp.Put(ctx, th, s)
			if err != nil {
				return fmt.Errorf("put %s: %w", th, err)
			}
			w.log[th] = append(w.log[th], rekeyOp{id: id, snapshot: string(s)})
			if i%5 == 4 {
				victim := w.log[th][len(w.log[th])-2].id
				if err := w.cp.Delete(ctx, th, victim); err != nil && !errors.Is(err, pgcheckpoint.ErrNotFound) {
					return fmt.Errorf("delete %s/%s: %w", th, victim, err)
				}
				w.log[th] = append(w.log[th], rekeyOp{id: victim})
			}
		}
		if i == 0 {
			started <- struct{}{}
		}
		select {
		case <-stop:
			return nil
		default:
		}
	}
}

// TestRekeyConcurrent (full and delta tables) encrypts a table while writers with keys put and delete (retention cap 30) and
// a pruner prunes the threads named prune-*: afterwards, on the threads nobody prunes, exactly the
// checkpoints the log says are held (the newest 30 after each put, less those deleted) are there; on
// the pruned ones, only checkpoints acknowledged and not deleted, the newest among them. Every one
// reads back as it was sent, and every row is sealed.
func TestRekeyConcurrent(t *testing.T) {
	for _, tg := range append(postgresTargets(t), deltaTargets(t)...) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			const cap = 30
			plain := tg.rekeyCheckpointer(t, db, schema, nil, cap)
			writers := make([]*rekeyWriter, 3)
			for g := range writers {
				wdb := tg.open(t)
				wdb.SetMaxOpenConns(2)
				threads := []string{fmt.Sprintf("w%d-a", g), fmt.Sprintf("w%d-b", g), fmt.Sprintf("prune-w%d", g)}
				w := &rekeyWriter{threads: threads, log: map[string][]rekeyOp{}}
				// Plaintext history first, logged as the writer's own (and before the writer's
				// EnsureSchema with keys, which would make an empty table require encryption).
				for i := range 40 {
					for _, th := range threads {
						s := rekeySnapshot(th, i)
						id, err := plain.Put(ctx, th, s)
						if err != nil {
							t.Fatal(err)
						}
						w.log[th] = append(w.log[th], rekeyOp{id: id, snapshot: string(s)})
					}
				}
				w.cp = tg.rekeyCheckpointer(t, wdb, schema, rekeyRing(t, "k1"), cap)
				writers[g] = w
			}
			stop, started := make(chan struct{}), make(chan struct{}, len(writers))
			errs := make(chan error, len(writers)+1)
			var wg sync.WaitGroup
			for _, w := range writers {
				wg.Go(func() { errs <- w.run(ctx, stop, started) })
			}
			pdb := tg.open(t)
			pdb.SetMaxOpenConns(1)
			pruner := tg.rekeyCheckpointer(t, pdb, schema, rekeyRing(t, "k1"), cap)
			wg.Go(func() {
				for {
					if _, err := pruner.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: 1, Prefix: "prune-", BatchThreads: 1}); err != nil {
						errs <- fmt.Errorf("prune: %w", err)
						return
					}
					select {
					case <-stop:
						errs <- nil
						return
					default:
					}
				}
			})
			for range writers {
				<-started
			}
			rdb := tg.open(t)
			rdb.SetMaxOpenConns(2)
			cp := tg.rekeyCheckpointer(t, rdb, schema, rekeyRing(t, "k1"), cap)
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 5})
			close(stop)
			wg.Wait()
			close(errs)
			for e := range errs {
				if e != nil {
					t.Fatal(e)
				}
			}
			if err != nil {
				t.Fatalf("rekey: %v (%+v)", err, res)
			}
			if res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("result %+v", res)
			}
			t.Logf("rekey %+v", res)
			if n, _ := rawKeys(t, db, schema); n != 0 {
				t.Fatalf("%d plaintext rows", n)
			}
			for _, w := range writers {
				for _, th := range w.threads {
					checkWriterThread(t, cp, th, w.log[th], !strings.HasPrefix(th, "prune-"), cap)
				}
			}
		})
	}
}

// checkWriterThread checks one writer's thread against its log. held replays the log: each put
// appends and keeps the newest cap, each delete removes. Unpruned (exact), the thread holds exactly
// held; pruned, a subset of the puts not deleted that holds the newest put. Every checkpoint there
// reads back as it was sent.
func checkWriterThread(t testing.TB, cp *pgcheckpoint.Checkpointer, th string, log []rekeyOp, exact bool, cap int) {
	t.Helper()
	ctx := testCtx(t)
	var held []string
	sent := map[string]string{}
	newest := ""
	for _, op := range log {
		if op.snapshot == "" {
			held = slices.DeleteFunc(held, func(id string) bool { return id == op.id })
			delete(sent, op.id)
			continue
		}
		held = append(held, op.id)
		held = held[max(0, len(held)-cap):]
		sent[op.id], newest = op.snapshot, op.id
	}
	list, err := cp.List(ctx, th, pgcheckpoint.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range list {
		got = append(got, c.ID)
		if _, ok := sent[c.ID]; !ok {
			t.Fatalf("thread %s holds %s, which was deleted or never acknowledged", th, c.ID)
		}
		full, err := cp.Get(ctx, th, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(full.Snapshot, []byte(sent[c.ID])) {
			t.Fatalf("%s/%s reads %s, want %s", th, c.ID, full.Snapshot, sent[c.ID])
		}
	}
	slices.Sort(got)
	slices.Sort(held)
	if exact && !slices.Equal(got, held) || !slices.Contains(got, newest) {
		t.Fatalf("thread %s holds %v, want %v (exact %v) with the newest %s", th, got, held, exact, newest)
	}
}

// helperRekey is the worker of TestRekeyKilled: it runs Rekey and reports each batch.
func helperRekey(ctx context.Context, cp *pgcheckpoint.Checkpointer, s helperSpec, out *lineWriter) int {
	res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: s.Puts, After: s.After, Progress: func(r pgcheckpoint.RekeyResult) {
		out.line("batch", r.Position.Thread, r.Position.Checkpoint, strconv.FormatInt(r.Resealed, 10))
	}})
	if err != nil {
		out.line("error", err.Error())
		return 1
	}
	out.line("done", res.State.String(), strconv.FormatInt(res.Resealed, 10))
	return 0
}

// TestRekeyKilled kills a rekey process (SIGKILL) after its third batch, while the test holds the lock
// of a row of its fourth, then runs it again from the last position it reported: nothing is lost, the
// second run reseals the rest, and the table ends required. (A first run in this process, stopped
// after one batch, adds the constraint: its ALTER TABLE would wait for the test's row lock.)
func TestRekeyKilled(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"k-a", "k-b", "k-c"}, 20)
			db, schema, cp, want := tb.db, tb.schema, tb.cp, tb.want
			startRekey(t, cp, 5)
			// The 18th plaintext row in Rekey's order is in the worker's fourth batch of 5.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var blocked string
			// (Only that row: FOR UPDATE beside OFFSET would lock the rows skipped too.)
			table := `"` + schema + `".ziro_checkpoints`
			if err := tx.QueryRowContext(ctx, `SELECT checkpoint_id FROM `+table+` WHERE checkpoint_id = (
    SELECT checkpoint_id FROM `+table+` WHERE snapshot->>'$' IS NULL ORDER BY thread_id, checkpoint_id OFFSET 17 LIMIT 1)
FOR UPDATE`).Scan(&blocked); err != nil {
				t.Fatal(err)
			}
			spec := tg.spec("rekey", schema)
			spec.Keys, spec.Puts = rekeyRingText("k1"), 5
			h := startHelper(t, spec)
			var last []string
			for range 3 {
				line, ok := h.next()
				if last = strings.Split(line, "\t"); !ok || last[0] != "batch" {
					t.Fatalf("worker said %q; %s", line, h.diag())
				}
			}
			if rest := h.kill(); len(rest) != 0 {
				t.Fatalf("the worker went past the locked row: %v", rest)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			checkState(t, cp, pgcheckpoint.EncryptionMigrating)
			if n, _ := rawKeys(t, db, schema); n != 40 {
				t.Fatalf("%d plaintext rows after the kill, want 40", n)
			}
			spec.After = pgcheckpoint.RekeyPosition{Thread: last[1], Checkpoint: last[2]}
			h = startHelper(t, spec)
			lines := h.rest()
			if end := strings.Split(lines[len(lines)-1], "\t"); end[0] != "done" || end[1] != "required" || end[2] != "40" {
				t.Fatalf("rerun: %v; %s", lines, h.diag())
			}
			checkState(t, cp, pgcheckpoint.EncryptionRequired)
			checkReadBack(t, cp, db, schema, want)
		})
	}
}

// TestRekeyDollarMember: a plaintext snapshot with a member "$" of its own (which a reader with keys
// would take for an envelope) is sealed as the plaintext it is, and reads back after the rekey.
func TestRekeyDollarMember(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"c"}, 1) // not empty: EnsureSchema with keys leaves it plaintext
			snap := []byte(`{"$": "mine", "x": 1}`)
			id, err := tb.plain.Put(ctx, "d", snap)
			if err != nil {
				t.Fatal(err)
			}
			tb.want[[2]string{"d", id}] = snap
			if res, err := tb.cp.Rekey(ctx, pgcheckpoint.RekeyOptions{}); err != nil || res.Resealed != 2 {
				t.Fatalf("rekey: %+v, %v", res, err)
			}
			checkReadBack(t, tb.cp, tb.db, tb.schema, tb.want)
		})
	}
}

// TestRekeyForkWhileMigrating: while the table is migrating, a fork (with keys) of a thread Rekey has not
// reached yet works: the source's plaintext rows are sealed first, the copies re-bound; a keyless fork
// of them is refused. After the rekey the fork's copies read back.
func TestRekeyForkWhileMigrating(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"a", "b"}, 4)
			db, schema, plain, cp, want := tb.db, tb.schema, tb.plain, tb.cp, tb.want
			startRekey(t, cp, 2)
			var newest string
			for k := range want {
				if k[0] == "b" && k[1] > newest {
					newest = k[1]
				}
			}
			if _, err := plain.Fork(ctx, "b", newest, "b-plain", pgcheckpoint.ForkOptions{History: true}); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
				t.Fatalf("keyless fork while migrating: %v", err)
			}
			if _, err := cp.Fork(ctx, "b", newest, "b-fork", pgcheckpoint.ForkOptions{History: true}); err != nil {
				t.Fatalf("fork while migrating: %v", err)
			}
			for k, s := range want {
				if k[0] == "b" {
					want[[2]string{"b-fork", k[1]}] = s
				}
			}
			if res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{}); err != nil || res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("rekey: %+v, %v", res, err)
			}
			checkReadBack(t, cp, db, schema, want)
		})
	}
}

// deltaTargets is postgresTargets on delta tables.
func deltaTargets(t testing.TB) []target {
	var out []target
	for _, tg := range postgresTargets(t) {
		tg.name += "/delta"
		tg.storage = pgcheckpoint.StorageDelta
		out = append(out, tg)
	}
	return out
}

// deltaRows counts a delta table's heads and items.
func deltaRows(t testing.TB, db *sql.DB, schema string) (heads, items int) {
	t.Helper()
	err := db.QueryRowContext(testCtx(t), `SELECT (SELECT count(*) FROM "`+schema+`".ziro_checkpoints_heads),
    (SELECT count(*) FROM "`+schema+`".ziro_checkpoints_items)`).Scan(&heads, &items)
	if err != nil {
		t.Fatal(err)
	}
	return heads, items
}

// plainHashes counts the heads whose arrays column holds a plain (unkeyed) chain hash other than the
// cleared one Rekey leaves.
func plainHashes(t testing.TB, db *sql.DB, schema string) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM "`+schema+`".ziro_checkpoints_heads AS h
WHERE EXISTS (SELECT 1 FROM jsonb_each(h.arrays) AS a
              WHERE strpos(a.value->>'h', ':') = 0 AND a.value->>'h' <> repeat('0', 32))`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkSealedDelta fails unless every head and item of the delta table is sealed, under key alone,
// and no head keeps a plain chain hash.
func checkSealedDelta(t testing.TB, db *sql.DB, schema, key string) {
	t.Helper()
	heads, items := deltaRows(t, db, schema)
	if n, keys := rawKeys(t, db, schema); n != 0 || keys[key] != heads+items || len(keys) != 1 {
		t.Fatalf("%d plaintext rows, keys %v, want %d under %s", n, keys, heads+items, key)
	}
	if n := plainHashes(t, db, schema); n != 0 {
		t.Fatalf("%d heads keep a plain chain hash", n)
	}
}

// coldPuts has a fresh Checkpointer (a cold writer, its cache empty) with the ring of key alone put
// rounds from .. from+n-1 of each thread's conversation, adds them to want, and checks that reader reads
// everything back and that the table is sealed under key alone (checkSealedDelta).
func (tg target) coldPuts(t testing.TB, db *sql.DB, schema string, reader *pgcheckpoint.Checkpointer, key string,
	threads []string, from, n int, want map[[2]string][]byte) {
	t.Helper()
	cold := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, key), 0)
	for i := from; i < from+n; i++ {
		for _, th := range threads {
			s := rekeySnapshot(th, i)
			id, err := cold.Put(testCtx(t), th, s)
			if err != nil {
				t.Fatalf("cold put %s: %v", th, err)
			}
			want[[2]string{th, id}] = s
		}
	}
	checkReadBack(t, reader, db, schema, want)
	checkSealedDelta(t, db, schema, key)
}

// TestRekeyDeltaEncrypt encrypts a populated plaintext delta table: none, then migrating while batches
// run (a keyless put is refused), then required; Rekey reseals every head and item once, every
// checkpoint of the growing conversations reads back, no raw head or item is plaintext and no head
// keeps a plain chain hash; a cold writer with keys then stores correct snapshots.
func TestRekeyDeltaEncrypt(t *testing.T) {
	for _, tg := range deltaTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			threads := []string{"a", "b", "c"}
			tb := tg.plaintextTable(t, threads, 12)
			db, schema, plain, cp, want := tb.db, tb.schema, tb.plain, tb.cp, tb.want
			checkState(t, cp, pgcheckpoint.EncryptionNone)
			heads, items := deltaRows(t, db, schema)
			if heads != 36 || items == 0 || plainHashes(t, db, schema) == 0 {
				t.Fatalf("%d heads, %d items before", heads, items)
			}
			migrating := false
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 7, Progress: func(r pgcheckpoint.RekeyResult) {
				if !migrating {
					migrating = true
					checkState(t, cp, pgcheckpoint.EncryptionMigrating)
					if _, err := plain.Put(ctx, "a", rekeySnapshot("a", 99)); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
						t.Errorf("keyless put while migrating: %v, want ErrEncryptionRequired", err)
					}
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if total := int64(heads + items); res.State != pgcheckpoint.EncryptionRequired || res.Resealed != total || res.Scanned != total || res.Passes != 2 {
				t.Fatalf("result %+v, want %d resealed", res, total)
			}
			checkState(t, cp, pgcheckpoint.EncryptionRequired)
			checkReadBack(t, cp, db, schema, want)
			checkSealedDelta(t, db, schema, "k1")
			if res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{}); err != nil || res.Scanned != 0 {
				t.Fatalf("second rekey: %+v, %v", res, err)
			}
			tg.coldPuts(t, db, schema, cp, "k1", threads, 12, 1, want)
		})
	}
}

// TestRekeyDeltaRotate moves a delta table sealed under k1 to k2: every head and item then names k2,
// a ring of only k2 reads everything, and a cold writer with k2 stores correct snapshots (the heads
// keep their hashes keyed under k1, which it does not recognise).
func TestRekeyDeltaRotate(t *testing.T) {
	for _, tg := range deltaTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			threads := []string{"t1", "t2"}
			old := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k1"), 0)
			checkState(t, old, pgcheckpoint.EncryptionRequired)
			want := populate(t, old, threads, 10)
			checkSealedDelta(t, db, schema, "k1")
			cp := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k2", "k1"), 0)
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 6})
			if err != nil {
				t.Fatal(err)
			}
			heads, items := deltaRows(t, db, schema)
			if res.Resealed != int64(heads+items) || res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("result %+v, want %d resealed", res, heads+items)
			}
			checkSealedDelta(t, db, schema, "k2")
			only2 := tg.rekeyCheckpointer(t, db, schema, rekeyRing(t, "k2"), 0)
			checkReadBack(t, only2, db, schema, want)
			tg.coldPuts(t, db, schema, only2, "k2", threads, 10, 2, want)
		})
	}
}

// TestRekeyDeltaResume stops a delta Rekey in its heads phase and resumes it from the position it
// returned, stops that run in its items phase and resumes again: together the runs reseal every head
// and item exactly once.
func TestRekeyDeltaResume(t *testing.T) {
	for _, tg := range deltaTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			tb := tg.plaintextTable(t, []string{"x", "y", "z"}, 9)
			db, schema, cp, want := tb.db, tb.schema, tb.cp, tb.want
			heads, items := deltaRows(t, db, schema)
			stopAt := func(stop func(pgcheckpoint.RekeyResult) bool, after pgcheckpoint.RekeyPosition) pgcheckpoint.RekeyResult {
				t.Helper()
				ctx, cancel := context.WithCancel(testCtx(t))
				defer cancel()
				res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 5, After: after, Progress: func(r pgcheckpoint.RekeyResult) {
					if stop(r) {
						cancel()
					}
				}})
				if !errors.Is(err, context.Canceled) || res.State != pgcheckpoint.EncryptionMigrating {
					t.Fatalf("stopped rekey: %+v, %v", res, err)
				}
				return res
			}
			first := stopAt(func(r pgcheckpoint.RekeyResult) bool { return r.Batches == 2 }, pgcheckpoint.RekeyPosition{})
			if first.Resealed != 10 || first.Position.Items || first.Position.Thread != "y" {
				t.Fatalf("stopped at %+v", first)
			}
			second := stopAt(func(r pgcheckpoint.RekeyResult) bool { return r.Position.Items }, first.Position)
			if !second.Position.Items || second.Resealed != int64(heads-10+5) {
				t.Fatalf("stopped at %+v", second)
			}
			if n, _ := rawKeys(t, db, schema); n != items-5 {
				t.Fatalf("%d plaintext rows after the stops, want %d", n, items-5)
			}
			third, err := cp.Rekey(testCtx(t), pgcheckpoint.RekeyOptions{Batch: 5, After: second.Position})
			if err != nil {
				t.Fatal(err)
			}
			if first.Resealed+second.Resealed+third.Resealed != int64(heads+items) || third.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("resumed: %+v after %+v, %+v", third, first, second)
			}
			checkReadBack(t, cp, db, schema, want)
			checkSealedDelta(t, db, schema, "k1")
		})
	}
}

// TestRekeyDeltaDeleteForkWhileMigrating: while a delta table is migrating, a client with keys deletes
// a checkpoint (its thread renumbered) and forks a thread Rekey has not reached (its plaintext heads
// and items sealed first); a keyless client's are refused. After the rekey everything reads back.
func TestRekeyDeltaDeleteForkWhileMigrating(t *testing.T) {
	for _, tg := range deltaTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"a", "b", "c"}, 5)
			db, schema, plain, cp, want := tb.db, tb.schema, tb.plain, tb.cp, tb.want
			startRekey(t, cp, 2)
			ids := map[string][]string{}
			for k := range want {
				ids[k[0]] = append(ids[k[0]], k[1])
			}
			for _, l := range ids {
				slices.Sort(l)
			}
			if err := plain.Delete(ctx, "c", ids["c"][2]); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
				t.Fatalf("keyless delete while migrating: %v", err)
			}
			if err := cp.Delete(ctx, "c", ids["c"][2]); err != nil {
				t.Fatalf("delete while migrating: %v", err)
			}
			delete(want, [2]string{"c", ids["c"][2]})
			newest := ids["b"][len(ids["b"])-1]
			if _, err := plain.Fork(ctx, "b", newest, "b-plain", pgcheckpoint.ForkOptions{History: true}); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
				t.Fatalf("keyless fork while migrating: %v", err)
			}
			if _, err := cp.Fork(ctx, "b", newest, "b-fork", pgcheckpoint.ForkOptions{History: true}); err != nil {
				t.Fatalf("fork while migrating: %v", err)
			}
			for _, id := range ids["b"] {
				want[[2]string{"b-fork", id}] = want[[2]string{"b", id}]
			}
			checkReadBack(t, cp, db, schema, want)
			if res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{}); err != nil || res.State != pgcheckpoint.EncryptionRequired {
				t.Fatalf("rekey: %+v, %v", res, err)
			}
			checkReadBack(t, cp, db, schema, want)
			checkSealedDelta(t, db, schema, "k1")
		})
	}
}

// TestRekeyDeltaItemChanged: an item that changes between a Rekey batch's read and its write (a put may
// overwrite an item no head holds) is left as it is then, not overwritten with what the batch read; it
// counts as scanned, not resealed.
func TestRekeyDeltaItemChanged(t *testing.T) {
	for _, tg := range deltaTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			tb := tg.plaintextTable(t, []string{"a"}, 3)
			db, schema, cp := tb.db, tb.schema, tb.cp
			items := `"` + schema + `".ziro_checkpoints_items`
			const other = `{"$": "enc1", "d": "AAAA", "k": "k1"}` // passes the constraint; Rekey skips it
			changed := false
			testhooks.AfterRekeyItemsRead = func(c any) {
				if c != any(cp) || changed {
					return
				}
				changed = true
				if _, err := db.ExecContext(ctx, `UPDATE `+items+` SET item = $1::text::jsonb
WHERE pos = (SELECT min(pos) FROM `+items+`)`, other); err != nil {
					t.Error(err)
				}
			}
			t.Cleanup(func() { testhooks.AfterRekeyItemsRead = nil })
			heads, n := deltaRows(t, db, schema)
			res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !changed || res.Resealed != int64(heads+n-1) || res.Scanned != int64(heads+n) {
				t.Fatalf("result %+v with %d heads and %d items", res, heads, n)
			}
			var got string
			if err := db.QueryRowContext(ctx, `SELECT item::text FROM `+items+` ORDER BY pos LIMIT 1`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual([]byte(got), []byte(other)) {
				t.Fatalf("the changed item was overwritten: %s", got)
			}
		})
	}
}
