SELECT max_checkpoints_per_thread, max_bytes_per_thread FROM "agents"."Checkpoints_policy"
