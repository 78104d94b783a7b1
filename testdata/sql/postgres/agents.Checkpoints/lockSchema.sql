SELECT pg_advisory_xact_lock(-755650642, 0)
