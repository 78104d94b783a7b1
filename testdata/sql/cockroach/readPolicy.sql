SELECT max_checkpoints_per_thread, max_bytes_per_thread FROM "public"."ziro_checkpoints_policy"
