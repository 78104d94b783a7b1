INSERT INTO "agents"."Checkpoints_policy" (max_checkpoints_per_thread) VALUES ($1) ON CONFLICT (singleton) DO NOTHING
