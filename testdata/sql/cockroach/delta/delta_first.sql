WITH ins AS (
    INSERT INTO "public"."ziro_checkpoints_heads" (thread_id, checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $6::text::jsonb, $7::text::jsonb, $9::text::bigint[], $10::text::bigint[], $4, $5, 1, $5::INTEGER
    WHERE NOT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints_heads" WHERE thread_id = $1)
    RETURNING seq
), items AS (
    INSERT INTO "public"."ziro_checkpoints_items" (thread_id, pos, item)
    SELECT $1, p.pos, e.item
    FROM jsonb_array_elements($8::text::jsonb) WITH ORDINALITY AS e(item, ord)
    JOIN unnest($11::text::bigint[]) WITH ORDINALITY AS p(pos, ord) ON p.ord = e.ord
    WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT count(*) FROM items)
