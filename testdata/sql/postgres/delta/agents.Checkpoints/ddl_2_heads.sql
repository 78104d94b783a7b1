CREATE TABLE IF NOT EXISTS "agents"."Checkpoints_heads" (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    seq           BIGINT NOT NULL,
    snapshot      JSONB NOT NULL,
    arrays        JSONB NOT NULL,
    lo            BIGINT[] NOT NULL,
    hi            BIGINT[] NOT NULL,
    alloc         JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    total_bytes   BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)
