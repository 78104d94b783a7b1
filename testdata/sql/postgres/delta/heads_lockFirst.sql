SELECT pg_advisory_xact_lock(2059259691, hashtext($1))
