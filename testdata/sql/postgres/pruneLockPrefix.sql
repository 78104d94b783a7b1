SELECT t.thread_id, t.checkpoint_id FROM "public"."ziro_checkpoints" AS t
WHERE t.thread_id COLLATE "C" >= $1 AND t.thread_id COLLATE "C" <= $2
  AND t.checkpoint_id = (SELECT max(checkpoint_id) FROM "public"."ziro_checkpoints" WHERE thread_id = t.thread_id)
FOR UPDATE OF t
