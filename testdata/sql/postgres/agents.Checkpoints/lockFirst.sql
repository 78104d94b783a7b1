SELECT pg_advisory_xact_lock(-948132309, hashtext($1))
