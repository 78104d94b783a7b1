UPDATE "agents"."Checkpoints_leases" SET expires_at = now() + $4::FLOAT8 * INTERVAL '1 second'
WHERE thread_id = $1 AND owner = $2 AND token = $3 AND expires_at > now()
RETURNING expires_at
