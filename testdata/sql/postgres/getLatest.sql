SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1
