-- Generated from pgcheckpoint.SchemaSQL (PostgreSQL, table ziro_checkpoints) by TestMigrationFiles: do not
-- edit. Names are not schema-qualified: the table lands in the first schema of search_path (public by
-- default), which Options.Schema must name. Other names: pgcheckpoint migrate --print --schema S --table T.
-- Idempotent: also upgrades a table created by @ziro-agent/checkpoint-postgres (adds seq and its index).

-- +goose Up
-- +goose StatementBegin
CREATE TABLE IF NOT EXISTS "ziro_checkpoints" (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    seq           BIGINT,
    total_bytes   BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
);

ALTER TABLE "ziro_checkpoints" ADD COLUMN IF NOT EXISTS seq BIGINT;

ALTER TABLE "ziro_checkpoints" ADD COLUMN IF NOT EXISTS total_bytes BIGINT;

CREATE UNIQUE INDEX IF NOT EXISTS "ziro_checkpoints_thread_seq_key" ON "ziro_checkpoints" (thread_id, seq) WHERE seq IS NOT NULL;

CREATE INDEX IF NOT EXISTS "ziro_checkpoints_unnumbered" ON "ziro_checkpoints" (thread_id) WHERE seq IS NULL;

CREATE TABLE IF NOT EXISTS "ziro_checkpoints_policy" (
    singleton                  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    max_checkpoints_per_thread INTEGER NOT NULL CHECK (max_checkpoints_per_thread >= 0)
);

ALTER TABLE "ziro_checkpoints_policy" ADD COLUMN IF NOT EXISTS max_bytes_per_thread BIGINT NOT NULL DEFAULT 0 CHECK (max_bytes_per_thread >= 0);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '"ziro_checkpoints"'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE "ziro_checkpoints" ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;

INSERT INTO "ziro_checkpoints_policy" (max_checkpoints_per_thread, max_bytes_per_thread) VALUES (100, 0) ON CONFLICT (singleton) DO NOTHING;
-- +goose StatementEnd

-- +goose Down
DROP TABLE IF EXISTS "ziro_checkpoints";
