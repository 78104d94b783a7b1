SELECT t.thread_id, t.checkpoint_id FROM "agents"."Checkpoints" AS t
WHERE t.thread_id COLLATE "C" >= $1 AND t.thread_id COLLATE "C" <= $2
  AND t.checkpoint_id = (SELECT max(checkpoint_id) FROM "agents"."Checkpoints" WHERE thread_id = t.thread_id)
FOR UPDATE OF t
