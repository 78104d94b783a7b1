CREATE TABLE IF NOT EXISTS "public"."ziro_checkpoints_leases" (
    thread_id  TEXT NOT NULL PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)
