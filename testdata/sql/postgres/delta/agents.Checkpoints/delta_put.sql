WITH head AS (
    SELECT checkpoint_id, seq, arrays, alloc, total_bytes FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq, total_bytes FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR UPDATE
), ins AS (
    INSERT INTO "agents"."Checkpoints_heads" (thread_id, checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $7::text::jsonb, $8::text::jsonb, $12::text::bigint[], $13::text::bigint[], $4, $5, locked.seq + 1,
           locked.total_bytes + $5::INTEGER
    FROM locked, head
    WHERE locked.seq = head.seq
      AND locked.checkpoint_id < $2
      AND ($6::text IS NULL OR $6::text = locked.checkpoint_id)
      AND locked.checkpoint_id = $9::text
    ON CONFLICT (thread_id, checkpoint_id) DO NOTHING
    RETURNING seq, total_bytes
), items AS (
    INSERT INTO "agents"."Checkpoints_items" (thread_id, pos, item)
    SELECT $1, p.pos, e.item
    FROM jsonb_array_elements($10::text::jsonb) WITH ORDINALITY AS e(item, ord)
    JOIN unnest($11::text::bigint[]) WITH ORDINALITY AS p(pos, ord) ON p.ord = e.ord
    WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
), del AS (
    DELETE FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1
      AND checkpoint_id >= (
        SELECT checkpoint_id FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
      AND checkpoint_id <= (
        SELECT checkpoint_id FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 AND seq = (SELECT seq FROM ins) - $14::bigint)
    RETURNING checkpoint_id, lo, hi
), keep AS (
    SELECT lo, hi FROM (
        SELECT lo, hi, 0 AS o FROM (SELECT lo, hi FROM "agents"."Checkpoints_heads"
    WHERE thread_id = $1 AND checkpoint_id > (SELECT max(checkpoint_id) FROM del)
    ORDER BY checkpoint_id LIMIT 1) AS k
        UNION ALL
        SELECT $12::text::bigint[], $13::text::bigint[], 1
    ) AS u
    ORDER BY o LIMIT 1
), dr AS (
    SELECT u.lo, u.hi FROM del, unnest(del.lo, del.hi) AS u(lo, hi)
), kr AS (
    SELECT u.lo, u.hi FROM keep, unnest(keep.lo, keep.hi) AS u(lo, hi)
), pts AS (
    SELECT lo AS p FROM dr UNION SELECT hi FROM dr UNION SELECT lo FROM kr UNION SELECT hi FROM kr
), seg AS (
    SELECT p AS lo, lead(p) OVER (ORDER BY p) AS hi FROM pts
), freed AS (
    SELECT seg.lo, seg.hi FROM seg
    WHERE seg.hi IS NOT NULL
      AND EXISTS (SELECT 1 FROM dr WHERE dr.lo <= seg.lo AND dr.hi >= seg.hi)
      AND NOT EXISTS (SELECT 1 FROM kr WHERE kr.lo <= seg.lo AND kr.hi >= seg.hi)
), gone AS (
    DELETE FROM "agents"."Checkpoints_items" AS i USING freed
    WHERE i.thread_id = $1 AND i.pos >= freed.lo AND i.pos < freed.hi
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq FROM head),
       EXISTS (SELECT 1 FROM locked), (SELECT seq FROM locked),
       EXISTS (SELECT 1 FROM "agents"."Checkpoints_heads" WHERE thread_id = $1 AND checkpoint_id = $2),
       (SELECT arrays::text FROM head), (SELECT alloc::text FROM head), (SELECT count(*) FROM items), false, (SELECT count(*) FROM del), (SELECT count(*) FROM gone)
