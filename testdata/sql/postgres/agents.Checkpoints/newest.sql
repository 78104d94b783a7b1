SELECT max(checkpoint_id) FROM "agents"."Checkpoints" WHERE thread_id = $1
