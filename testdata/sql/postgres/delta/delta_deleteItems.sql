DELETE FROM "public"."ziro_checkpoints_items" WHERE thread_id = $1
