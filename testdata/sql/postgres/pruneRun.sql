DELETE FROM "public"."ziro_checkpoints" AS t
WHERE t.thread_id >= $1 AND t.thread_id <= $2 AND t.created_at < $3
RETURNING t.thread_id
