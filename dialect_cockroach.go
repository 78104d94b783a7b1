package pgcheckpoint

import "database/sql"

// CockroachDB is the dialect for CockroachDB 23.1 and later. It runs the same statements as PostgreSQL
// and differs where CockroachDB does (see docs/cockroachdb.md and dialectFacts):
//   - one statement may not modify a table twice (SQLSTATE 0A000), so a put with retention runs its insert
//     and its trim as two statements in one transaction, run again as a whole on SQLSTATE 40001 (never
//     inside a caller's transaction); a put without retention stays one statement, which the server
//     retries by itself;
//   - there are no advisory locks: a thread's first put runs at SERIALIZABLE, and EnsureSchema runs each
//     IF NOT EXISTS statement on its own, again when a concurrent run makes it fail (40001, 42P07, 42710);
//   - a caller's transaction must be SERIALIZABLE, CockroachDB's default;
//   - strings already sort in byte order, and old versions reject COLLATE "C";
//   - the public schema always exists (CREATE SCHEMA needs admin), and there is no per-column compression;
//   - snapshots are limited to 1 MiB by default, the size CockroachDB's documentation advises for JSONB.
var CockroachDB Dialect = cockroach{}

type cockroach struct{}

func (cockroach) Name() string { return DialectCockroach }

func (cockroach) facts() dialectFacts {
	return dialectFacts{
		oneStatementPut:         false,
		advisoryLocks:           false,
		callerIsolation:         "serializable",
		ownIsolation:            sql.LevelDefault,
		firstRowIsolation:       sql.LevelSerializable,
		defaultMaxSnapshotBytes: 1 << 20,
	}
}

// ddl is PostgreSQL's without COLLATE "C" (CockroachDB compares strings bytewise anyway), without the
// compression block, and without CREATE SCHEMA for the public schema.
func (cockroach) ddl(n names) schemaDDL {
	var d schemaDDL
	if n.rawSchema != DefaultSchema {
		d.createSchema = `CREATE SCHEMA IF NOT EXISTS ` + n.schema
	}
	d.table = []string{
		sqlFor(n, `CREATE TABLE IF NOT EXISTS {T} (
    thread_id     TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    seq           BIGINT,
    total_bytes   BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)`),
		sqlFor(n, `ALTER TABLE {T} ADD COLUMN IF NOT EXISTS seq BIGINT`),
		sqlFor(n, `ALTER TABLE {T} ADD COLUMN IF NOT EXISTS total_bytes BIGINT`),
		sqlFor(n, `CREATE UNIQUE INDEX IF NOT EXISTS `+n.seqIdx+` ON {T} (thread_id, seq) WHERE seq IS NOT NULL`),
		sqlFor(n, `CREATE INDEX IF NOT EXISTS `+n.unnumberedIdx+` ON {T} (thread_id) WHERE seq IS NULL`),
		policyDDL(n),
		policyBytesDDL(n),
	}
	return d
}
