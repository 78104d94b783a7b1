ALTER TABLE "agents"."Checkpoints_heads" ADD COLUMN IF NOT EXISTS total_bytes BIGINT
