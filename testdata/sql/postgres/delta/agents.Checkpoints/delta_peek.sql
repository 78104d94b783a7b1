SELECT checkpoint_id, arrays::text, alloc::text FROM "agents"."Checkpoints_heads"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1
