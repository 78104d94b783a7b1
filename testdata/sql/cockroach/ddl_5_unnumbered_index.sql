CREATE INDEX IF NOT EXISTS "ziro_checkpoints_unnumbered" ON "public"."ziro_checkpoints" (thread_id) WHERE seq IS NULL
