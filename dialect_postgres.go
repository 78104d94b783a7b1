package pgcheckpoint

import "database/sql"

// PostgreSQL is the dialect for PostgreSQL 14 and later (lz4 column compression where the server has it).
var PostgreSQL Dialect = postgres{}

type postgres struct{}

func (postgres) Name() string { return DialectPostgres }

func (postgres) facts() dialectFacts {
	return dialectFacts{
		oneStatementPut:         true,
		advisoryLocks:           true,
		callerIsolation:         "read committed",
		ownIsolation:            sql.LevelReadCommitted,
		firstRowIsolation:       sql.LevelReadCommitted,
		defaultMaxSnapshotBytes: 16 << 20,
		byteOrder:               ` COLLATE "C"`,
	}
}

// ddl creates what is missing. thread_id and checkpoint_id sort in byte order (COLLATE "C") whatever the
// database's collation, which also makes comparisons cheaper. seq numbers a thread's rows densely; its
// unique index finds the retention boundary in one probe and serialises concurrent writers of a thread.
// The unnumbered index holds only rows without a number (written by the TypeScript package), so a put
// learns in one probe of an empty index that there are none. Tables created by the TypeScript package
// get the seq column and both indexes added. total_bytes is the thread's running total of size_bytes
// up to and including the row (see bytesTrimCTE in statements.go): a byte budget trims by it.
func (postgres) ddl(n names) schemaDDL {
	return schemaDDL{createSchema: `CREATE SCHEMA IF NOT EXISTS ` + n.schema, table: []string{
		sqlFor(n, `CREATE TABLE IF NOT EXISTS {T} (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
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
		// lz4 compresses and, above all, decompresses large snapshots much faster than the default pglz.
		// Servers built without lz4 keep pglz.
		sqlFor(n, `DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '{T}'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE {T} ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$`),
	}}
}
