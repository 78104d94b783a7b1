DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '"public"."ziro_checkpoints_heads"'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE "public"."ziro_checkpoints_heads" ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '"public"."ziro_checkpoints_items"'::regclass AND attname = 'item' AND attcompression <> 'l') THEN
        ALTER TABLE "public"."ziro_checkpoints_items" ALTER COLUMN item SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$
