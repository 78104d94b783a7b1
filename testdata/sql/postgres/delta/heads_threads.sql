SELECT thread_id, count(*), max(checkpoint_id), max(created_at), sum(size_bytes) FROM "public"."ziro_checkpoints_heads"
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2
