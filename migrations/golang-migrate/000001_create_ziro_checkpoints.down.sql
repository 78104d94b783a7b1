-- Generated from pgcheckpoint.SchemaSQL (PostgreSQL, table ziro_checkpoints) by TestMigrationFiles: do not
-- edit. Names are not schema-qualified: the table lands in the first schema of search_path (public by
-- default), which Options.Schema must name. Other names: pgcheckpoint migrate --print --schema S --table T.
-- Drops the table and every checkpoint in it.

DROP TABLE IF EXISTS "ziro_checkpoints";
