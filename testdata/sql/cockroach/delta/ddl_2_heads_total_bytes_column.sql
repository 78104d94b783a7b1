ALTER TABLE "public"."ziro_checkpoints_heads" ADD COLUMN IF NOT EXISTS total_bytes BIGINT
