SELECT 1 FROM "public"."ziro_checkpoints_heads" WHERE thread_id = $1 AND checkpoint_id = $2
