ALTER TABLE "public"."ziro_checkpoints" ADD COLUMN IF NOT EXISTS seq BIGINT
