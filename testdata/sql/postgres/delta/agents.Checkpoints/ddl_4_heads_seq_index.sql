CREATE UNIQUE INDEX IF NOT EXISTS "Checkpoints_heads_thread_seq_key" ON "agents"."Checkpoints_heads" (thread_id, seq)
