package pgcheckpoint

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The fuzz tests check input handling: identifiers against a regular expression, checkpoint ids against
// every call that takes one. Their seed corpus runs with every `go test`; `go test -fuzz=FuzzIdentifier`
// (etc.) explores further. The snapshot scanner's fuzz tests are beside it, in internal/jsonscan.

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
