package pgcheckpoint

import "reflect"

// Statements returns every SQL text a Checkpointer of dialect d (nil means PostgreSQL) sends for the
// table schema.table (empty names mean the defaults), by name, exactly as it sends them: for mocks
// (pgcheckpointmock builds its expectations from it) and for audits. Names are checked as New checks
// them (ErrInvalidIdentifier). A statement the dialect never sends has no entry (CockroachDB has no
// "put", "lockFirst" or "lockSchema"). The DDL EnsureSchema runs is SchemaSQL's.
//
// The names: put, insert, trim, first, lockFirst, lockRows, newest, renumber (the put path and the
// renumbering of a thread), getLatest, getByID, list, listBefore, deleteOne, deleteAll, threads,
// pruneThreads, pruneRun, now, version (DetectDialect), isolation (a caller's transaction is checked),
// catalog and lockSchema (EnsureSchema). $1 is always the thread id where there is one. The texts are
// pinned by the golden files under testdata/sql.
func Statements(d Dialect, schema, table string) (map[string]string, error) {
	if d == nil {
		d = PostgreSQL
	}
	n, err := newNames(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable))
	if err != nil {
		return nil, err
	}
	return statementMap(newStatements(n, d.facts())), nil
}

// statementMap lists the non-empty fields of s by field name.
func statementMap(s statements) map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String && f.String() != "" {
			out[v.Type().Field(i).Name] = f.String()
		}
	}
	return out
}
