DELETE FROM "public"."ziro_checkpoints"
WHERE thread_id = $1
  AND checkpoint_id >= (SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
  AND checkpoint_id <= (
    SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND seq = $2)
