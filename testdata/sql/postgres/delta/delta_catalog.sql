SELECT
    EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1),
    (SELECT table_type FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $3 AND table_type = 'BASE TABLE'),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $4 AND table_type = 'BASE TABLE'),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $3 AND indexname = $5),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $3 AND column_name = 'total_bytes'),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $6 AND column_name = 'max_bytes_per_thread')
