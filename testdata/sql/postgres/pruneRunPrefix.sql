DELETE FROM "public"."ziro_checkpoints" AS t
WHERE t.thread_id COLLATE "C" >= $1 AND t.thread_id COLLATE "C" <= $2 AND t.created_at < $3
  AND ($4 OR t.checkpoint_id < (SELECT max(checkpoint_id) FROM "public"."ziro_checkpoints" WHERE thread_id = t.thread_id))
RETURNING t.thread_id
