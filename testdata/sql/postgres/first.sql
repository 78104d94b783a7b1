INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
SELECT $1, $2, $3::text::jsonb, $4, $5, 1, $5::INTEGER
WHERE NOT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1)
RETURNING seq
