INSERT INTO "agents"."Checkpoints_policy" (max_checkpoints_per_thread, max_bytes_per_thread) VALUES ($1, $2)
ON CONFLICT (singleton) DO UPDATE SET max_checkpoints_per_thread = excluded.max_checkpoints_per_thread,
    max_bytes_per_thread = excluded.max_bytes_per_thread
