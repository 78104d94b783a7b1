SELECT pg_advisory_xact_lock(974868751, hashtext($1))
