UPDATE "agents"."Checkpoints_leases" SET expires_at = now()
WHERE thread_id = $1 AND owner = $2 AND token = $3 AND expires_at > now()
