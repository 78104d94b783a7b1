SELECT max(checkpoint_id) FROM "agents"."Checkpoints_heads" WHERE thread_id = $1
