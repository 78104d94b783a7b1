SELECT thread_id FROM "agents"."Checkpoints"
WHERE thread_id > $1 AND thread_id >= $3 AND thread_id < $4
GROUP BY thread_id ORDER BY thread_id LIMIT $2
