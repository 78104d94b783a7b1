SELECT checkpoint_id FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 ORDER BY checkpoint_id DESC FOR UPDATE
