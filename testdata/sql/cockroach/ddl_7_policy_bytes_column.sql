ALTER TABLE "public"."ziro_checkpoints_policy" ADD COLUMN IF NOT EXISTS max_bytes_per_thread BIGINT NOT NULL DEFAULT 0 CHECK (max_bytes_per_thread >= 0)
