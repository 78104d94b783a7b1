DELETE FROM "agents"."Checkpoints_items" WHERE thread_id = $1
