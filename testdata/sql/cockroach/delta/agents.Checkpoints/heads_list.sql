SELECT checkpoint_id, created_at, version, size_bytes FROM "agents"."Checkpoints_heads"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2
