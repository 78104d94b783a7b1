CREATE TABLE IF NOT EXISTS "public"."ziro_checkpoints_items" (
    thread_id TEXT COLLATE "C" NOT NULL,
    pos       BIGINT NOT NULL,
    item      JSONB NOT NULL,
    PRIMARY KEY (thread_id, pos)
)
