DELETE FROM "agents"."Checkpoints"
WHERE thread_id = $1
  AND checkpoint_id >= (SELECT checkpoint_id FROM "agents"."Checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
  AND checkpoint_id <= (
    SELECT checkpoint_id FROM "agents"."Checkpoints" WHERE thread_id = $1 AND seq = $2)
