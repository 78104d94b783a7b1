CREATE INDEX IF NOT EXISTS "Checkpoints_unnumbered" ON "agents"."Checkpoints" (thread_id) WHERE seq IS NULL
