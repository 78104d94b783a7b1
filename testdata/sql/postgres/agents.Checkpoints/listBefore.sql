SELECT checkpoint_id, created_at, version, size_bytes FROM "agents"."Checkpoints"
WHERE thread_id = $1 AND checkpoint_id < $2 ORDER BY checkpoint_id DESC LIMIT $3
