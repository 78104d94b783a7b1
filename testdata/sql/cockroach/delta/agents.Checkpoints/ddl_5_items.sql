CREATE TABLE IF NOT EXISTS "agents"."Checkpoints_items" (
    thread_id TEXT NOT NULL,
    pos       BIGINT NOT NULL,
    item      JSONB NOT NULL,
    PRIMARY KEY (thread_id, pos)
)
