SELECT pg_advisory_xact_lock(-1782114465, hashtext($1))
