WITH source AS (
    SELECT EXISTS (SELECT 1 FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 AND checkpoint_id = $2) AS found
), target AS (
    SELECT EXISTS (SELECT 1 FROM "agents"."Checkpoints_heads" WHERE thread_id = $3) AS found
), hl AS (
    SELECT checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, created_at,
           sum(size_bytes) OVER (ORDER BY checkpoint_id DESC) AS upto
    FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id <= $2
    ORDER BY checkpoint_id DESC
    LIMIT $4
), h AS (
    SELECT * FROM hl WHERE $5::bigint IS NULL OR hl.upto <= $5::bigint OR hl.checkpoint_id = $2
), ins AS (
    INSERT INTO "agents"."Checkpoints_heads" (thread_id, checkpoint_id, seq, snapshot, arrays, alloc, lo, hi, version, size_bytes, created_at, total_bytes)
    SELECT $3::text, h.checkpoint_id, row_number() OVER (ORDER BY h.checkpoint_id),
           h.snapshot, h.arrays, h.alloc, h.lo, h.hi, h.version, h.size_bytes, h.created_at,
           (sum(h.size_bytes) OVER (ORDER BY h.checkpoint_id))::BIGINT
    FROM h, source, target
    WHERE source.found AND NOT target.found
    RETURNING 1
), r AS (
    SELECT u.lo, u.hi FROM h, unnest(h.lo, h.hi) AS u(lo, hi) WHERE u.hi > u.lo
), o AS (
    SELECT lo, hi, max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM r
), g AS (
    SELECT lo, hi, sum(CASE WHEN reach IS NULL OR reach < lo THEN 1 ELSE 0 END) OVER (ORDER BY lo, hi ROWS UNBOUNDED PRECEDING) AS island FROM o
), spans AS (
    SELECT min(lo) AS lo, max(hi) AS hi FROM g GROUP BY island
), items AS (
    INSERT INTO "agents"."Checkpoints_items" (thread_id, pos, item)
    SELECT $3::text, i.pos, i.item
    FROM spans CROSS JOIN LATERAL (
        SELECT pos, item FROM "agents"."Checkpoints_items" WHERE thread_id = $1 AND pos >= spans.lo AND pos < spans.hi
    ) AS i, source, target
    WHERE source.found AND NOT target.found
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
)
SELECT (SELECT found FROM source), (SELECT found FROM target), (SELECT count(*) FROM ins)
