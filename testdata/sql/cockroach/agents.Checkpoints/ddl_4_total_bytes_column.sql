ALTER TABLE "agents"."Checkpoints" ADD COLUMN IF NOT EXISTS total_bytes BIGINT
