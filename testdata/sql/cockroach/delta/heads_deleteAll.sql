DELETE FROM "public"."ziro_checkpoints_heads" WHERE thread_id = $1
