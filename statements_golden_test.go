package pgcheckpoint

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The golden files pin every SQL text a Checkpointer sends, and the DDL EnsureSchema runs, for each
// dialect: testdata/sql/<dialect>/<name>.sql for the default table, and
// testdata/sql/<dialect>/<schema>.<table>/<name>.sql for a quoted, mixed-case one. A change to
// statements.go or to a dialect's DDL fails TestGoldenSQL until the files are rewritten with
//
//	go test -run TestGoldenSQL -update
//
// and the rewritten files show up in the diff for review. The sqlmock tests read their expectations from
// these files, never from the code's strings.

var update = flag.Bool("update", false, "rewrite the golden files under testdata/sql")

// goldenTables are the tables whose statements are pinned: the default, and a schema-qualified one whose
// mixed case only survives quoting.
var goldenTables = []struct{ schema, table, dir string }{
	{DefaultSchema, DefaultTable, ""},
	{"agents", "Checkpoints", "agents.Checkpoints"},
}

// ddlName names the i-th DDL statement (from 1) by its order and its role, so that a file list shows
// what EnsureSchema runs, in order.
func ddlName(i int, stmt string) string {
	role := "other"
	switch {
	case strings.HasPrefix(stmt, "ALTER TABLE") && strings.Contains(stmt, "max_bytes_per_thread"):
		return fmt.Sprintf("ddl_%d_policy_bytes_column", i)
	case strings.HasPrefix(stmt, "ALTER TABLE") && strings.Contains(stmt, "total_bytes"):
		return fmt.Sprintf("ddl_%d_total_bytes_column", i)
	}
	for _, r := range []struct{ prefix, role string }{
		{"CREATE SCHEMA", "schema"},
		{"CREATE TABLE", "table"},
		{"ALTER TABLE", "seq_column"},
		{"CREATE UNIQUE INDEX", "seq_index"},
		{"CREATE INDEX", "unnumbered_index"},
		{"DO $$", "compression"},
	} {
		if strings.HasPrefix(stmt, r.prefix) {
			role = r.role
			break
		}
	}
	return fmt.Sprintf("ddl_%d_%s", i, role)
}

// goldenSQL returns the files one dialect and table must have: name (without .sql) to content.
func goldenSQL(t *testing.T, d Dialect, schema, table string) map[string]string {
	t.Helper()
	files, err := Statements(d, schema, table)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNames(schema, table)
	if err != nil {
		t.Fatal(err)
	}
	for i, stmt := range d.ddl(n).all() {
		name := ddlName(i+1, stmt)
		if strings.HasSuffix(name, "_other") {
			t.Errorf("DDL statement %d has no role in ddlName; add one:\n%s", i+1, stmt)
		}
		files[name] = stmt
	}
	if d == CockroachDB {
		// migrate --print --dialect cockroach --ttl 720h: the row-level TTL statement.
		ttl, err := TTLSQL(d, schema, table, TTLOptions{After: 720 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		files["ttl_720h"] = ttl
	}
	return files
}

func TestGoldenSQL(t *testing.T) {
	for _, d := range []Dialect{PostgreSQL, CockroachDB} {
		for _, tbl := range goldenTables {
			dir := filepath.Join("testdata", "sql", d.Name(), tbl.dir)
			t.Run(filepath.ToSlash(filepath.Join(d.Name(), tbl.dir)), func(t *testing.T) {
				want := goldenSQL(t, d, tbl.schema, tbl.table)
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

// writeGolden writes every statement to dir/<name>.sql (the text and one newline) and removes .sql
// files of statements that no longer exist.
func writeGolden(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range existingGolden(t, dir) {
		if _, ok := want[name]; !ok {
			if err := os.Remove(filepath.Join(dir, name+".sql")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, text := range want {
		if err := os.WriteFile(filepath.Join(dir, name+".sql"), []byte(text+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goldenProblems compares each statement with its file and lists what differs, is missing or is stale.
func goldenProblems(t *testing.T, dir string, want map[string]string) []string {
	t.Helper()
	const hint = "if the change is intended, run: go test -run TestGoldenSQL -update (and review the diff)"
	var problems []string
	for _, name := range existingGolden(t, dir) {
		if _, ok := want[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s: no such statement any more; %s", filepath.Join(dir, name+".sql"), hint))
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(dir, name+".sql")
		b, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v; %s", path, err, hint))
			continue
		}
		if got := strings.TrimSuffix(string(b), "\n"); got != want[name] {
			problems = append(problems, fmt.Sprintf("%s differs from the generated statement; %s\n%s", path, hint, lineDiff(got, want[name])))
		}
	}
	return problems
}

// existingGolden lists the statement names of the .sql files in dir.
func existingGolden(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".sql") {
			out = append(out, strings.TrimSuffix(e.Name(), ".sql"))
		}
	}
	return out
}

// lineDiff shows the lines where the golden text (file) and the generated one (code) part, with a few
// lines of context: enough to see what changed without a diff tool.
func lineDiff(file, code string) string {
	a, b := strings.Split(file, "\n"), strings.Split(code, "\n")
	first := 0
	for first < len(a) && first < len(b) && a[first] == b[first] {
		first++
	}
	endA, endB := len(a), len(b)
	for endA > first && endB > first && a[endA-1] == b[endB-1] {
		endA--
		endB--
	}
	var sb strings.Builder
	from := max(first-2, 0)
	for i := from; i < first; i++ {
		fmt.Fprintf(&sb, "  %4d   %s\n", i+1, a[i])
	}
	for i := first; i < endA; i++ {
		fmt.Fprintf(&sb, "  %4d - %s\n", i+1, a[i])
	}
	for i := first; i < endB; i++ {
		fmt.Fprintf(&sb, "  %4d + %s\n", i+1, b[i])
	}
	for i := endA; i < min(endA+2, len(a)); i++ {
		fmt.Fprintf(&sb, "  %4d   %s\n", i+1, a[i])
	}
	return "(- golden file, + generated)\n" + sb.String()
}

// The golden test itself: a changed, missing or stale file is reported, and -update writes what the
// check then accepts.
func TestGoldenSQLDetectsChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := map[string]string{"a": "SELECT 1\nFROM t", "b": "SELECT 2"}
	writeGolden(t, dir, want)
	if err := os.WriteFile(filepath.Join(dir, "stale.sql"), []byte("SELECT 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.sql"), []byte("SELECT 1\nFROM u\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "b.sql")); err != nil {
		t.Fatal(err)
	}
	problems := goldenProblems(t, dir, want)
	if len(problems) != 3 {
		t.Fatalf("want 3 problems (a changed, b missing, stale left over), got %d:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	for i, want := range []string{"stale.sql: no such statement", "a.sql differs", "b.sql: open"} {
		if !strings.Contains(problems[i], want) {
			t.Errorf("problem %d = %q, want it to mention %q", i, problems[i], want)
		}
	}
	if !strings.Contains(problems[1], "  2 - FROM u") || !strings.Contains(problems[1], "  2 + FROM t") {
		t.Errorf("the diff does not show the changed line:\n%s", problems[1])
	}
	writeGolden(t, dir, want)
	if problems := goldenProblems(t, dir, want); len(problems) != 0 {
		t.Errorf("after -update: %v", problems)
	}
	if names := existingGolden(t, dir); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("after -update the directory holds %v, want [a b] (stale files removed)", names)
	}
	for name, text := range want {
		if b, _ := os.ReadFile(filepath.Join(dir, name+".sql")); string(b) != text+"\n" {
			t.Errorf("%s.sql = %q after -update, want %q", name, b, text+"\n")
		}
	}
}
