WITH source AS (
    SELECT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2) AS found
), target AS (
    SELECT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $3) AS found
), ins AS (
    INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq, total_bytes)
    SELECT $3, r.checkpoint_id, r.snapshot, r.version, r.size_bytes, r.created_at,
           row_number() OVER (ORDER BY r.checkpoint_id),
           (sum(r.size_bytes) OVER (ORDER BY r.checkpoint_id))::BIGINT
    FROM (SELECT checkpoint_id, snapshot, version, size_bytes, created_at,
                 sum(size_bytes) OVER (ORDER BY checkpoint_id DESC) AS upto
          FROM "public"."ziro_checkpoints"
          WHERE thread_id = $1 AND checkpoint_id <= $2
          ORDER BY checkpoint_id DESC
          LIMIT $4) AS r, source, target
    WHERE source.found AND NOT target.found
      AND ($5::bigint IS NULL OR r.upto <= $5::bigint OR r.checkpoint_id = $2)
    RETURNING 1
)
SELECT (SELECT found FROM source), (SELECT found FROM target), (SELECT count(*) FROM ins)
