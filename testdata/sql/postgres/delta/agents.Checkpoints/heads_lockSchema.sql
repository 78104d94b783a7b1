SELECT pg_advisory_xact_lock(1148164950, 0)
