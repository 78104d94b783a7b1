WITH low AS (
    SELECT seq FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND seq IS NOT NULL ORDER BY seq LIMIT 1
)
DELETE FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND seq IS NOT NULL
  AND seq >= (SELECT seq FROM low)
  AND seq < COALESCE((
    SELECT seq FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1 AND seq IS NOT NULL
      AND seq >= (SELECT seq FROM low)
      AND seq > $2::bigint - COALESCE($3::bigint, $2::bigint)
      AND total_bytes - size_bytes >= (
        SELECT total_bytes FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND seq = $2::bigint) - $4::bigint
    ORDER BY seq
    LIMIT 1), $2::bigint)
