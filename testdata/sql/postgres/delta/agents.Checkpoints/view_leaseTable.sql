CREATE TABLE IF NOT EXISTS "agents"."Checkpoints_leases" (
    thread_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)
