package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// The storage-shape question: keep the envelope as a JSON object in the JSONB snapshot column
// (the shared schema, the TypeScript package's table) or store nonce||ciphertext||tag in a bytea column
// (no base64: about a quarter fewer bytes). TestEncryptionStorageShape stores, for each fixture size,
// the plaintext snapshot in JSONB, its envelope in JSONB and the envelope's raw bytes in bytea, each in
// a scratch table of the checkpointer's columns (compression included), and logs the stored size of the
// value (pg_column_size) and the table's total size per row (pg_total_relation_size: heap, TOAST and
// indexes). docs/benchmarks.md ("Storage shape") has the figures:
//
//	go test -C integration -count=1 -run TestEncryptionStorageShape -v .
//
// It asserts only what holds whatever the load or the server's settings: the envelope's form, that it
// holds no plaintext, that it opens to the bytes put, and that ciphertext does not compress (bytea holds
// at least the ciphertext, the envelope more than the bytea).

// shapeRows is how many copies of a value each scratch table holds, so that a page's and an index's
// fixed overhead spreads over enough rows to read a per-row size.
var shapeRows = map[int]int{1 << 10: 512, 64 << 10: 64, 1 << 20: 8}

// shapeSizes are one fixture's stored sizes in bytes: each value (pg_column_size) and each table per row.
type shapeSizes struct {
	plainValue, envValue, byteaValue int64
	plainRow, envRow, byteaRow       int64
}

// TestEncryptionStorageShape logs, per fixture, the stored sizes of the three shapes (see above) and
// checks the facts that hold whatever the load: the envelope's form and that ciphertext is incompressible.
func TestEncryptionStorageShape(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	ctx := testCtx(t)
	schema := newSchema(t, db)
	q := func(name string) string { return `"` + schema + `"."` + name + `"` }
	plainCP := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "shape_plain"})
	sealCP := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "shape_sealed", Keys: benchKeyRing(t)})
	t.Log("| snapshot | plaintext JSONB value | envelope JSONB value | bytea value | plaintext JSONB per row | envelope JSONB per row | bytea per row |")
	t.Log("|---|---|---|---|---|---|---|")
	for _, sz := range benchSizes {
		snap := fixture(t, sz.size)
		thread := "shape-" + sz.name
		if _, err := plainCP.Put(ctx, thread, snap); err != nil {
			t.Fatal(err)
		}
		if _, err := sealCP.Put(ctx, thread, snap); err != nil {
			t.Fatal(err)
		}
		env, err := storedSnapshot(ctx, db, q("shape_sealed"), thread)
		if err != nil {
			t.Fatal(err)
		}
		ct := checkEnvelope(t, env, snap)
		if c, err := sealCP.Latest(ctx, thread); err != nil || !bytes.Equal(c.Snapshot, snap) {
			t.Fatalf("%s: the encrypted Latest is %d bytes (%v), want the %d bytes put", sz.name, len(c.Snapshot), err, len(snap))
		}
		n := shapeRows[sz.size]
		var s shapeSizes
		s.plainValue, s.plainRow = storeCopies(t, ctx, db, q("shape_plain"), q("jsonb_plain_"+sz.name), "jsonb", string(snap), n)
		s.envValue, s.envRow = storeCopies(t, ctx, db, q("shape_plain"), q("jsonb_envelope_"+sz.name), "jsonb", string(env), n)
		s.byteaValue, s.byteaRow = storeCopies(t, ctx, db, q("shape_plain"), q("bytea_"+sz.name), "bytea", ct, n)
		if s.byteaValue < int64(len(ct)) || s.envValue <= s.byteaValue {
			t.Errorf("%s: ciphertext %d bytes stored as bytea in %d bytes and as an envelope in %d: ciphertext compressed?", sz.name, len(ct), s.byteaValue, s.envValue)
		}
		t.Logf("| %s | %d | %d | %d | %d | %d | %d |", sz.name, s.plainValue, s.envValue, s.byteaValue, s.plainRow, s.envRow, s.byteaRow)
	}
}

// checkEnvelope checks that env, as the server stores it, is exactly {"$":"enc1","d":...,"k":"bench-1"}
// whose ciphertext is the nonce, plain's length and the tag, that no window of plain appears in env or
// in the ciphertext, and returns the ciphertext (nonce||ciphertext||tag).
func checkEnvelope(t *testing.T, env, plain []byte) []byte {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(env, &m); err != nil || len(m) != 3 || m["$"] != "enc1" || m["k"] != "bench-1" {
		t.Fatalf("stored envelope %.80s... is not {\"$\":\"enc1\",\"d\":...,\"k\":\"bench-1\"} (%v)", env, err)
	}
	ct, err := base64.StdEncoding.DecodeString(m["d"])
	if err != nil {
		t.Fatalf("the envelope's d is not standard base64: %v", err)
	}
	const nonce, tag = 12, 16
	if len(ct) != nonce+len(plain)+tag {
		t.Fatalf("ciphertext of %d bytes for %d bytes of plaintext, want %d", len(ct), len(plain), nonce+len(plain)+tag)
	}
	const window, windows = 24, 64
	for i := range windows {
		w := plain[i*(len(plain)-window)/(windows-1):][:window]
		if bytes.Contains(env, w) || bytes.Contains(ct, w) {
			t.Fatalf("the envelope holds plaintext: %q", w)
		}
	}
	return ct
}

// storeCopies creates table with like's columns and compression (snapshot as typ), inserts n copies of
// value as rows of one thread, and returns the stored size of one value (pg_column_size) and the
// table's total size, heap, TOAST and indexes, per row.
func storeCopies(t *testing.T, ctx context.Context, db *sql.DB, like, table, typ string, value any, n int) (valueSize, rowSize int64) {
	t.Helper()
	stmts := []string{`CREATE TABLE ` + table + ` (LIKE ` + like + ` INCLUDING DEFAULTS INCLUDING COMPRESSION, PRIMARY KEY (thread_id, checkpoint_id))`}
	if typ != "jsonb" { // a new type takes the default compression: give it like's again
		stmts = append(stmts, `ALTER TABLE `+table+` ALTER COLUMN snapshot TYPE `+typ+` USING NULL`,
			`ALTER TABLE `+table+` ALTER COLUMN snapshot SET COMPRESSION `+compressionOf(t, ctx, db, like))
	}
	stmts = append(stmts, fmt.Sprintf(`INSERT INTO %s (thread_id, checkpoint_id, snapshot, version, size_bytes)
SELECT 'shape', lpad(g::text, 8, '0'), $1::%s, 2, 0 FROM generate_series(1, %d) AS g`, table, typ, n))
	for i, s := range stmts {
		var args []any
		if i == len(stmts)-1 {
			args = []any{value}
		}
		if _, err := db.ExecContext(ctx, s, args...); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var total int64
	err := db.QueryRowContext(ctx, `SELECT max(pg_column_size(snapshot)), pg_total_relation_size($1::regclass) FROM `+table, table).Scan(&valueSize, &total)
	if err != nil {
		t.Fatal(err)
	}
	return valueSize, total / int64(n)
}

// compressionOf is the compression method of table's snapshot column, as SET COMPRESSION names it.
func compressionOf(t *testing.T, ctx context.Context, db *sql.DB, table string) string {
	t.Helper()
	var c string
	err := db.QueryRowContext(ctx, `SELECT attcompression FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'snapshot'`, table).Scan(&c)
	if err != nil {
		t.Fatal(err)
	}
	switch c {
	case "l":
		return "lz4"
	case "p":
		return "pglz"
	}
	return "default"
}
