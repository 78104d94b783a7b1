SELECT max_checkpoints_per_thread FROM "agents"."Checkpoints_policy"
