SELECT pg_advisory_xact_lock(1675668868, 0)
