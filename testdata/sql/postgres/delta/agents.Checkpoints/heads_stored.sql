SELECT 1 FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 AND checkpoint_id = $2
