package pgcheckpoint

import (
	"fmt"
)

// maxIdentifierBytes is PostgreSQL's NAMEDATALEN-1: longer names are silently truncated by the server,
// which would make two different tables share derived index names.
const maxIdentifierBytes = 63

// validIdentifier reports whether s is a plain unquoted-style SQL identifier: [A-Za-z_][A-Za-z0-9_]*, at
// most 63 bytes.
func validIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifierBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// quoteIdent quotes a validated identifier. Validation leaves no character that needs escaping, so
// quoting only preserves case and keeps reserved words usable.
func quoteIdent(s string) string { return `"` + s + `"` }

// names holds the validated, quoted names of everything pgcheckpoint creates for one table.
type names struct {
	schema string // quoted schema
	table  string // quoted, schema-qualified table
	seqIdx string // quoted name of the (thread_id, seq) unique index, unqualified
	// unnumberedIdx is the quoted name of the partial index of rows without a seq, unqualified.
	unnumberedIdx string
	// policy is the quoted, schema-qualified table that records the table's retention policy.
	policy string

	rawSchema, rawTable, rawPolicy string
}

// The secondary indexes are named table + suffix; the longer suffix is part of the 63-byte budget.
const (
	seqIndexSuffix        = "_thread_seq_key"
	unnumberedIndexSuffix = "_unnumbered"
	policyTableSuffix     = "_policy"
)

// newNames validates schema and table and derives every name from them.
func newNames(schema, table string) (names, error) {
	for _, n := range []struct{ what, v string }{{"schema", schema}, {"table", table}} {
		if !validIdentifier(n.v) {
			return names{}, fmt.Errorf("%s name %q must match [A-Za-z_][A-Za-z0-9_]* and be at most %d bytes: %w",
				n.what, n.v, maxIdentifierBytes, ErrInvalidIdentifier)
		}
	}
	idx := table + seqIndexSuffix
	if len(idx) > maxIdentifierBytes {
		return names{}, fmt.Errorf("table name %q is too long: its index name %q would exceed %d bytes: %w",
			table, idx, maxIdentifierBytes, ErrInvalidIdentifier)
	}
	return names{
		schema:        quoteIdent(schema),
		table:         quoteIdent(schema) + "." + quoteIdent(table),
		seqIdx:        quoteIdent(idx),
		unnumberedIdx: quoteIdent(table + unnumberedIndexSuffix),
		policy:        quoteIdent(schema) + "." + quoteIdent(table+policyTableSuffix),
		rawSchema:     schema,
		rawTable:      table,
		rawPolicy:     table + policyTableSuffix,
	}, nil
}
