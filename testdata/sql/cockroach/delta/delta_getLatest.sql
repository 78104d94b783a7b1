WITH h AS (
    SELECT checkpoint_id, created_at, version, size_bytes, snapshot, arrays, lo, hi FROM "public"."ziro_checkpoints_heads"
    WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1
)
SELECT h.checkpoint_id, h.created_at, h.version, h.size_bytes, h.snapshot::text, h.arrays::text, NULL::bigint, NULL::text
FROM h
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, i.pos, i.item::text
FROM h, unnest(h.lo, h.hi) AS s(lo, hi)
CROSS JOIN LATERAL (
    SELECT pos, item FROM "public"."ziro_checkpoints_items" WHERE thread_id = $1 AND pos >= s.lo AND pos < s.hi ORDER BY pos
) AS i
