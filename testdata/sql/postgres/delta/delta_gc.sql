WITH t AS (
    SELECT DISTINCT value AS thread_id FROM jsonb_array_elements_text($1::text::jsonb)
), r AS (
    SELECT h.thread_id, u.lo, u.hi
    FROM "public"."ziro_checkpoints_heads" AS h, unnest(h.lo, h.hi) AS u(lo, hi)
    WHERE h.thread_id IN (SELECT thread_id FROM t)
), o AS (
    SELECT thread_id, lo, hi,
           max(hi) OVER (PARTITION BY thread_id ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM r WHERE hi > lo
), gaps AS (
    SELECT thread_id, COALESCE(reach, 0) AS lo, lo AS hi FROM o WHERE reach IS NULL OR reach < lo
    UNION ALL
    SELECT t.thread_id, COALESCE((SELECT max(o.hi) FROM o WHERE o.thread_id = t.thread_id), 0), 9223372036854775807 FROM t
)
DELETE FROM "public"."ziro_checkpoints_items" AS i USING gaps
WHERE i.thread_id = gaps.thread_id AND i.pos >= gaps.lo AND i.pos < gaps.hi
