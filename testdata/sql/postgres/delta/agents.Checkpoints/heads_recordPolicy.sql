INSERT INTO "agents"."Checkpoints_policy" (max_checkpoints_per_thread, max_bytes_per_thread) VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING
