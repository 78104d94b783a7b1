package pgcheckpoint

// deltaDDL creates a delta table (docs/storage.md): the heads table, the items table, lz4 for their
// JSONB columns where the server has it, and the view with the full layout's name and columns.
// PostgreSQL refuses an INSERT through the view (its snapshot column is computed), so a TypeScript put
// fails loudly; a DELETE through it removes heads and leaves their items behind until the next Delete,
// Prune or put over their positions removes or overwrites them (docs/storage.md).
func (postgres) deltaDDL(heads names, items, view string) schemaDDL {
	sq := func(s string) string { return deltaSQL(heads, items, view, s) }
	return schemaDDL{createSchema: `CREATE SCHEMA IF NOT EXISTS ` + heads.schema, table: []string{
		sq(`CREATE TABLE IF NOT EXISTS {H} (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
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
    thread_id TEXT COLLATE "C" NOT NULL,
    pos       BIGINT NOT NULL,
    item      JSONB NOT NULL,
    PRIMARY KEY (thread_id, pos)
)`),
		sq(`DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '{H}'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE {H} ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '{I}'::regclass AND attname = 'item' AND attcompression <> 'l') THEN
        ALTER TABLE {I} ALTER COLUMN item SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$`),
		sq(`CREATE OR REPLACE VIEW {V} AS` + deltaViewBody),
		policyDDL(heads), // heads.policy is the table's own: <table>_policy
		policyBytesDDL(heads),
	}}
}

// deltaViewBody rebuilds each head's snapshot: the head's members and, per spilled array, the items
// of its slot within the head's spans, in order (both dialects). The snapshot is a subquery in the
// select list, so a query of the view that does not read it (a list of metadata) does not compute it.
const deltaViewBody = `
SELECT h.thread_id, h.checkpoint_id,
       h.snapshot || COALESCE((
           SELECT jsonb_object_agg(a.key, (
               SELECT COALESCE(jsonb_agg(i.item ORDER BY i.pos), '[]'::jsonb)
               FROM unnest(h.lo, h.hi) AS s(lo, hi)
               JOIN LATERAL (
                   SELECT pos, item FROM {I} WHERE thread_id = h.thread_id AND pos >= s.lo AND pos < s.hi
               ) AS i ON true
               WHERE s.lo >> 40 = (a.value->>'s')::bigint))
           FROM jsonb_each(h.arrays) AS a), '{}'::jsonb) AS snapshot,
       h.version, h.size_bytes, h.created_at, h.seq, h.total_bytes
FROM {H} AS h`
