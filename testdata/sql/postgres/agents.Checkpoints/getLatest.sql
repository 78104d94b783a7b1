SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "agents"."Checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1
