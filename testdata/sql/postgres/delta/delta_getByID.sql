WITH h AS (
    SELECT checkpoint_id, created_at, version, size_bytes, snapshot, arrays, lo, hi FROM "public"."ziro_checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id = $2
), a AS (
    SELECT s.lo >> 40 AS slot, string_agg(i.item::text, ', ' ORDER BY i.pos) AS items
    FROM h, unnest(h.lo, h.hi) AS s(lo, hi)
    JOIN LATERAL (
        SELECT pos, item FROM "public"."ziro_checkpoints_items" WHERE thread_id = $1 AND pos >= s.lo AND pos < s.hi
    ) AS i ON true
    GROUP BY 1
)
SELECT h.checkpoint_id, h.created_at, h.version, h.size_bytes, h.snapshot::text, h.arrays::text, a.slot, a.items
FROM h LEFT JOIN a ON true
