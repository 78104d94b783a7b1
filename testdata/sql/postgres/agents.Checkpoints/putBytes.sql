WITH head AS (
    SELECT checkpoint_id, seq, total_bytes FROM "agents"."Checkpoints"
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq, total_bytes FROM "agents"."Checkpoints"
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR UPDATE
), unnumbered AS (
    SELECT EXISTS (SELECT 1 FROM "agents"."Checkpoints" WHERE thread_id = $1 AND seq IS NULL) OR EXISTS (SELECT 1 FROM head WHERE total_bytes IS NULL) AS found
), ins AS (
    INSERT INTO "agents"."Checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $4, $5, locked.seq + 1, locked.total_bytes + $5::INTEGER
    FROM locked, head, unnumbered
    WHERE locked.seq = head.seq
      AND NOT unnumbered.found
      AND locked.checkpoint_id < $2
      AND ($6::text IS NULL OR $6::text = locked.checkpoint_id)
    ON CONFLICT (thread_id, checkpoint_id) DO NOTHING
    RETURNING seq, total_bytes
), low AS (
    SELECT seq FROM "agents"."Checkpoints" WHERE thread_id = $1 AND seq IS NOT NULL ORDER BY seq LIMIT 1
), keep AS (
    SELECT COALESCE((
        SELECT seq FROM "agents"."Checkpoints"
        WHERE thread_id = $1 AND seq IS NOT NULL
          AND seq >= (SELECT seq FROM low)
          AND seq > (SELECT seq FROM ins) - COALESCE($7::bigint, (SELECT seq FROM ins))
          AND total_bytes - size_bytes >= (SELECT total_bytes FROM ins) - $8::bigint
        ORDER BY seq
        LIMIT 1), (SELECT seq FROM ins)) AS seq
), del AS (
    DELETE FROM "agents"."Checkpoints"
    WHERE thread_id = $1 AND seq IS NOT NULL
      AND seq >= (SELECT seq FROM low)
      AND seq < (SELECT seq FROM keep)
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq FROM head),
       EXISTS (SELECT 1 FROM locked), (SELECT seq FROM locked), (SELECT found FROM unnumbered),
       EXISTS (SELECT 1 FROM "agents"."Checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2), (SELECT count(*) FROM del)
