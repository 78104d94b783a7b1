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
