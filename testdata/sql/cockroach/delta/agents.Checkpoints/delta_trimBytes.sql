WITH low AS (
    SELECT seq FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 ORDER BY seq LIMIT 1
), kb AS (
    SELECT COALESCE((
        SELECT seq FROM "agents"."Checkpoints_heads"
        WHERE thread_id = $1
          AND seq >= (SELECT seq FROM low)
          AND seq > $2::bigint - COALESCE($3::bigint, $2::bigint)
          AND total_bytes - size_bytes >= (SELECT total_bytes FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 AND seq = $2::bigint) - $4::bigint
        ORDER BY seq
        LIMIT 1), $2::bigint) AS seq
), del AS (
    DELETE FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1
      AND seq >= (SELECT seq FROM low)
      AND seq < (SELECT seq FROM kb)
    RETURNING checkpoint_id, lo, hi
), keep AS (
    SELECT lo, hi FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id > (SELECT max(checkpoint_id) FROM del)
    ORDER BY checkpoint_id LIMIT 1
), dr AS (
    SELECT u.lo, u.hi FROM del, unnest(del.lo, del.hi) AS u(lo, hi)
), kr AS (
    SELECT u.lo, u.hi FROM keep, unnest(keep.lo, keep.hi) AS u(lo, hi)
), pts AS (
    SELECT lo AS p FROM dr UNION SELECT hi FROM dr UNION SELECT lo FROM kr UNION SELECT hi FROM kr
), seg AS (
    SELECT p AS lo, lead(p) OVER (ORDER BY p) AS hi FROM pts
), freed AS (
    SELECT seg.lo, seg.hi FROM seg
    WHERE seg.hi IS NOT NULL
      AND EXISTS (SELECT 1 FROM dr WHERE dr.lo <= seg.lo AND dr.hi >= seg.hi)
      AND NOT EXISTS (SELECT 1 FROM kr WHERE kr.lo <= seg.lo AND kr.hi >= seg.hi)
), gone AS (
    DELETE FROM "agents"."Checkpoints_items" AS i USING freed
    WHERE i.thread_id = $1 AND i.pos >= freed.lo AND i.pos < freed.hi
    RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM gone)
