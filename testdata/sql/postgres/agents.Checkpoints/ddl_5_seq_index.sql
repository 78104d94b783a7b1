CREATE UNIQUE INDEX IF NOT EXISTS "Checkpoints_thread_seq_key" ON "agents"."Checkpoints" (thread_id, seq) WHERE seq IS NOT NULL
