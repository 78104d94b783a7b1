UPDATE "agents"."Checkpoints_heads" AS t SET seq = r.base + r.n, total_bytes = r.total
FROM (SELECT checkpoint_id,
             row_number() OVER (ORDER BY checkpoint_id) AS n,
             COALESCE(max(seq) OVER (), 0) AS base,
             (sum(size_bytes) OVER (ORDER BY checkpoint_id))::BIGINT AS total
      FROM "agents"."Checkpoints_heads" WHERE thread_id = $1) AS r
WHERE t.thread_id = $1 AND t.checkpoint_id = r.checkpoint_id
