CREATE UNIQUE INDEX IF NOT EXISTS "ziro_checkpoints_heads_thread_seq_key" ON "public"."ziro_checkpoints_heads" (thread_id, seq)
