DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '"agents"."Checkpoints"'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE "agents"."Checkpoints" ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$
