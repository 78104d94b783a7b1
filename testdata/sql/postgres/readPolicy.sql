SELECT max_checkpoints_per_thread FROM "public"."ziro_checkpoints_policy"
