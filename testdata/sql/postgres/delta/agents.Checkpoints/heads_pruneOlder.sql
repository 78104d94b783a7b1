DELETE FROM "agents"."Checkpoints_heads" AS t
USING (SELECT value->>0 AS thread_id, value->>1 AS locked FROM jsonb_array_elements($1::text::jsonb)) AS l
WHERE t.thread_id >= $2 AND t.thread_id <= $3 AND t.thread_id = l.thread_id AND t.checkpoint_id < l.locked
  AND t.created_at < $4
RETURNING t.thread_id
