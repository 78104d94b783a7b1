package integration

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// testKeys returns a key ring of the ids, the first current; each id's secret is fixed (its bytes
// repeated), so two rings that name an id agree on it.
func testKeys(t testing.TB, ids ...string) *pgcheckpoint.KeyRing {
	t.Helper()
	var keys []pgcheckpoint.Key
	for _, id := range ids {
		k, err := pgcheckpoint.NewKey(id, bytes.Repeat([]byte(id), pgcheckpoint.KeySize)[:pgcheckpoint.KeySize])
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	r, err := pgcheckpoint.NewKeyRing(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConformanceEncrypted runs the public contract suite with Options.Keys for every driver x
// dialect, and for Memory: encryption changes nothing a Store promises.
func TestConformanceEncrypted(t *testing.T) {
	keys := testKeys(t, "k1")
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				opts.Keys = keys
				return tg.newCheckpointer(t, db, opts)
			})
		})
	}
	t.Run("memory", func(t *testing.T) {
		pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
			opts.Keys = keys
			return pgcheckpoint.NewMemory(opts)
		})
	})
}

// encFixture is one encrypted full table of a test: its name, a client with keys, and raw access.
type encFixture struct {
	t     *testing.T
	tg    target
	db    *sql.DB
	table string // quoted, qualified
	opts  pgcheckpoint.Options
	cp    *pgcheckpoint.Checkpointer
}

func newEncFixture(t *testing.T, tg target) *encFixture {
	db := tg.open(t)
	opts := pgcheckpoint.Options{Schema: newSchema(t, db), Table: "secrets", Dialect: tg.dialect, Keys: testKeys(t, "k1")}
	f := &encFixture{t: t, tg: tg, db: db, table: `"` + opts.Schema + `".secrets`, opts: opts}
	f.cp = f.client(func(o *pgcheckpoint.Options) {})
	if err := f.cp.EnsureSchema(testCtx(t)); err != nil {
		t.Fatalf("EnsureSchema: %v", err)
	}
	return f
}

// client is a Checkpointer on the fixture's table with the fixture's options changed by edit.
func (f *encFixture) client(edit func(*pgcheckpoint.Options)) *pgcheckpoint.Checkpointer {
	f.t.Helper()
	o := f.opts
	edit(&o)
	cp, err := pgcheckpoint.New(f.db, o)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return cp
}

func (f *encFixture) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.db.ExecContext(testCtx(f.t), query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
}

// raw is the stored snapshot column of a row as text.
func (f *encFixture) raw(thread, id string) string {
	f.t.Helper()
	var s string
	err := f.db.QueryRowContext(testCtx(f.t), `SELECT snapshot::text FROM `+f.table+` WHERE thread_id = $1 AND checkpoint_id = $2`, thread, id).Scan(&s)
	if err != nil {
		f.t.Fatalf("raw row: %v", err)
	}
	return s
}

// TestEncryptionFull covers encryption at rest on a full table, every driver x dialect: what is
// stored, what tampering gives, keys missing or wrong, plaintext where the table requires ciphertext,
// and fork.
func TestEncryptionFull(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			f := newEncFixture(t, tg)
			ctx := testCtx(t)
			if s, err := f.cp.Encryption(ctx); err != nil || s != pgcheckpoint.EncryptionRequired {
				t.Fatalf("Encryption after EnsureSchema with keys on a new table = %v, %v", s, err)
			}
			snap := func(thread string, i int) []byte {
				return fmt.Appendf(nil, `{"version":2,"messages":["top secret %s %d"]}`, thread, i)
			}
			ids := map[string][]string{}
			for _, th := range []string{"a", "b"} {
				for i := range 3 {
					id, err := f.cp.Put(ctx, th, snap(th, i))
					if err != nil {
						t.Fatalf("put: %v", err)
					}
					ids[th] = append(ids[th], id)
				}
			}
			// Stored: envelopes, no plaintext; read back: the snapshot, with the plaintext metadata.
			for th, list := range ids {
				for i, id := range list {
					if raw := f.raw(th, id); strings.Contains(raw, "secret") || !strings.HasPrefix(raw, `{"$": "enc1", "d": "`) {
						t.Fatalf("stored %s", raw)
					}
					cp, err := f.cp.Get(ctx, th, id)
					if err != nil || !bytes.Equal(cp.Snapshot, snap(th, i)) || cp.Version != 2 || int(cp.SizeBytes) != len(snap(th, i)) {
						t.Fatalf("Get(%s, %s) = %+v %s, %v", th, id, cp, cp.Snapshot, err)
					}
				}
			}
			expect := func(what string, err, want error) {
				t.Helper()
				if !errors.Is(err, want) {
					t.Fatalf("%s: %v, want %v", what, err, want)
				}
				if err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k1"), 16))[:12]) {
					t.Fatalf("%s: the error holds key material: %v", what, err)
				}
			}
			// Tampering: a ciphertext copied to another thread, to another checkpoint of its thread,
			// altered, cut short.
			a0, a1, b0 := ids["a"][0], ids["a"][1], ids["b"][0]
			f.exec(`UPDATE `+f.table+` SET snapshot = (SELECT snapshot FROM `+f.table+` WHERE thread_id = 'b' AND checkpoint_id = $1) WHERE thread_id = 'a' AND checkpoint_id = $2`, b0, a0)
			_, err := f.cp.Get(ctx, "a", a0)
			expect("a ciphertext moved from thread b", err, pgcheckpoint.ErrDecryptFailed)
			f.exec(`UPDATE `+f.table+` SET snapshot = (SELECT snapshot FROM `+f.table+` WHERE thread_id = 'a' AND checkpoint_id = $1) WHERE thread_id = 'a' AND checkpoint_id = $2`, a0, a1)
			_, err = f.cp.Get(ctx, "a", a1)
			expect("a ciphertext moved between checkpoints", err, pgcheckpoint.ErrDecryptFailed)
			a2 := ids["a"][2]
			good := f.raw("a", a2)
			flipped := []byte(good)
			i := strings.Index(good, `"d": "`) + len(`"d": "`) + 20
			flipped[i] = map[bool]byte{true: 'B', false: 'A'}[good[i] == 'A']
			f.exec(`UPDATE `+f.table+` SET snapshot = $1::text::jsonb WHERE thread_id = 'a' AND checkpoint_id = $2`, string(flipped), a2)
			_, err = f.cp.Latest(ctx, "a")
			expect("a flipped character", err, pgcheckpoint.ErrDecryptFailed)
			cut := strings.Replace(good, good[i:i+8], "", 1)
			f.exec(`UPDATE `+f.table+` SET snapshot = $1::text::jsonb WHERE thread_id = 'a' AND checkpoint_id = $2`, cut, a2)
			_, err = f.cp.Latest(ctx, "a")
			expect("a truncated ciphertext", err, pgcheckpoint.ErrDecryptFailed)
			f.exec(`UPDATE `+f.table+` SET snapshot = $1::text::jsonb WHERE thread_id = 'a' AND checkpoint_id = $2`, good, a2)
			if _, err := f.cp.Latest(ctx, "a"); err != nil {
				t.Fatalf("restored: %v", err)
			}

			// Keys: none, a ring without k1, another secret under the id k1.
			keyless := f.client(func(o *pgcheckpoint.Options) { o.Keys = nil })
			_, err = keyless.Latest(ctx, "b")
			expect("a client without keys", err, pgcheckpoint.ErrKeyMissing)
			_, err = f.client(func(o *pgcheckpoint.Options) { o.Keys = testKeys(t, "k2") }).Latest(ctx, "b")
			expect("a ring without k1", err, pgcheckpoint.ErrKeyMissing)
			impostorKey, _ := pgcheckpoint.NewKey("k1", bytes.Repeat([]byte{9}, pgcheckpoint.KeySize))
			impostor, _ := pgcheckpoint.NewKeyRing(impostorKey)
			_, err = f.client(func(o *pgcheckpoint.Options) { o.Keys = impostor }).Latest(ctx, "b")
			expect("another secret under k1", err, pgcheckpoint.ErrDecryptFailed)
			// A list needs no key.
			if l, err := keyless.List(ctx, "b", pgcheckpoint.ListOptions{}); err != nil || len(l) != 3 {
				t.Fatalf("keyless List = %d, %v", len(l), err)
			}

			// Plaintext: a keyless writer is refused by the server; a plaintext row smuggled into the
			// table (constraint dropped and put back, as a superuser could) is refused by readers.
			_, err = keyless.Put(ctx, "c", []byte(`{"plain":true}`))
			expect("a keyless put into an encrypted table", err, pgcheckpoint.ErrEncryptionRequired)
			if n := count(t, f.db, f.table, "c"); n != 0 {
				t.Fatalf("the refused put left %d rows", n)
			}
			f.exec(`ALTER TABLE ` + f.table + ` DROP CONSTRAINT secrets_encrypted`)
			plainID, err := keyless.Put(ctx, "c", []byte(`{"plain":true}`))
			if err != nil {
				t.Fatalf("keyless put without the constraint: %v", err)
			}
			f.exec(`ALTER TABLE ` + f.table + ` ADD CONSTRAINT secrets_encrypted CHECK (COALESCE(snapshot->>'$' = 'enc1', false)) NOT VALID`)
			// While it is NOT VALID (being encrypted) a plaintext row still reads.
			f.cp = f.client(func(o *pgcheckpoint.Options) {})
			if cp, err := f.cp.Get(ctx, "c", plainID); err != nil || string(cp.Snapshot) != `{"plain": true}` {
				t.Fatalf("plaintext row while migrating: %s, %v", cp.Snapshot, err)
			}
			f.exec(`UPDATE pg_constraint SET convalidated = true WHERE conname = 'secrets_encrypted' AND conrelid = $1::regclass`, f.table)
			f.cp = f.client(func(o *pgcheckpoint.Options) {})
			_, err = f.cp.Get(ctx, "c", plainID)
			expect("a plaintext row in a table that requires encryption", err, pgcheckpoint.ErrEncryptionRequired)

			// Fork re-binds its copies to the new thread; without keys it is refused.
			if _, err := f.cp.Fork(ctx, "b", ids["b"][2], "b2", pgcheckpoint.ForkOptions{History: true}); err != nil {
				t.Fatalf("Fork: %v", err)
			}
			for i, id := range ids["b"] {
				cp, err := f.cp.Get(ctx, "b2", id)
				if err != nil || !bytes.Equal(cp.Snapshot, snap("b", i)) {
					t.Fatalf("forked %s: %s, %v", id, cp.Snapshot, err)
				}
				if f.raw("b2", id) == f.raw("b", id) {
					t.Fatal("the fork's copy has the source's ciphertext")
				}
			}
			_, err = keyless.Fork(ctx, "b", ids["b"][2], "b3", pgcheckpoint.ForkOptions{})
			expect("a keyless fork", err, pgcheckpoint.ErrKeyMissing)
			if n := count(t, f.db, f.table, "b3"); n != 0 {
				t.Fatalf("the refused fork left %d rows", n)
			}
		})
	}
}

// TestEncryptionKeysTurnOnWriting shows that keys seal every write even where the table does not
// require encryption yet, that EnsureSchema leaves a table with rows as it is (Rekey encrypts it), and
// that such a mixed table reads with keys.
func TestEncryptionKeysTurnOnWriting(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			opts := pgcheckpoint.Options{Schema: newSchema(t, db), Dialect: tg.dialect}
			plain := tg.newCheckpointer(t, db, opts)
			oldID, err := plain.Put(ctx, "t", []byte(`{"step":1}`))
			if err != nil {
				t.Fatal(err)
			}
			opts.Keys = testKeys(t, "k1")
			keyed := tg.newCheckpointer(t, db, opts) // EnsureSchema on a table with a row
			if s, err := keyed.Encryption(ctx); err != nil || s != pgcheckpoint.EncryptionNone {
				t.Fatalf("Encryption = %v, %v; EnsureSchema must not mark a table with rows", s, err)
			}
			newID, err := keyed.Put(ctx, "t", []byte(`{"step":2}`))
			if err != nil {
				t.Fatal(err)
			}
			var raw string
			if err := db.QueryRowContext(ctx, `SELECT snapshot::text FROM "`+opts.Schema+`".ziro_checkpoints WHERE checkpoint_id = $1`, newID).Scan(&raw); err != nil || !strings.HasPrefix(raw, `{"$": "enc1"`) {
				t.Fatalf("a keyed put into a plain table stored %s, %v", raw, err)
			}
			for id, want := range map[string]string{oldID: `{"step": 1}`, newID: `{"step":2}`} {
				if cp, err := keyed.Get(ctx, "t", id); err != nil || string(cp.Snapshot) != want {
					t.Fatalf("Get(%s) = %s, %v", id, cp.Snapshot, err)
				}
			}
			if _, err := plain.Get(ctx, "t", newID); !errors.Is(err, pgcheckpoint.ErrKeyMissing) {
				t.Fatalf("keyless Get of a sealed row: %v", err)
			}
		})
	}
}
