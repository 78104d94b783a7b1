DELETE FROM "agents"."Checkpoints" WHERE thread_id = $1
