WITH h AS (
    SELECT checkpoint_id, created_at, version, size_bytes, snapshot, arrays FROM "public"."ziro_checkpoints_heads"
    WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1
)
SELECT h.checkpoint_id, h.created_at, h.version, h.size_bytes,
       CASE WHEN a.ord IS NULL OR a.ord = 1 THEN h.snapshot::text END, a.key,
       (SELECT string_agg(i.item::text, ', ' ORDER BY r.ord, i.pos)
        FROM jsonb_array_elements(a.value->'r') WITH ORDINALITY AS r(v, ord)
        JOIN "public"."ziro_checkpoints_items" AS i ON i.thread_id = $1 AND i.pos >= (r.v->>0)::bigint AND i.pos < (r.v->>1)::bigint)
FROM h LEFT JOIN LATERAL jsonb_each(h.arrays) WITH ORDINALITY AS a(key, value, ord) ON true
ORDER BY a.ord
