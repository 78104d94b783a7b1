package pgcheckpoint

// deltaDDL is PostgreSQL's without COLLATE "C", the compression block and CREATE SCHEMA for the public
// schema; CockroachDB views are never updatable, so a TypeScript put or delete through the view fails there.
func (cockroach) deltaDDL(heads names, items, view string) schemaDDL {
	sq := func(s string) string { return deltaSQL(heads, items, view, s) }
	var d schemaDDL
	if heads.rawSchema != DefaultSchema {
		d.createSchema = `CREATE SCHEMA IF NOT EXISTS ` + heads.schema
	}
	d.table = []string{
		sq(`CREATE TABLE IF NOT EXISTS {H} (
    thread_id     TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    snapshot      JSONB NOT NULL,
    arrays        JSONB NOT NULL,
    lo            BIGINT[] NOT NULL,
    hi            BIGINT[] NOT NULL,
    alloc         JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    total_bytes   BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)`),
		sq(`ALTER TABLE {H} ADD COLUMN IF NOT EXISTS total_bytes BIGINT`),
		sq(`CREATE UNIQUE INDEX IF NOT EXISTS ` + heads.seqIdx + ` ON {H} (thread_id, seq)`),
		sq(`CREATE TABLE IF NOT EXISTS {I} (
    thread_id TEXT NOT NULL,
    pos       BIGINT NOT NULL,
    item      JSONB NOT NULL,
    PRIMARY KEY (thread_id, pos)
)`),
		sq(`CREATE OR REPLACE VIEW {V} AS` + deltaViewBody),
		policyDDL(heads), // heads.policy is the table's own: <table>_policy
		policyBytesDDL(heads),
	}
	return d
}
