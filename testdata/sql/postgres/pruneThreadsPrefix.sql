SELECT thread_id FROM "public"."ziro_checkpoints"
WHERE thread_id COLLATE "C" > $1 AND thread_id COLLATE "C" >= $3 AND thread_id COLLATE "C" < $4
GROUP BY thread_id ORDER BY thread_id COLLATE "C" LIMIT $2
