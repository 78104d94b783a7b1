SELECT expires_at > now() FROM "agents"."Checkpoints_leases" WHERE thread_id = $1 AND owner = $2 AND token = $3 FOR UPDATE
