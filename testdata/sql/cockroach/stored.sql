SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2
