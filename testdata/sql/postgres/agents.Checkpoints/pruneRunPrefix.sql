DELETE FROM "agents"."Checkpoints" AS t
WHERE t.thread_id COLLATE "C" >= $1 AND t.thread_id COLLATE "C" <= $2 AND t.created_at < $3
RETURNING t.thread_id
