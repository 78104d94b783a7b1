DELETE FROM "public"."ziro_checkpoints" WHERE thread_id = $1
