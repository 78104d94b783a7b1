SELECT t.thread_id, t.checkpoint_id FROM "agents"."Checkpoints_heads" AS t
WHERE t.thread_id >= $1 AND t.thread_id <= $2
  AND t.checkpoint_id = (SELECT max(checkpoint_id) FROM "agents"."Checkpoints_heads" WHERE thread_id = t.thread_id)
FOR UPDATE OF t
