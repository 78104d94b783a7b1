SELECT
    EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = 'seq'),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $4),
    EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $5),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = 'total_bytes'),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $5 AND column_name = 'max_bytes_per_thread')
