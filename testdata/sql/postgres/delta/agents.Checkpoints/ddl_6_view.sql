CREATE OR REPLACE VIEW "agents"."Checkpoints" AS
SELECT h.thread_id, h.checkpoint_id,
       h.snapshot || COALESCE((
           SELECT jsonb_object_agg(a.key, (
               SELECT COALESCE(jsonb_agg(i.item ORDER BY r.ord, i.pos), '[]'::jsonb)
               FROM jsonb_array_elements(a.value->'r') WITH ORDINALITY AS r(v, ord)
               JOIN "agents"."Checkpoints_items" AS i ON i.thread_id = h.thread_id AND i.pos >= (r.v->>0)::bigint AND i.pos < (r.v->>1)::bigint))
           FROM jsonb_each(h.arrays) AS a), '{}'::jsonb) AS snapshot,
       h.version, h.size_bytes, h.created_at, h.seq
FROM "agents"."Checkpoints_heads" AS h
