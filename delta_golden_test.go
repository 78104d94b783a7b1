package pgcheckpoint

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// deltaGoldenSQL returns the files of a delta table: its own statements (delta_<name>), the full
// layout's statements it runs on the heads table (heads_<name>), the lease statements, which name the
// lease table for the view (view_<name>), and its DDL (ddl_<i>), as TestGoldenSQL
// does for the full layout; they live in testdata/sql/<dialect>/delta.
func deltaGoldenSQL(t *testing.T, d Dialect, schema, table string) map[string]string {
	t.Helper()
	heads, dl, err := newDelta(schema, table, d.facts())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for name, text := range statementMap(headsStatements(heads, dl.view, d.facts())) {
		switch {
		case name == "put" || name == "insert" || name == "trim" || name == "putBytes" || name == "insertBytes" ||
			name == "trimBytes" || name == "first" || name == "getLatest" || name == "getByID" || name == "catalog" ||
			name == "fork":
			continue // the delta table has its own
		case strings.HasPrefix(name, "lease"):
			files["view_"+name] = text // on <table>_leases, named for the view
			continue
		}
		files["heads_"+name] = text
	}
	for name, text := range deltaStatementMap(dl.q) {
		files["delta_"+name] = text
	}
	files["delta_tableType"] = tableTypeSQL
	for i, stmt := range d.deltaDDL(heads, dl.items, dl.view.table).all() {
		files[fmt.Sprintf("ddl_%d_%s", i+1, deltaDDLRole(stmt))] = stmt
	}
	return files
}

// deltaDDLRole names a delta DDL statement by what it creates.
func deltaDDLRole(stmt string) string {
	switch {
	case strings.HasPrefix(stmt, "CREATE SCHEMA"):
		return "schema"
	case strings.HasPrefix(stmt, "ALTER TABLE") && strings.Contains(stmt, "max_bytes_per_thread"):
		return "policy_bytes_column"
	case strings.HasPrefix(stmt, "ALTER TABLE") && strings.Contains(stmt, "total_bytes"):
		return "heads_total_bytes_column"
	case strings.HasPrefix(stmt, "CREATE TABLE") && strings.Contains(stmt, "max_checkpoints_per_thread"):
		return "policy"
	case strings.HasPrefix(stmt, "CREATE TABLE") && strings.Contains(stmt, "checkpoint_id"):
		return "heads"
	case strings.HasPrefix(stmt, "CREATE TABLE"):
		return "items"
	case strings.HasPrefix(stmt, "CREATE UNIQUE INDEX"):
		return "heads_seq_index"
	case strings.HasPrefix(stmt, "DO $$"):
		return "compression"
	case strings.Contains(stmt, "VIEW"):
		return "view"
	}
	return "other"
}

func TestGoldenSQLDelta(t *testing.T) {
	for _, d := range []Dialect{PostgreSQL, CockroachDB} {
		for _, tbl := range goldenTables {
			dir := filepath.Join("testdata", "sql", d.Name(), "delta", tbl.dir)
			t.Run(filepath.ToSlash(filepath.Join(d.Name(), "delta", tbl.dir)), func(t *testing.T) {
				want := deltaGoldenSQL(t, d, tbl.schema, tbl.table)
				for name := range want {
					if strings.HasSuffix(name, "_other") {
						t.Errorf("DDL statement %s has no role in deltaDDLRole", name)
					}
				}
				if *update {
					writeGolden(t, dir, want)
					return
				}
				for _, p := range goldenProblems(t, dir, want) {
					t.Error(p)
				}
			})
		}
	}
}
