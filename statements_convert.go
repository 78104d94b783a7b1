package pgcheckpoint

import "strings"

// convertStatements are the statements of Convert (convert.go) between a full table {F} and a delta
// table (heads {H}, items {I}, view {V}). Each batch of threads is written by one statement, so a batch
// is stored whole or not at all.
type convertStatements struct {
	// tableType reports what a name is ($1 schema, $2 table): "BASE TABLE", "VIEW" or no row.
	tableType string
	// fullThreads and headsThreads list the next threads of the source after $1, at most $2, with
	// their checkpoint count and bytes (size_bytes), in byte order.
	fullThreads, headsThreads string
	// fullRows reads the full table's checkpoints of the threads $1..$2, in thread then id order.
	fullRows string
	// writeDelta stores a batch of planned heads and their new items, $1 a JSON array of
	// {"t","c","q","s","a","l","lo","hi","v","b","at","i","p"} (see convert.go), with each thread's
	// running totals (total_bytes, the batch holds whole threads); it returns the heads and the items
	// stored.
	writeDelta string
	// writeFull copies the threads $1..$2 from the delta table's view (which rebuilds each snapshot)
	// into the full table, ids, created_at, version, size and seq as they are, and each thread's running
	// totals.
	writeFull string
	// fullAny, deltaAny: whether the table holds anything (a delta table: heads or items).
	fullAny, deltaAny string
	// fullLast, headsLast: the table's greatest thread id (NULL when empty).
	fullLast, headsLast string
	// fullCount, headsCount: how many checkpoints thread $1 has.
	fullCount, headsCount string
}

func newConvertStatements(full names, heads names, items, view string) convertStatements {
	r := strings.NewReplacer("{F}", full.table, "{H}", heads.table, "{I}", items, "{V}", view)
	threads := func(t string) string {
		return r.Replace(`SELECT thread_id, count(*), COALESCE(sum(size_bytes), 0) FROM ` + t + `
WHERE thread_id > $1
GROUP BY thread_id
ORDER BY thread_id
LIMIT $2`)
	}
	return convertStatements{
		tableType:    tableTypeSQL,
		fullThreads:  threads("{F}"),
		headsThreads: threads("{H}"),
		fullRows: r.Replace(`SELECT thread_id, checkpoint_id, snapshot::text, version, size_bytes, created_at, seq FROM {F}
WHERE thread_id >= $1 AND thread_id <= $2
ORDER BY thread_id, checkpoint_id`),
		writeDelta: r.Replace(`WITH b AS (
    SELECT value AS h FROM jsonb_array_elements($1::text::jsonb)
), hs AS (
    INSERT INTO {H} (thread_id, checkpoint_id, seq, snapshot, arrays, alloc, lo, hi, version, size_bytes, created_at, total_bytes)
    SELECT h->>'t', h->>'c', (h->>'q')::bigint, h->'s', h->'a', h->'l', (h->>'lo')::bigint[], (h->>'hi')::bigint[],
           (h->>'v')::integer, (h->>'b')::integer, (h->>'at')::timestamptz,
           (sum((h->>'b')::bigint) OVER (PARTITION BY h->>'t' ORDER BY (h->>'q')::bigint))::BIGINT
    FROM b
    RETURNING 1
), its AS (
    INSERT INTO {I} (thread_id, pos, item)
    SELECT b.h->>'t', x.pos, x.item
    FROM b CROSS JOIN LATERAL (
        SELECT p.pos, e.item
        FROM jsonb_array_elements(b.h->'i') WITH ORDINALITY AS e(item, ord)
        JOIN unnest((b.h->>'p')::bigint[]) WITH ORDINALITY AS p(pos, ord) ON p.ord = e.ord
    ) AS x
    RETURNING 1
)
SELECT (SELECT count(*) FROM hs), (SELECT count(*) FROM its)`),
		writeFull: r.Replace(`INSERT INTO {F} (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq, total_bytes)
SELECT thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq,
       (sum(size_bytes) OVER (PARTITION BY thread_id ORDER BY seq))::BIGINT FROM {V}
WHERE thread_id >= $1 AND thread_id <= $2`),
		fullAny:    r.Replace(`SELECT EXISTS (SELECT 1 FROM {F})`),
		deltaAny:   r.Replace(`SELECT EXISTS (SELECT 1 FROM {H}) OR EXISTS (SELECT 1 FROM {I})`),
		fullLast:   r.Replace(`SELECT max(thread_id) FROM {F}`),
		headsLast:  r.Replace(`SELECT max(thread_id) FROM {H}`),
		fullCount:  r.Replace(`SELECT count(*) FROM {F} WHERE thread_id = $1`),
		headsCount: r.Replace(`SELECT count(*) FROM {H} WHERE thread_id = $1`),
	}
}
