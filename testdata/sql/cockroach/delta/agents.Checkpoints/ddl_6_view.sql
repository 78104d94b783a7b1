CREATE OR REPLACE VIEW "agents"."Checkpoints" AS
SELECT h.thread_id, h.checkpoint_id,
       h.snapshot || COALESCE((
           SELECT jsonb_object_agg(a.key, (
               SELECT COALESCE(jsonb_agg(i.item ORDER BY i.pos), '[]'::jsonb)
               FROM unnest(h.lo, h.hi) AS s(lo, hi)
               JOIN LATERAL (
                   SELECT pos, item FROM "agents"."Checkpoints_items" WHERE thread_id = h.thread_id AND pos >= s.lo AND pos < s.hi
               ) AS i ON true
               WHERE s.lo >> 40 = (a.value->>'s')::bigint))
           FROM jsonb_each(h.arrays) AS a), '{}'::jsonb) AS snapshot,
       h.version, h.size_bytes, h.created_at, h.seq, h.total_bytes
FROM "agents"."Checkpoints_heads" AS h
