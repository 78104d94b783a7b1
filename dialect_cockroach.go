package pgcheckpoint

import "strings"

// CockroachDB is the dialect for CockroachDB 23.1 and later. It reuses the PostgreSQL statements and
// differs where CockroachDB does (see docs/cockroachdb.md):
//   - one statement may not modify a table twice (SQLSTATE 0A000), so a put with retention runs its insert
//     and its trim as two statements in one transaction, run again as a whole on SQLSTATE 40001 (at most
//     Options.MaxAttempts times, jittered backoff, ctx honoured; never inside a caller's transaction),
//     and a 40003 (commit outcome unknown) is resolved by looking for the client-generated id; a put
//     without retention stays one statement, which the server retries by itself;
//   - there are no advisory locks: EnsureSchema runs each IF NOT EXISTS statement on its own and runs it
//     again when a concurrent run makes it fail (40001, 42P07, 42710);
//   - strings already sort in byte order, and old versions reject COLLATE "C";
//   - the public schema always exists (CREATE SCHEMA needs admin), and there is no per-column compression;
//   - snapshots are limited to 1 MiB by default, the size CockroachDB's documentation advises for JSONB.
var CockroachDB Dialect = cockroach{}

type cockroach struct{ postgres }

func (cockroach) Name() string                 { return "cockroach" }
func (cockroach) splitPut() bool               { return true }
func (cockroach) defaultMaxSnapshotBytes() int { return 1 << 20 }

func (c cockroach) statements(n names) statements {
	s := c.postgres.statements(n)
	s.put = ""        // never one statement: the insert and the trim would modify the table twice
	s.lockThread = "" // advisory locks are no-op stubs: a thread's first put runs at SERIALIZABLE instead
	return s
}

func (c cockroach) ddl(n names) []string {
	var out []string
	for _, stmt := range c.postgres.ddl(n) {
		switch {
		case strings.HasPrefix(stmt, "CREATE SCHEMA") && n.rawSchema == "public":
			continue
		case strings.HasPrefix(stmt, "DO $$"):
			continue // no column compression; storage compresses on its own
		}
		out = append(out, strings.ReplaceAll(stmt, ` COLLATE "C"`, ""))
	}
	return out
}
