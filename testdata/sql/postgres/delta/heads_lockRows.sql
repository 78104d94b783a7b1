SELECT checkpoint_id FROM "public"."ziro_checkpoints_heads" WHERE thread_id = $1 ORDER BY checkpoint_id DESC FOR UPDATE
