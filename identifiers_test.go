package pgcheckpoint

import (
	"errors"
	"strings"
	"testing"
)

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema, table string
		ok            bool
	}{
		{"public", "ziro_checkpoints", true},
		{"Agents", "select", true}, // reserved words and upper case are fine: names are always quoted
		{"_s", "t1", true},
		{"s", strings.Repeat("t", 63-len(seqIndexSuffix)), true},
		{"s", strings.Repeat("t", 64-len(seqIndexSuffix)), false}, // derived index name over 63 bytes
		{strings.Repeat("s", 63), "t", true},
		{strings.Repeat("s", 64), "t", false},
		{"1s", "t", false},
		{"s", "t-1", false},
		{"s", `t"; DROP TABLE x; --`, false},
		{"s", "tablé", false},
		{"", "t", false}, // New substitutes defaults for empty names; newNames itself rejects them
	} {
		n, err := newNames(tc.schema, tc.table)
		if tc.ok != (err == nil) {
			t.Errorf("newNames(%q, %q) error = %v, want ok=%v", tc.schema, tc.table, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidIdentifier) {
				t.Errorf("newNames(%q, %q) = %v, want ErrInvalidIdentifier", tc.schema, tc.table, err)
			}
			continue
		}
		if want := `"` + tc.schema + `"."` + tc.table + `"`; n.table != want {
			t.Errorf("quoted table = %s, want %s", n.table, want)
		}
	}
}

func TestNewRejectsBadNamesBeforeTouchingTheDatabase(t *testing.T) {
	t.Parallel()
	_, err := New(noDB{}, Options{Table: "bad name"})
	if !errors.Is(err, ErrInvalidIdentifier) {
		t.Fatalf("New with a bad table name = %v, want ErrInvalidIdentifier", err)
	}
}

// TestLeaseTableNames: the lease table is <table>_leases for both storages (for a delta table, the
// view's name + "_leases", the table a full table of that name has), and for the longest name each
// storage accepts it and its primary key's index (PostgreSQL names it <lease table>_pkey) fit in 63
// bytes, so the server never truncates them. A delta table's lease statements are the full table's.
func TestLeaseTableNames(t *testing.T) {
	t.Parallel()
	longest := map[Storage]int{
		StorageFull:  maxIdentifierBytes - len(seqIndexSuffix),
		StorageDelta: maxIdentifierBytes - len(headsSuffix+seqIndexSuffix),
	}
	for _, d := range []Dialect{PostgreSQL, CockroachDB} {
		for s, n := range longest {
			table := strings.Repeat("t", n)
			if _, err := New(noDB{}, Options{Table: table + "t", Storage: s, Dialect: d}); !errors.Is(err, ErrInvalidIdentifier) {
				t.Errorf("%s/%s: New with a %d-byte table name: %v, want ErrInvalidIdentifier", d.Name(), s, n+1, err)
			}
			c, err := New(noDB{}, Options{Schema: "s", Table: table, Storage: s, Dialect: d})
			if err != nil {
				t.Fatalf("%s/%s: New with a %d-byte table name: %v", d.Name(), s, n, err)
			}
			if pkey := table + "_leases_pkey"; len(pkey) > maxIdentifierBytes {
				t.Errorf("%s/%s: the lease table's index %q is over %d bytes", d.Name(), s, pkey, maxIdentifierBytes)
			}
			want := `CREATE TABLE IF NOT EXISTS "s"."` + table + `_leases" (`
			if !strings.HasPrefix(c.q.leaseTable, want) {
				t.Errorf("%s/%s: leaseTable = %q, want it to start %q", d.Name(), s, c.q.leaseTable, want)
			}
			full, err := Statements(d, "s", table)
			if err != nil {
				t.Fatal(err)
			}
			for name, text := range statementMap(c.q) {
				if strings.HasPrefix(name, "lease") && full[name] != text {
					t.Errorf("%s/%s: %s = %q, want the full table's %q", d.Name(), s, name, text, full[name])
				}
			}
		}
	}
}
