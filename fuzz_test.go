package pgcheckpoint

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz tests check input handling against independent oracles (a regular expression, encoding/json).
// Their seed corpus runs with every `go test`; `go test -fuzz=FuzzSnapshot` (etc.) explores further.

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzIdentifier: New accepts a schema/table pair exactly when both are plain identifiers of at most 63
// bytes (the derived index name included), and whatever it accepts comes back quoted as it was.
func FuzzIdentifier(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"public", "ziro_checkpoints"}, {"a", "B_1"}, {"_", "_"}, {"1a", "t"}, {"s", "t-x"},
		{"s", `t"; DROP TABLE x; --`}, {"s", "t t"}, {"é", "t"}, {"s", "t\x00"}, {strings.Repeat("s", 63), "t"},
		{strings.Repeat("s", 64), "t"}, {"s", strings.Repeat("t", 48)}, {"s", strings.Repeat("t", 49)}, {"select", "from"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, schema, table string) {
		s, tb := orDefault(schema, DefaultSchema), orDefault(table, DefaultTable)
		want := identifierRE.MatchString(s) && len(s) <= 63 && identifierRE.MatchString(tb) && len(tb+seqIndexSuffix) <= 63
		if got := validIdentifier(schema); got != (identifierRE.MatchString(schema) && len(schema) <= 63) {
			t.Fatalf("validIdentifier(%q) = %v", schema, got)
		}
		_, err := New(offlineDB, Options{Schema: schema, Table: table})
		if (err == nil) != want {
			t.Fatalf("New(schema %q, table %q): err = %v, want valid = %v", schema, table, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidIdentifier) {
				t.Fatalf("New(schema %q, table %q): err = %v, want ErrInvalidIdentifier", schema, table, err)
			}
			return
		}
		for _, d := range []Dialect{PostgreSQL, CockroachDB} {
			ddl, err := SchemaSQL(d, schema, table)
			if err != nil {
				t.Fatalf("SchemaSQL(%s, %q, %q): %v", d.Name(), schema, table, err)
			}
			if !strings.Contains(ddl, `"`+s+`"."`+tb+`"`) {
				t.Fatalf("SchemaSQL(%s, %q, %q) does not name the table %q.%q:\n%s", d.Name(), schema, table, s, tb, ddl)
			}
		}
	})
}

// FuzzSnapshot: Put (on Memory, which shares the Checkpointer's validation) accepts a snapshot exactly
// when encoding/json and the contract's rules do: valid UTF-8 JSON, an object, no NUL character and no
// lone surrogate in any string (JSONB refuses both), a top-level "version" (the last one, as JSONB keeps)
// that is a number with an integer value within int32. An accepted snapshot echoes its version and size.
func FuzzSnapshot(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"version": 2}`, `{"version": -2147483648}`, `{"version": 2147483648}`, `{"version": 1.5}`, `{"version": 1e1}`,
		`{"version": 1E400}`, `{"version": "1"}`, `{"version": null}`, `{"version": true}`, `{"version": [1]}`, `{"version": -0}`,
		`{"version": "x", "version": 7}`, `{"version": 7, "version": "x"}`, `{"vers\u0069on": 5}`, `{"a": {"version": "x"}}`,
		`{"a": "\u0000"}`, `{"\u0000": 1}`, `{"a": "\\u0000"}`, `{"a": "\ud83d\ude00"}`, `{"a": "\ud83d"}`, `{"a": "\ude00"}`,
		`{"a": "\ud83d\u0041"}`, `{"a": "\ud83d\\ude00"}`, `[]`, `1`, `"s"`, `null`, ` {"a": 1} `, `{"a": 1}x`, `{"a":`, "{\"a\": \"\xff\"}",
		`{"version": 2147483647.0}`, `{"version": 0.0000001e7}`, `{"a": 1e131071}`, `{"a": 1e131072}`, `{"a": 1e-16384}`,
		`{"a": 1e-16383}`, `{"a": 0e1073741823}`, `{"a": 1, "a": 1e131072}`, `{"a": -0.50e-16382}`, `{"a": [1, {"version": 1}], "version": 3}`, "\ufeff{}",
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		m := NewMemory(Options{MaxSnapshotBytes: NoLimit})
		wantVersion, why := snapshotOracle(b)
		id, err := m.Put(ctx, "t", b)
		if why != "" {
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("Put(%q): err = %v, want ErrInvalidSnapshot (%s)", b, err, why)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put(%q): %v, want it accepted", b, err)
		}
		cp, err := m.Get(ctx, "t", id)
		if err != nil {
			t.Fatalf("Get after Put(%q): %v", b, err)
		}
		if cp.Version != wantVersion || int(cp.SizeBytes) != len(b) || !bytes.Equal(cp.Snapshot, b) {
			t.Fatalf("Put(%q): stored version %d, size %d; want version %d, size %d", b, cp.Version, cp.SizeBytes, wantVersion, len(b))
		}
	})
}

// snapshotOracle decides a snapshot with encoding/json and says why it is bad ("" when it is not).
func snapshotOracle(b []byte) (version int32, why string) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return 0, "not UTF-8 JSON"
	}
	var top map[string]json.RawMessage // encoding/json, like JSONB, keeps the last duplicate key
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return 0, "not an object"
	}
	var doc any
	_ = json.Unmarshal(b, &doc)
	if hasNUL(doc) {
		return 0, "a NUL character"
	}
	if loneSurrogate(b) {
		return 0, "a lone surrogate"
	}
	grow, ok := numbersGrow(b)
	if !ok {
		return 0, "a number beyond PostgreSQL numeric's range"
	}
	if grow > 0 && len(b)+grow > maxPrintedBytes {
		return 0, "too large as PostgreSQL prints it"
	}
	raw, ok := top["version"]
	if !ok {
		return 0, ""
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, "version is not a number"
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, "version is not an integer within int32"
	}
	return int32(v), ""
}

// numbersGrow sums how much longer the numbers of b (valid JSON) are as PostgreSQL prints them
// (refPGNumber), every number counted, duplicate keys' too (JSONB parses them all before it keeps the
// last), and reports false when one is beyond numeric's range.
func numbersGrow(b []byte) (grow int, ok bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			return grow, true
		}
		if n, isNum := tok.(json.Number); isNum {
			printed, bad := refPGNumber(string(n))
			if bad != "" {
				return 0, false
			}
			grow += printed - len(n)
		}
	}
}

func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// loneSurrogate reports a \uD800-\uDFFF escape that is not part of a high+low pair of adjacent escapes.
// Backslashes occur in valid JSON only inside strings, so escapes can be read off the raw text in order.
func loneSurrogate(b []byte) bool {
	type escape struct{ at, end, unit int } // unit -1: not a \u escape
	var escs []escape
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			escs = append(escs, escape{i, i + 2, -1})
			i++
			continue
		}
		u := 0
		for _, c := range b[i+2 : i+6] {
			u = u*16 + strings.IndexByte("0123456789abcdef", c|0x20)
		}
		escs = append(escs, escape{i, i + 6, u})
		i += 5
	}
	high := func(u int) bool { return u >= 0xd800 && u <= 0xdbff }
	low := func(u int) bool { return u >= 0xdc00 && u <= 0xdfff }
	for k := 0; k < len(escs); k++ {
		switch u := escs[k].unit; {
		case high(u):
			if k+1 == len(escs) || escs[k+1].at != escs[k].end || !low(escs[k+1].unit) {
				return true
			}
			k++
		case low(u):
			return true
		}
	}
	return false
}

// FuzzCheckpointID: any string as a checkpoint id (Get, Delete, List's cursor, PutAfter's head) never
// panics: a malformed one is "not found" for Get, nothing for Delete, ErrInvalidCheckpointID for a
// cursor and ErrConflict for a head. The Checkpointer decides malformed ids before touching the database
// (it runs here on a nil *sql.DB: any query would panic).
func FuzzCheckpointID(f *testing.F) {
	for _, s := range []string{
		"", "x", "01939e7a-8f6e-7c3b-9b1a-1f2e3d4c5b6a", "01939E7A-8F6E-7C3B-9B1A-1F2E3D4C5B6A",
		"{01939e7a-8f6e-7c3b-9b1a-1f2e3d4c5b6a}", "01939e7a8f6e7c3b9b1a1f2e3d4c5b6a", "urn:uuid:01939e7a-8f6e-7c3b-9b1a-1f2e3d4c5b6a",
		"01939e7a-8f6e-7c3b-9b1a-1f2e3d4c5b6", "'; DROP TABLE x; --", strings.Repeat("f", 36), "\x00", "é",
		"01939e7a-8f6e-7c3b-9b1a-1f2e3d4c5b6g", "01939e7a_8f6e_7c3b_9b1a_1f2e3d4c5b6a",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, id string) {
		m := NewMemory(Options{})
		a, err := m.Put(ctx, "t", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		canon, wellFormed := canonicalID(id)
		got, err := m.Get(ctx, "t", id)
		switch {
		case canon == a:
			if err != nil || got.ID != a {
				t.Fatalf("Memory.Get(%q) = %q, %v; want %s", id, got.ID, err, a)
			}
		case !wellFormed && !errors.Is(err, ErrInvalidCheckpointID):
			t.Fatalf("Memory.Get(%q): err = %v, want ErrInvalidCheckpointID", id, err)
		case wellFormed && !errors.Is(err, ErrNotFound):
			t.Fatalf("Memory.Get(%q): err = %v, want ErrNotFound", id, err)
		}
		if _, err := m.List(ctx, "t", ListOptions{Before: id}); id != "" && !wellFormed && !errors.Is(err, ErrInvalidCheckpointID) {
			t.Fatalf("Memory.List(before %q): err = %v, want ErrInvalidCheckpointID", id, err)
		}
		_, err = m.PutAfter(ctx, "t", id, []byte(`{}`))
		switch {
		case !wellFormed && !errors.Is(err, ErrInvalidCheckpointID):
			t.Fatalf("Memory.PutAfter(head %q): err = %v, want ErrInvalidCheckpointID", id, err)
		case wellFormed && canon != a && !errors.Is(err, ErrConflict):
			t.Fatalf("Memory.PutAfter(head %q): err = %v, want ErrConflict", id, err)
		}

		if wellFormed {
			return // a well-formed id is a query: the integration suites cover it
		}
		c, err := New(offlineDB, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "t", id); !errors.Is(err, ErrInvalidCheckpointID) {
			t.Fatalf("Get(%q): err = %v, want ErrInvalidCheckpointID", id, err)
		}
		if err := c.Delete(ctx, "t", id); !errors.Is(err, ErrInvalidCheckpointID) {
			t.Fatalf("Delete(%q): %v, want ErrInvalidCheckpointID", id, err)
		}
		if _, err := c.List(ctx, "t", ListOptions{Before: id}); id != "" && !errors.Is(err, ErrInvalidCheckpointID) {
			t.Fatalf("List(before %q): err = %v, want ErrInvalidCheckpointID", id, err)
		}
		if _, err := c.PutAfter(ctx, "t", id, []byte(`{}`)); !errors.Is(err, ErrInvalidCheckpointID) {
			t.Fatalf("PutAfter(head %q): err = %v, want ErrInvalidCheckpointID", id, err)
		}
	})
}

// offlineDB is a *sql.DB that never connects: New does not touch the database, and the calls these
// fuzz targets make with it return before sending anything (a connection attempt fails the test).
var offlineDB = sql.OpenDB(offlineConnector{})

type offlineConnector struct{}

func (offlineConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("offlineDB: a statement was about to be sent")
}
func (offlineConnector) Driver() driver.Driver { return offlineDriver{} }

type offlineDriver struct{}

func (offlineDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("offlineDB: no connection")
}
