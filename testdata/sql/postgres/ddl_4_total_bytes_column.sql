ALTER TABLE "public"."ziro_checkpoints" ADD COLUMN IF NOT EXISTS total_bytes BIGINT
