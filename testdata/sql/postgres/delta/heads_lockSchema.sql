SELECT pg_advisory_xact_lock(134129620, 0)
