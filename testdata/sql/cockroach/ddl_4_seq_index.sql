CREATE UNIQUE INDEX IF NOT EXISTS "ziro_checkpoints_thread_seq_key" ON "public"."ziro_checkpoints" (thread_id, seq) WHERE seq IS NOT NULL
