UPDATE "agents"."Checkpoints_heads" AS t SET seq = r.base + r.n
FROM (SELECT checkpoint_id,
             row_number() OVER (ORDER BY checkpoint_id) AS n,
             COALESCE(max(seq) OVER (), 0) AS base
      FROM "agents"."Checkpoints_heads" WHERE thread_id = $1) AS r
WHERE t.thread_id = $1 AND t.checkpoint_id = r.checkpoint_id
