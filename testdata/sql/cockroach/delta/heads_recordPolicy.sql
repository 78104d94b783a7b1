INSERT INTO "public"."ziro_checkpoints_policy" (max_checkpoints_per_thread, max_bytes_per_thread) VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING
