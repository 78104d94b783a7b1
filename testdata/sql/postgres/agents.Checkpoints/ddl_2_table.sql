CREATE TABLE IF NOT EXISTS "agents"."Checkpoints" (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    seq           BIGINT,
    total_bytes   BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)
