package pgcheckpoint

import (
	"regexp"
	"strings"
	"testing"
)

// CockroachDB rejects, when it plans the statement, any statement that modifies one table more than
// once unless every modification is a plain INSERT (SQLSTATE 0A000, "multiple modification subqueries
// of the same table"; cockroach PR #70976, issue #121034). The PostgreSQL put (insert and trim in one
// statement) is exactly that. These tests read every statement the CockroachDB dialect can send and
// count its modifications: no real cluster is needed to know that none can hit 0A000.

// sqlCode returns s without string literals, dollar-quoted bodies and comments, so that only SQL
// keywords and identifiers remain to be read.
func sqlCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			j := i + 1
			for j < len(s) && !(s[j] == '\'' && (j+1 >= len(s) || s[j+1] != '\'')) {
				if s[j] == '\'' {
					j++ // doubled quote inside the literal
				}
				j++
			}
			b.WriteString("''")
			i = j
		case strings.HasPrefix(s[i:], "$$"):
			end := strings.Index(s[i+2:], "$$")
			if end < 0 {
				return b.String()
			}
			b.WriteString("$$ $$")
			i += end + 3
		case strings.HasPrefix(s[i:], "--"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += end + 3
			b.WriteByte(' ')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// modification finds a data-modifying clause and the table it modifies.
var modification = regexp.MustCompile(`(?i)\b(INSERT\s+INTO|UPSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)`)

// modifications counts, per table, the modifying clauses of one statement.
func modifications(stmt string) map[string]int {
	out := map[string]int{}
	for _, m := range modification.FindAllStringSubmatch(sqlCode(stmt), -1) {
		out[m[2]]++
	}
	return out
}

func TestModificationCounterSeesTheProblem(t *testing.T) {
	t.Parallel()
	n, err := newNames("public", "ziro_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	// The counter must catch the one statement CockroachDB cannot run: PostgreSQL's put.
	if got := modifications(newStatements(n, PostgreSQL.facts()).put)[n.table]; got != 2 {
		t.Fatalf("PostgreSQL's put modifies %s %d times by this counter, want 2 (INSERT and DELETE)", n.table, got)
	}
	for stmt, want := range map[string]int{
		`UPDATE t SET a = 1`: 1,
		`WITH x AS (DELETE FROM "s"."t" RETURNING 1) INSERT INTO "s"."t" SELECT 1`: 2,
		`SELECT 'DELETE FROM t' -- UPDATE t` + "\n":                                0,
		`SELECT 1 /* INSERT INTO t */`:                                             0,
		`DO $$ BEGIN UPDATE t SET a = 1; END $$`:                                   0, // a body is not this statement's text
		`select 'it''s' FROM t; delete from t where 1`:                             1,
	} {
		total := 0
		for _, c := range modifications(stmt) {
			total += c
		}
		if total != want {
			t.Errorf("modifications(%q) = %d, want %d", stmt, total, want)
		}
	}
}

// No statement of the CockroachDB dialect modifies a table more than once, for the default names and
// for quoted, schema-qualified ones.
func TestCockroachNoStatementModifiesTableTwice(t *testing.T) {
	t.Parallel()
	for _, nm := range [][2]string{{"public", "ziro_checkpoints"}, {"Agents", "Check_Points"}} {
		n, err := newNames(nm[0], nm[1])
		if err != nil {
			t.Fatal(err)
		}
		texts := statementMap(newStatements(n, CockroachDB.facts()))
		for i, ddl := range CockroachDB.ddl(n).all() {
			texts["ddl"+string(rune('0'+i))] = ddl
		}
		modifying := 0
		for name, stmt := range texts {
			for table, count := range modifications(stmt) {
				if count > 1 {
					t.Errorf("%s modifies %s %d times in one statement (CockroachDB: 0A000):\n%s", name, table, count, stmt)
				}
				modifying++
			}
		}
		// insert, trim, renumber, deleteOne, deleteAll, pruneRun: the counter must have seen them.
		if modifying < 6 {
			t.Errorf("only %d modifying statements found; the counter or the statement list is broken", modifying)
		}
		if newStatements(n, CockroachDB.facts()).put != "" {
			t.Error("the CockroachDB dialect must not carry a one-statement put")
		}
		if CockroachDB.facts().oneStatementPut {
			t.Error("the CockroachDB dialect must split the put")
		}
	}
}

// The DDL uses nothing CockroachDB lacks or refuses to non-admins.
func TestCockroachDDLAvoidsPostgresOnlyFeatures(t *testing.T) {
	t.Parallel()
	n, err := newNames("public", "ziro_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(CockroachDB.ddl(n).all(), ";\n") + strings.Join(func() []string {
		var s []string
		for _, v := range statementMap(newStatements(n, CockroachDB.facts())) {
			s = append(s, v)
		}
		return s
	}(), ";\n")
	for _, banned := range []string{"COLLATE", "pg_advisory", "hashtext", "DO $$", "COMPRESSION", "CREATE SCHEMA", "pg_attribute", "regclass"} {
		if strings.Contains(all, banned) {
			t.Errorf("CockroachDB statements contain %q", banned)
		}
	}
	own, err := newNames("agents", "ziro_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	if ddl := CockroachDB.ddl(own).all(); len(ddl) == 0 || ddl[0] != `CREATE SCHEMA IF NOT EXISTS "agents"` {
		t.Errorf("a schema other than public must still be created first: %q", ddl)
	}
	if got := CockroachDB.facts().defaultMaxSnapshotBytes; got != 1<<20 {
		t.Errorf("default snapshot limit = %d, want 1 MiB (CockroachDB advises JSONB values under 1 MB)", got)
	}
}
