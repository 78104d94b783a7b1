WITH head AS (
    SELECT checkpoint_id, seq, arrays, alloc, total_bytes FROM "public"."ziro_checkpoints_heads"
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq, total_bytes FROM "public"."ziro_checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR UPDATE
), ins AS (
    INSERT INTO "public"."ziro_checkpoints_heads" (thread_id, checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $7::text::jsonb, $8::text::jsonb, $12::text::bigint[], $13::text::bigint[], $4, $5, locked.seq + 1,
           locked.total_bytes + $5::INTEGER
    FROM locked, head
    WHERE locked.seq = head.seq
      AND locked.checkpoint_id < $2
      AND ($6::text IS NULL OR $6::text = locked.checkpoint_id)
      AND locked.checkpoint_id = $9::text
      AND head.total_bytes IS NOT NULL
    ON CONFLICT (thread_id, checkpoint_id) DO NOTHING
    RETURNING seq, total_bytes
), items AS (
    INSERT INTO "public"."ziro_checkpoints_items" (thread_id, pos, item)
    SELECT $1, p.pos, e.item
    FROM jsonb_array_elements($10::text::jsonb) WITH ORDINALITY AS e(item, ord)
    JOIN unnest($11::text::bigint[]) WITH ORDINALITY AS p(pos, ord) ON p.ord = e.ord
    WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq FROM head),
       EXISTS (SELECT 1 FROM locked), (SELECT seq FROM locked),
       EXISTS (SELECT 1 FROM "public"."ziro_checkpoints_heads" WHERE thread_id = $1 AND checkpoint_id = $2),
       (SELECT arrays::text FROM head), (SELECT alloc::text FROM head), (SELECT count(*) FROM items), EXISTS (SELECT 1 FROM head WHERE total_bytes IS NULL), 0, 0
