INSERT INTO "public"."ziro_checkpoints_leases" AS l (thread_id, owner, token, expires_at)
VALUES ($1, $2, 1, now() + $3::FLOAT8 * INTERVAL '1 second')
ON CONFLICT (thread_id) DO UPDATE
SET owner = excluded.owner, token = l.token + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= now() OR l.owner = excluded.owner
RETURNING token, expires_at
