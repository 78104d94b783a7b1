package integration

import (
	"database/sql"
	"slices"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// storedRow is one row of a checkpoint table, read straight from the table.
type storedRow struct {
	id       string
	seq      sql.NullInt64
	version  int32
	size     int32
	snapshot []byte
}

// tableIn is the quoted name of the default checkpoint table in schema.
func tableIn(schema string) string { return `"` + schema + `"."` + pgcheckpoint.DefaultTable + `"` }

// readRows returns a thread's rows in checkpoint id order.
func readRows(t testing.TB, db *sql.DB, schema, thread string) []storedRow {
	t.Helper()
	rows, err := db.QueryContext(testCtx(t), `SELECT checkpoint_id, seq, version, size_bytes, snapshot::text FROM `+
		tableIn(schema)+` WHERE thread_id = $1 ORDER BY checkpoint_id`, thread)
	if err != nil {
		t.Fatalf("read rows of %q: %v", thread, err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.id, &r.seq, &r.version, &r.size, &r.snapshot); err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read rows of %q: %v", thread, err)
	}
	return out
}

// checkDenseSeq fails the test unless the thread's rows are numbered without gaps in id order, the
// invariant exact retention rests on.
func checkDenseSeq(t testing.TB, db *sql.DB, schema, thread string) {
	t.Helper()
	checkSeq(t, thread, readRows(t, db, schema, thread))
}

func checkSeq(t testing.TB, thread string, rows []storedRow) {
	t.Helper()
	for i, r := range rows {
		if !r.seq.Valid || (i > 0 && r.seq.Int64 != rows[i-1].seq.Int64+1) {
			t.Fatalf("thread %q: row %d (%s) has seq %v after %v: numbering is not dense", thread, i, r.id, r.seq, rows[max(i-1, 0)].seq)
		}
	}
}

// listIDs returns a thread's checkpoint ids through the library, newest first.
func listIDs(t testing.TB, s pgcheckpoint.Store, thread string) []string {
	t.Helper()
	list, err := s.List(testCtx(t), thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		t.Fatalf("List(%q): %v", thread, err)
	}
	out := make([]string, len(list))
	for i, cp := range list {
		out[i] = cp.ID
	}
	return out
}

// reversed returns a reversed copy of s.
func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
