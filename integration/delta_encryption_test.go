package integration

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// The delta layout's encryption at rest (docs/security.md): heads and items are sealed envelopes bound
// to their table, thread, checkpoint (heads, with their arrays' composition) or position (items).

// encSecret is a substring every snapshot of these tests holds, in its head and in its items: no raw row
// may show it.
const encSecret = "s3cr3t-plaintext"

// newRing returns a key ring of one fresh key named id.
func newRing(t testing.TB, id string) *pgcheckpoint.KeyRing {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	k, err := pgcheckpoint.NewKey(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := pgcheckpoint.NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// encDelta returns a Checkpointer of the delta table cp in schema with keys (nil: none), without
// EnsureSchema.
func encDelta(t testing.TB, tg target, db *sql.DB, schema string, keys pgcheckpoint.KeyProvider, cap int) *pgcheckpoint.Checkpointer {
	t.Helper()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "cp",
		Storage: pgcheckpoint.StorageDelta, Keys: keys, MaxCheckpointsPerThread: cap})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// newEncDelta creates an encrypted delta table (EnsureSchema with keys on a new table) and checks that
// it is EncryptionRequired.
func newEncDelta(t testing.TB, tg target, db *sql.DB, keys pgcheckpoint.KeyProvider, cap int) (*pgcheckpoint.Checkpointer, string) {
	t.Helper()
	schema := newSchema(t, db)
	cp := encDelta(t, tg, db, schema, keys, cap)
	ensureWithPolicy(t, cp, pgcheckpoint.Options{MaxCheckpointsPerThread: cap})
	if s, err := cp.Encryption(testCtx(t)); err != nil || s != pgcheckpoint.EncryptionRequired {
		t.Fatalf("Encryption() of a new delta table made with keys = %v, %v; want required", s, err)
	}
	return cp, schema
}

// encEnv is one target's new encrypted delta table (cp, in schema, with keys), for one test.
type encEnv struct {
	tg     target
	db     *sql.DB
	ctx    context.Context
	keys   *pgcheckpoint.KeyRing
	cp     *pgcheckpoint.Checkpointer
	schema string
}

// forEncTargets runs body for every target, in parallel, each on a new encrypted delta table keeping
// cap checkpoints per thread (0: all).
func forEncTargets(t *testing.T, cap int, body func(t *testing.T, e encEnv)) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := encEnv{tg: tg, db: tg.open(t), ctx: testCtx(t), keys: newRing(t, "k1")}
			e.cp, e.schema = newEncDelta(t, tg, e.db, e.keys, cap)
			body(t, e)
		})
	}
}

// conversation is the i-th snapshot of a growing agent conversation: messages and tool calls that
// grow, an edit of an early message from step 5 on, a compaction of the messages at step 9.
func conversation(i int) string {
	var msgs, tools []string
	start := 0
	if i >= 9 {
		msgs = append(msgs, fmt.Sprintf(`{"role": "system", "summary": "%s compacted %d"}`, encSecret, i))
		start = 8
	}
	for m := start; m <= i; m++ {
		text := fmt.Sprintf("%s message %d", encSecret, m)
		if m == 1 && i >= 5 {
			text += " (edited)"
		}
		msgs = append(msgs, fmt.Sprintf(`{"role": "user", "content": %q}`, text), fmt.Sprintf(`{"role": "assistant", "content": "%s reply %d"}`, encSecret, m))
		if m%2 == 0 {
			tools = append(tools, fmt.Sprintf(`{"name": "search", "args": "%s %d"}`, encSecret, m))
		}
	}
	return fmt.Sprintf(`{"version": 2, "title": "%s title", "step": %d, "messages": [%s], "tool_calls": [%s]}`,
		encSecret, i, strings.Join(msgs, ", "), strings.Join(tools, ", "))
}

// sameJSON fails the test unless got and want are the same JSON value.
func sameJSON(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

// rawRows returns every stored value of the delta table cp in schema: heads' snapshots and arrays,
// items, as text.
func rawRows(t testing.TB, db *sql.DB, schema string) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT snapshot::text FROM "` + schema + `".cp_heads`,
		`SELECT arrays::text FROM "` + schema + `".cp_heads`,
		`SELECT item::text FROM "` + schema + `".cp_items`,
	} {
		rows, err := db.QueryContext(testCtx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestDeltaEncryptionRoundTrip writes growing conversations (several arrays, an edit, a compaction)
// into an encrypted delta table with retention, from a warm writer and a cold one (a new Checkpointer
// per put) in turn: every retained checkpoint and the latest read back as written, the raw rows hold
// no plaintext, and no head stores a chain hash.
func TestDeltaEncryptionRoundTrip(t *testing.T) {
	forEncTargets(t, 5, func(t *testing.T, e encEnv) {
		tg, db, ctx, keys, cp, schema := e.tg, e.db, e.ctx, e.keys, e.cp, e.schema
		want := map[string]string{}
		var ids []string
		for i := range 12 {
			for _, thread := range []string{"a", "b"} {
				w := cp
				if i%3 == 2 {
					w = encDelta(t, tg, db, schema, keys, 5) // cold: the state comes from the server
				}
				doc := conversation(i)
				id, err := w.Put(ctx, thread, []byte(doc))
				if err != nil {
					t.Fatalf("put %d into %s: %v", i, thread, err)
				}
				want[thread+"/"+id] = doc
				if thread == "a" {
					ids = append(ids, id)
				}
				got, err := cp.Latest(ctx, thread)
				if err != nil {
					t.Fatalf("latest of %s after put %d: %v", thread, i, err)
				}
				sameJSON(t, "latest", got.Snapshot, doc)
			}
		}
		// The retained heads (the cap keeps the newest 5) read back; the trimmed ones are gone.
		for k, id := range ids {
			got, err := cp.Get(ctx, "a", id)
			if k < len(ids)-5 {
				if !errors.Is(err, pgcheckpoint.ErrNotFound) {
					t.Fatalf("trimmed checkpoint %d: %v, want ErrNotFound", k, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("get %d: %v", k, err)
			}
			sameJSON(t, fmt.Sprintf("checkpoint %d", k), got.Snapshot, want["a/"+id])
		}
		for _, raw := range rawRows(t, db, schema) {
			if strings.Contains(raw, encSecret) {
				t.Fatalf("a raw row holds plaintext: %.200s", raw)
			}
			if strings.Contains(raw, `"h": "`) && strings.Count(raw, `"h": "`) != strings.Count(raw, `"h": "k1:`) {
				t.Fatalf("an encrypted head stores a chain hash not keyed by k1: %s", raw)
			}
		}
	})
}

// tamperFixture is an encrypted delta table whose threads a and b hold the same conversation (so their
// items share positions), for the tampering tests; ids are thread a's checkpoints, oldest first.
type tamperFixture struct {
	encEnv
	ids []string
}

func newTamperFixture(t *testing.T, e encEnv) tamperFixture {
	f := tamperFixture{encEnv: e}
	for i := range 4 {
		for _, thread := range []string{"a", "b"} {
			id, err := e.cp.Put(e.ctx, thread, []byte(conversation(i)))
			if err != nil {
				t.Fatal(err)
			}
			if thread == "a" {
				f.ids = append(f.ids, id)
			}
		}
	}
	return f
}

// tampered runs change (SQL statements as the superuser) in a transaction, reads thread a's newest
// checkpoint in it, and rolls back: the read must fail with want.
func (f tamperFixture) tampered(t *testing.T, want error, change ...string) {
	t.Helper()
	ctx := testCtx(t)
	tx, err := f.db.BeginTx(ctx, f.tg.callerTx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	s := strings.NewReplacer("{H}", `"`+f.schema+`".cp_heads`, "{I}", `"`+f.schema+`".cp_items`, "{ID}", f.ids[len(f.ids)-1], "{OLD}", f.ids[0])
	for _, c := range change {
		res, err := tx.ExecContext(ctx, s.Replace(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s changed no row", c)
		}
	}
	got, err := f.cp.WithTx(tx).Get(ctx, "a", f.ids[len(f.ids)-1])
	if !errors.Is(err, want) {
		t.Fatalf("after %q: get = %.200s, %v; want %v", change, got.Snapshot, err, want)
	}
}

// TestDeltaEncryptionTamper changes the stored rows of an encrypted delta table in every way a
// server-side attacker could: each read fails (ErrDecryptFailed), none returns a wrong snapshot.
func TestDeltaEncryptionTamper(t *testing.T) {
	// The newest head of thread a holds items in the messages slot (0) and the tool_calls slot (1);
	// P0 and P1 are two of its message positions, LAST the first span's last position.
	const (
		p0    = `(SELECT min(pos) FROM {I} WHERE thread_id = 'a')`
		p1    = `(SELECT min(pos) + 1 FROM {I} WHERE thread_id = 'a')`
		flip  = `jsonb_set(%s, '{d}', to_jsonb(CASE WHEN substr(%[1]s->>'d', 5, 1) = 'A' THEN overlay(%[1]s->>'d' placing 'B' from 5 for 1) ELSE overlay(%[1]s->>'d' placing 'A' from 5 for 1) END))`
		trunc = `jsonb_set(%s, '{d}', to_jsonb(left(%[1]s->>'d', length(%[1]s->>'d') - 8)))`
	)
	cases := map[string][]string{
		"item swapped with another position": {
			`UPDATE {I} AS i SET item = o.item FROM {I} AS o WHERE i.thread_id = 'a' AND i.pos = ` + p0 + ` AND o.thread_id = 'a' AND o.pos = ` + p1,
		},
		"item copied from another thread": {
			`UPDATE {I} AS i SET item = o.item FROM {I} AS o WHERE i.thread_id = 'a' AND i.pos = ` + p0 + ` AND o.thread_id = 'b' AND o.pos = i.pos`,
		},
		"head swapped with another head": {
			`UPDATE {H} AS h SET snapshot = o.snapshot FROM {H} AS o WHERE h.thread_id = 'a' AND h.checkpoint_id = '{ID}' AND o.thread_id = 'a' AND o.checkpoint_id = '{OLD}'`,
		},
		"head's ranges shortened": {
			`UPDATE {H} SET arrays = jsonb_set(arrays, '{messages,r,0,1}', to_jsonb((arrays#>>'{messages,r,0,1}')::bigint - 1)) WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"head's ranges and spans shortened": {
			`UPDATE {H} SET arrays = jsonb_set(arrays, '{messages,r,0,1}', to_jsonb((arrays#>>'{messages,r,0,1}')::bigint - 1)), hi[1] = hi[1] - 1 WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"span shortened (an item left out)": {
			`UPDATE {H} SET hi[1] = hi[1] - 1 WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"span repeated (an item twice)": {
			`UPDATE {H} SET lo = lo || lo[1], hi = hi || hi[1] WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"item's ciphertext flipped": {
			`UPDATE {I} SET item = ` + fmt.Sprintf(flip, "item") + ` WHERE thread_id = 'a' AND pos = ` + p0,
		},
		"head's ciphertext flipped": {
			`UPDATE {H} SET snapshot = ` + fmt.Sprintf(flip, "snapshot") + ` WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"item truncated": {
			`UPDATE {I} SET item = ` + fmt.Sprintf(trunc, "item") + ` WHERE thread_id = 'a' AND pos = ` + p1,
		},
		"head truncated": {
			`UPDATE {H} SET snapshot = ` + fmt.Sprintf(trunc, "snapshot") + ` WHERE thread_id = 'a' AND checkpoint_id = '{ID}'`,
		},
		"item deleted": {
			`DELETE FROM {I} WHERE thread_id = 'a' AND pos = ` + p1,
		},
	}
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		f := newTamperFixture(t, e)
		for name, change := range cases {
			t.Run(name, func(t *testing.T) { f.tampered(t, pgcheckpoint.ErrDecryptFailed, change...) })
		}
		got, err := f.cp.Get(testCtx(t), "a", f.ids[len(f.ids)-1])
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "untampered", got.Snapshot, conversation(len(f.ids)-1))
	})
}

// TestDeltaEncryptionKeys: a client whose ring lacks the key, or without keys, cannot read an encrypted
// delta table (ErrKeyMissing), and a keyless writer cannot write to it (ErrEncryptionRequired).
func TestDeltaEncryptionKeys(t *testing.T) {
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		tg, db, ctx, cp, schema := e.tg, e.db, e.ctx, e.cp, e.schema
		if _, err := cp.Put(ctx, "a", []byte(conversation(3))); err != nil {
			t.Fatal(err)
		}
		other := encDelta(t, tg, db, schema, newRing(t, "k2"), 0)
		if _, err := other.Latest(ctx, "a"); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
			t.Fatalf("a ring without the key: %v, want ErrKeyMissing", err)
		}
		keyless := encDelta(t, tg, db, schema, nil, 0)
		if _, err := keyless.Latest(ctx, "a"); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
			t.Fatalf("no keys: %v, want ErrKeyMissing", err)
		}
		for _, thread := range []string{"a", "new"} {
			if _, err := keyless.Put(ctx, thread, []byte(conversation(4))); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
				t.Fatalf("keyless put into %s: %v, want ErrEncryptionRequired", thread, err)
			}
		}
		got, err := cp.Latest(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "after the refused puts", got.Snapshot, conversation(3))
	})
}

// TestDeltaEncryptionFork forks an encrypted delta thread (with its history): the copies read back as
// the source, their ciphertexts differ from the source's (bound to the new thread), and later puts on
// both sides stay readable. A keyless fork is ErrKeyMissing and leaves the target empty.
func TestDeltaEncryptionFork(t *testing.T) {
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		tg, db, ctx, keys, cp, schema := e.tg, e.db, e.ctx, e.keys, e.cp, e.schema
		var ids []string
		for i := range 6 {
			id, err := cp.Put(ctx, "src", []byte(conversation(i)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		keyless := encDelta(t, tg, db, schema, nil, 0)
		if _, err := keyless.Fork(ctx, "src", ids[4], "bare", pgcheckpoint.ForkOptions{History: true}); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
			t.Fatalf("keyless fork: %v, want ErrKeyMissing", err)
		}
		for _, table := range []string{"cp_heads", "cp_items"} {
			if n := count(t, db, `"`+schema+`".`+table, "bare"); n != 0 {
				t.Fatalf("a refused fork left %d rows in %s", n, table)
			}
		}
		if _, err := cp.Fork(ctx, "src", ids[4], "dst", pgcheckpoint.ForkOptions{History: true}); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids[:5] {
			got, err := cp.Get(ctx, "dst", id)
			if err != nil {
				t.Fatalf("copy of checkpoint %d: %v", i, err)
			}
			sameJSON(t, "copy", got.Snapshot, conversation(i))
		}
		var same int
		err := db.QueryRowContext(ctx, `SELECT
  (SELECT count(*) FROM "`+schema+`".cp_heads AS s JOIN "`+schema+`".cp_heads AS d USING (checkpoint_id)
   WHERE s.thread_id = 'src' AND d.thread_id = 'dst' AND s.snapshot = d.snapshot)
+ (SELECT count(*) FROM "`+schema+`".cp_items AS s JOIN "`+schema+`".cp_items AS d USING (pos)
   WHERE s.thread_id = 'src' AND d.thread_id = 'dst' AND s.item = d.item)`).Scan(&same)
		if err != nil || same != 0 {
			t.Fatalf("%d copies kept the source's ciphertext (%v)", same, err)
		}
		if n := count(t, db, `"`+schema+`".cp_items`, "dst"); n == 0 {
			t.Fatal("the fork copied no items")
		}
		for _, thread := range []string{"src", "dst"} {
			doc := conversation(7)
			if _, err := encDelta(t, tg, db, schema, keys, 0).Put(ctx, thread, []byte(doc)); err != nil {
				t.Fatal(err)
			}
			got, err := cp.Latest(ctx, thread)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, thread+" after the fork", got.Snapshot, doc)
		}
	})
}

// TestDeltaEncryptionPlaintextRefused: a plaintext head, or a plaintext item under an encrypted head,
// in a table that requires encryption (left there by a superuser who lifted the constraints) is
// ErrEncryptionRequired to a client with keys.
func TestDeltaEncryptionPlaintextRefused(t *testing.T) {
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		tg, db, ctx, keys, cp, schema := e.tg, e.db, e.ctx, e.keys, e.cp, e.schema
		if _, err := cp.Put(ctx, "sealed", []byte(conversation(2))); err != nil {
			t.Fatal(err)
		}
		exec := func(q string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, strings.ReplaceAll(q, "{S}", `"`+schema+`"`)); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`ALTER TABLE {S}.cp_heads DROP CONSTRAINT cp_heads_encrypted`)
		exec(`ALTER TABLE {S}.cp_items DROP CONSTRAINT cp_items_encrypted`)
		if _, err := encDelta(t, tg, db, schema, nil, 0).Put(ctx, "plain", []byte(conversation(2))); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE {S}.cp_items SET item = '"plain item"' WHERE thread_id = 'sealed' AND pos = (SELECT min(pos) FROM {S}.cp_items WHERE thread_id = 'sealed')`)
		exec(`ALTER TABLE {S}.cp_heads ADD CONSTRAINT cp_heads_encrypted CHECK (COALESCE(snapshot->>'$' = 'enc1', false)) NOT VALID`)
		exec(`ALTER TABLE {S}.cp_items ADD CONSTRAINT cp_items_encrypted CHECK (COALESCE(item->>'$' = 'enc1', false)) NOT VALID`)
		exec(`UPDATE pg_constraint SET convalidated = true WHERE conname IN ('cp_heads_encrypted', 'cp_items_encrypted')
  AND connamespace = (SELECT oid FROM pg_namespace WHERE nspname = '` + schema + `')`)
		reader := encDelta(t, tg, db, schema, keys, 0) // reads the state afresh
		if s, err := reader.Encryption(ctx); err != nil || s != pgcheckpoint.EncryptionRequired {
			t.Fatalf("state %v, %v; want required", s, err)
		}
		for _, thread := range []string{"plain", "sealed"} {
			if got, err := reader.Latest(ctx, thread); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
				t.Fatalf("%s: %.100s, %v; want ErrEncryptionRequired", thread, got.Snapshot, err)
			}
		}
	})
}

// TestDeltaEncryptionConvertRefused: Convert refuses an encrypted source, delta or full.
func TestDeltaEncryptionConvertRefused(t *testing.T) {
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		tg, db, ctx, keys, cp, schema := e.tg, e.db, e.ctx, e.keys, e.cp, e.schema
		full, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "fullenc", Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		if err := full.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		for _, w := range []*pgcheckpoint.Checkpointer{cp, full} {
			if _, err := w.Put(ctx, "a", []byte(conversation(3))); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			from string
			to   pgcheckpoint.Storage
		}{{"cp", pgcheckpoint.StorageFull}, {"fullenc", pgcheckpoint.StorageDelta}} {
			_, err := pgcheckpoint.Convert(ctx, db, pgcheckpoint.ConvertOptions{Dialect: tg.dialect, Schema: schema, From: c.from, To: c.from + "_out", ToStorage: c.to})
			if !errors.Is(err, pgcheckpoint.ErrInvalidOptions) || !strings.Contains(err.Error(), "encrypted tables are not converted") {
				t.Fatalf("convert of encrypted %s: %v, want ErrInvalidOptions", c.from, err)
			}
		}
	})
}

// TestDeltaEncryptionBytesPerPut measures what a growing conversation (20 puts, each adding two
// messages and, every other put, a tool call) stores per put, warm (one Checkpointer) and cold (a new
// Checkpointer per put), plaintext and encrypted: every writer recognises the head's prefix (a cold
// encrypted one by the chain hash keyed under its key) and stores each element once. It checks the
// item counts and logs the bytes.
func TestDeltaEncryptionBytesPerPut(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	ctx := testCtx(t)
	const puts = 20
	items := map[string]int{}
	for _, sealed := range []bool{false, true} {
		for _, cold := range []bool{false, true} {
			var keys pgcheckpoint.KeyProvider
			if sealed {
				keys = newRing(t, "k1")
			}
			schema := newSchema(t, db)
			cp := encDelta(t, tg, db, schema, keys, 0)
			if err := cp.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range puts {
				w := cp
				if cold {
					w = encDelta(t, tg, db, schema, keys, 0)
				}
				if _, err := w.Put(ctx, "a", []byte(growing(i))); err != nil {
					t.Fatal(err)
				}
			}
			var n, headBytes, itemBytes int64
			err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM "`+schema+`".cp_items),
  (SELECT sum(octet_length(snapshot::text) + octet_length(arrays::text)) FROM "`+schema+`".cp_heads),
  (SELECT COALESCE(sum(octet_length(item::text)), 0) FROM "`+schema+`".cp_items)`).Scan(&n, &headBytes, &itemBytes)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("sealed=%v cold=%v", sealed, cold)
			items[name] = int(n)
			t.Logf("%-24s %4d items, %7d bytes per put (heads %6d, items %7d in all)", name, n, (headBytes+itemBytes)/puts, headBytes, itemBytes)
		}
	}
	appended := 2*puts + (puts+1)/2 // elements a writer that recognises the prefix stores: each once
	for name, n := range items {
		if n != appended {
			t.Errorf("%s stored %d items, want %d", name, n, appended)
		}
	}
}

// growing is the i-th snapshot of TestDeltaEncryptionBytesPerPut: messages 0..i (two each, about 120
// bytes) and a tool call per even step, appended only.
func growing(i int) string {
	var msgs, tools []string
	for m := 0; m <= i; m++ {
		msgs = append(msgs, fmt.Sprintf(`{"role": "user", "content": "question %d: what does the next step of the plan need from the tool?"}`, m),
			fmt.Sprintf(`{"role": "assistant", "content": "answer %d: it needs the search results for the query, ranked by date."}`, m))
		if m%2 == 0 {
			tools = append(tools, fmt.Sprintf(`{"name": "search", "args": {"q": "step %d", "limit": 10}}`, m))
		}
	}
	return fmt.Sprintf(`{"version": 1, "step": %d, "messages": [%s], "tool_calls": [%s]}`, i, strings.Join(msgs, ", "), strings.Join(tools, ", "))
}

// TestFullEncryptionFork forks an encrypted full table's thread, whose re-binding shares its code with
// the delta table's: the copy reads back, its ciphertext differs, and a keyless fork is ErrKeyMissing
// and writes nothing.
func TestFullEncryptionFork(t *testing.T) {
	forEncTargets(t, 0, func(t *testing.T, e encEnv) {
		open := func(keys pgcheckpoint.KeyProvider) *pgcheckpoint.Checkpointer {
			cp, err := pgcheckpoint.New(e.db, pgcheckpoint.Options{Dialect: e.tg.dialect, Schema: e.schema, Table: "full", Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			return cp
		}
		full := open(e.keys)
		if err := full.EnsureSchema(e.ctx); err != nil {
			t.Fatal(err)
		}
		id, err := full.Put(e.ctx, "src", []byte(conversation(3)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open(nil).Fork(e.ctx, "src", id, "bare", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
			t.Fatalf("keyless fork: %v, want ErrKeyMissing", err)
		}
		if n := count(t, e.db, `"`+e.schema+`".full`, "bare"); n != 0 {
			t.Fatalf("a refused fork left %d rows", n)
		}
		if _, err := full.Fork(e.ctx, "src", id, "dst", pgcheckpoint.ForkOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := full.Get(e.ctx, "dst", id)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "copy", got.Snapshot, conversation(3))
		var same bool
		if err := e.db.QueryRowContext(e.ctx, `SELECT s.snapshot = d.snapshot FROM "`+e.schema+`".full AS s, "`+e.schema+`".full AS d
WHERE s.thread_id = 'src' AND d.thread_id = 'dst'`).Scan(&same); err != nil || same {
			t.Fatalf("the copy kept the source's ciphertext (%v)", err)
		}
	})
}
