SELECT expires_at > now() FROM "public"."ziro_checkpoints_leases" WHERE thread_id = $1 AND owner = $2 AND token = $3 FOR UPDATE
