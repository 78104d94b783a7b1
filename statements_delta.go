package pgcheckpoint

import (
	"reflect"
	"strings"
)

// deltaStatements are the statements of a delta table that differ from the full layout's (the others
// run on the heads table as they are: see delta). {H} is the heads table, {I} the items table, {V} the
// view. Items live in one position space per thread; a head's arrays column maps each spilled array's key
// to {"s": slot, "r": [[lo, hi], ...], "n": elements, "h": chain hash}: the array is the items at
// positions lo <= pos < hi of each range, in order, which is also the order of their positions (see
// slot in delta.go); alloc maps every key the thread ever spilled to [slot, next free position]. The columns lo and hi repeat every range of every array as two
// bigint arrays (spans): the trim and gc compare spans, and unnest of an array gives the planner a small
// row estimate where nested jsonb functions made it guess 10,000 rows and compile the put with JIT.
type deltaStatements struct {
	// put (dialects with oneStatementPut) appends a head after the thread's newest, stores its new
	// items, trims the thread to the cap and removes the items only trimmed heads held, in one statement.
	// $1 thread, $2 id, $3 head snapshot, $4 version, $5 size_bytes, $6 fence, $7 arrays, $8 alloc,
	// $9 basis (the head the plan was made on), $10 new items (a JSON array), $11 their positions
	// (bigint[] text), $12 and $13 the head's spans (lo, hi as bigint[] text), $14 cap (NULL: no
	// trim). It reports a deltaReport row.
	put string
	// insert is put without the trim ($1..$13), for dialects without oneStatementPut; trim ($1 thread,
	// $2 seq bound) follows in the same transaction.
	insert, trim string
	// putBytes, insertBytes and trimBytes are put, insert and trim for a policy with a byte budget (see
	// bytesTrimCTE in statements.go): putBytes takes $14 cap (NULL: none) and $15 budget; trimBytes $1
	// thread, $2 the new head's seq, $3 cap (NULL: none), $4 budget. Their head check also refuses a
	// head without a running total, and their report says so (the last column), so the heads are
	// renumbered first.
	putBytes, insertBytes, trimBytes string
	// first stores the first head of an empty thread and its items ($1..$5, $6 arrays, $7 alloc, $8
	// items, $9 and $10 spans, $11 positions), if the thread is still empty; it returns the new seq
	// (NULL: not empty).
	first string
	// peek reads the thread's newest head's state: id, arrays, alloc (no row: empty thread).
	peek string
	// getLatest and getByID ($2 id) return the head's metadata, snapshot and arrays in one row, and
	// each of its items (position, JSON text) in another.
	getLatest, getByID string
	// gc removes the items no head of the threads in $1 (a JSON array of thread ids) holds: it runs after
	// deletes and prunes, in their transaction.
	gc string
	// fork is the full layout's fork (statements.fork, same parameters and report) for a delta table:
	// it copies the heads (the checkpoint $2 and up to $4 - 1 older ones of thread $1) into thread $3,
	// numbered 1, 2, ... in id order, and the items those heads hold (their ranges merged, each item
	// once), in one statement on the server. It copies the items: they are keyed by thread, so the two
	// threads share none and live apart from then on (docs/storage.md, Fork).
	fork string
	// catalog reports the schema, the type of <table> ("VIEW" for a delta table), whether the heads and
	// items tables and the heads' seq index exist, whether the heads have total_bytes and the policy
	// table ($6) max_bytes_per_thread.
	catalog string
}

// deltaHeadCTE reads the thread's newest head with what a writer plans from, and locks it as the full
// layout's headCTE does (see there); the insert also needs the head to be the writer's basis ($9).
// With a byte budget (HEADTOTAL) the head must have a running total too (see headCTE).
const deltaHeadCTE = `WITH head AS (
    SELECT checkpoint_id, seq, arrays, alloc, total_bytes FROM {H}
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq, total_bytes FROM {H}
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR UPDATE
), ins AS (
    INSERT INTO {H} (thread_id, checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $7::text::jsonb, $8::text::jsonb, $12::text::bigint[], $13::text::bigint[], $4, $5, locked.seq + 1,
           locked.total_bytes + $5::INTEGER
    FROM locked, head
    WHERE locked.seq = head.seq
      AND locked.checkpoint_id < $2
      AND ($6::text IS NULL OR $6::text = locked.checkpoint_id)
      AND locked.checkpoint_id = $9::textHEADTOTAL
    ON CONFLICT (thread_id, checkpoint_id) DO NOTHING
    RETURNING seq, total_bytes
)`

// deltaItemsCTE stores the new items, only when the head went in. Positions from a slot's next free one
// in the basis' alloc up are held by no head (a head's positions are below its descendants' next free
// ones), so an item found there (left by a head deleted through the view, say) is overwritten.
const deltaItemsCTE = `, items AS (
    INSERT INTO {I} (thread_id, pos, item)
    SELECT $1, p.pos, e.item
    FROM jsonb_array_elements($ITEMS::text::jsonb) WITH ORDINALITY AS e(item, ord)
    JOIN unnest($POS::text::bigint[]) WITH ORDINALITY AS p(pos, ord) ON p.ord = e.ord
    WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
)`

// deltaTrimCTE deletes the heads from the oldest up to the one numbered SEQ (the full layout's trim),
// then the items that only they held: a thread's heads descend from one another and a position, once
// dropped from an array, is never taken up again, so an item of a trimmed head that some retained head
// holds is held by the oldest retained head (keep). Ranges are compared as segments between their
// endpoints.
//
// With a byte budget, DELWHERE is deltaBytesWhere instead of deltaCountWhere, after a CTE kb that finds
// the oldest head to keep as the full layout's bytesTrimCTE does.
const deltaTrimCTE = `del AS (
    DELETE FROM {H}
    WHERE thread_id = $1DELWHERE
    RETURNING checkpoint_id, lo, hi
), keep AS (
    KEEP
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
    DELETE FROM {I} AS i USING freed
    WHERE i.thread_id = $1 AND i.pos >= freed.lo AND i.pos < freed.hi
    RETURNING 1
)`

// deltaCountWhere deletes from the oldest head up to the one numbered SEQ.
const deltaCountWhere = `
      AND checkpoint_id >= (
        SELECT checkpoint_id FROM {H} WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
      AND checkpoint_id <= (
        SELECT checkpoint_id FROM {H} WHERE thread_id = $1 AND seq = SEQ)`

// deltaBytesWhere deletes from the oldest head up to the one before kb's.
const deltaBytesWhere = `
      AND seq >= (SELECT seq FROM low)
      AND seq < (SELECT seq FROM kb)`

// deltaKeepBytes is the oldest head a byte budget keeps (kb), from the oldest live head (low; see
// bytesTrimCTE): NEWSEQ and NEWTOTAL are the new head's seq and total, CAP the cap (NULL: none) and
// BUDGET the budget.
const deltaKeepBytes = `low AS (
    SELECT seq FROM {H} WHERE thread_id = $1 ORDER BY seq LIMIT 1
), kb AS (
    SELECT COALESCE((
        SELECT seq FROM {H}
        WHERE thread_id = $1
          AND seq >= (SELECT seq FROM low)
          AND seq > NEWSEQ - COALESCE(CAP, NEWSEQ)
          AND total_bytes - size_bytes >= NEWTOTAL - BUDGET
        ORDER BY seq
        LIMIT 1), NEWSEQ) AS seq
), `

// deltaKeepAfterTrim is the spans of the oldest head after the trimmed ones. In the one-statement put
// the new head is not in the statement's snapshot: when no older head is retained, it is the oldest
// (deltaKeepOrNew, $12 and $13).
const deltaKeepAfterTrim = `SELECT lo, hi FROM {H}
    WHERE thread_id = $1 AND checkpoint_id > (SELECT max(checkpoint_id) FROM del)
    ORDER BY checkpoint_id LIMIT 1`

// deltaKeepOrNew is the spans of the oldest head kept, the new one when no older head is. The choice is
// by order, not by a NOT EXISTS probe of the heads: the planner answered that probe with a
// sequential scan of the heads table (it expects to meet a matching row early), which steps over every
// dead head at the start of the table (seen in TestBytesPlanDeltaTrimDoesNotScanThread).
const deltaKeepOrNew = `SELECT lo, hi FROM (
        SELECT lo, hi, 0 AS o FROM (` + deltaKeepAfterTrim + `) AS k
        UNION ALL
        SELECT $12::text::bigint[], $13::text::bigint[], 1
    ) AS u
    ORDER BY o LIMIT 1`

// deltaReportSQL is the row a put attempt returns: putReportSQL's fields (unnumbered is always false: a
// head always has a number), whether the head lacks a running total (NOTOTAL: with a byte budget only),
// the heads trimmed, the snapshot's head state (so a writer whose basis is
// stale plans again without another read), the items stored and the items removed.
const deltaReportSQL = `
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq FROM head),
       EXISTS (SELECT 1 FROM locked), (SELECT seq FROM locked),
       EXISTS (SELECT 1 FROM {H} WHERE thread_id = $1 AND checkpoint_id = $2),
       (SELECT arrays::text FROM head), (SELECT alloc::text FROM head), (SELECT count(*) FROM items), NOTOTAL, `

// deltaGetSQL reads one head (WHERE) and its items: a first row with the head (pos NULL), then one row
// per item, each span read by an index range scan in position order. Nothing is sorted or aggregated on
// the server; the client checks the order (and sorts when a plan ever returns another).
const deltaGetSQL = `WITH h AS (
    SELECT checkpoint_id, created_at, version, size_bytes, snapshot, arrays, lo, hi FROM {H}
    WHERE_CLAUSE
)
SELECT h.checkpoint_id, h.created_at, h.version, h.size_bytes, h.snapshot::text, h.arrays::text, NULL::bigint, NULL::text
FROM h
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, i.pos, i.item::text
FROM h, unnest(h.lo, h.hi) AS s(lo, hi)
CROSS JOIN LATERAL (
    SELECT pos, item FROM {I} WHERE thread_id = $1 AND pos >= s.lo AND pos < s.hi ORDER BY pos
) AS i`

// deltaGCSQL removes the items of threads $1 outside every range of their heads: the gaps between the
// ranges merged (gaps and islands), below the first and above the last; a thread without heads keeps no
// item.
const deltaGCSQL = `WITH t AS (
    SELECT DISTINCT value AS thread_id FROM jsonb_array_elements_text($1::text::jsonb)
), r AS (
    SELECT h.thread_id, u.lo, u.hi
    FROM {H} AS h, unnest(h.lo, h.hi) AS u(lo, hi)
    WHERE h.thread_id IN (SELECT thread_id FROM t)
), o AS (
    SELECT thread_id, lo, hi,
           max(hi) OVER (PARTITION BY thread_id ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM r WHERE hi > lo
), gaps AS (
    SELECT thread_id, COALESCE(reach, 0) AS lo, lo AS hi FROM o WHERE reach IS NULL OR reach < lo
    UNION ALL
    SELECT t.thread_id, COALESCE((SELECT max(o.hi) FROM o WHERE o.thread_id = t.thread_id), 0), 9223372036854775807 FROM t
)
DELETE FROM {I} AS i USING gaps
WHERE i.thread_id = gaps.thread_id AND i.pos >= gaps.lo AND i.pos < gaps.hi`

// deltaForkSQL is deltaStatements.fork. An item at a position the copies hold, left in the target
// thread by heads deleted through the view, is overwritten (as a put overwrites it). With a byte budget
// ($5) only the newest heads whose sizes fit are copied (the forked one always), and only their items;
// the copies get their own running totals.
const deltaForkSQL = `WITH source AS (
    SELECT EXISTS (SELECT 1 FROM {H} WHERE thread_id = $1 AND checkpoint_id = $2) AS found
), target AS (
    SELECT EXISTS (SELECT 1 FROM {H} WHERE thread_id = $3) AS found
), hl AS (
    SELECT checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, created_at,
           sum(size_bytes) OVER (ORDER BY checkpoint_id DESC) AS upto
    FROM {H}
    WHERE thread_id = $1 AND checkpoint_id <= $2
    ORDER BY checkpoint_id DESC
    LIMIT $4
), h AS (
    SELECT * FROM hl WHERE $5::bigint IS NULL OR hl.upto <= $5::bigint OR hl.checkpoint_id = $2
), ins AS (
    INSERT INTO {H} (thread_id, checkpoint_id, seq, snapshot, arrays, alloc, lo, hi, version, size_bytes, created_at, total_bytes)
    SELECT $3::text, h.checkpoint_id, row_number() OVER (ORDER BY h.checkpoint_id),
           h.snapshot, h.arrays, h.alloc, h.lo, h.hi, h.version, h.size_bytes, h.created_at,
           (sum(h.size_bytes) OVER (ORDER BY h.checkpoint_id))::BIGINT
    FROM h, source, target
    WHERE source.found AND NOT target.found
    RETURNING 1
), r AS (
    SELECT u.lo, u.hi FROM h, unnest(h.lo, h.hi) AS u(lo, hi) WHERE u.hi > u.lo
), o AS (
    SELECT lo, hi, max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM r
), g AS (
    SELECT lo, hi, sum(CASE WHEN reach IS NULL OR reach < lo THEN 1 ELSE 0 END) OVER (ORDER BY lo, hi ROWS UNBOUNDED PRECEDING) AS island FROM o
), spans AS (
    SELECT min(lo) AS lo, max(hi) AS hi FROM g GROUP BY island
), items AS (
    INSERT INTO {I} (thread_id, pos, item)
    SELECT $3::text, i.pos, i.item
    FROM spans CROSS JOIN LATERAL (
        SELECT pos, item FROM {I} WHERE thread_id = $1 AND pos >= spans.lo AND pos < spans.hi
    ) AS i, source, target
    WHERE source.found AND NOT target.found
    ON CONFLICT (thread_id, pos) DO UPDATE SET item = excluded.item
    RETURNING 1
)
SELECT (SELECT found FROM source), (SELECT found FROM target), (SELECT count(*) FROM ins)`

// deltaSQL fills in a delta table's names.
func deltaSQL(heads names, items, view, s string) string {
	return strings.NewReplacer("{H}", heads.table, "{I}", items, "{V}", view).Replace(s)
}

// newDeltaStatements writes out a delta table's own statements.
func newDeltaStatements(heads names, items, view string, f dialectFacts) deltaStatements {
	sq := func(s string) string { return deltaSQL(heads, items, view, s) }
	itemsAt := func(pos, list string) string {
		return strings.NewReplacer("$POS", pos, "$ITEMS", list).Replace(deltaItemsCTE)
	}
	trimAt := func(seq, keep string) string {
		where := strings.Replace(deltaCountWhere, "SEQ", seq, 1)
		return strings.NewReplacer("DELWHERE", where, "KEEP", keep).Replace(deltaTrimCTE)
	}
	bytesTrimAt := func(newSeq, newTotal, cap, budget, keep string) string {
		kb := strings.NewReplacer("NEWSEQ", newSeq, "NEWTOTAL", newTotal, "CAP", cap, "BUDGET", budget).Replace(deltaKeepBytes)
		return kb + strings.NewReplacer("DELWHERE", deltaBytesWhere, "KEEP", keep).Replace(deltaTrimCTE)
	}
	head := func(bytes bool) string {
		if bytes {
			return strings.Replace(deltaHeadCTE, "HEADTOTAL", "\n      AND head.total_bytes IS NOT NULL", 1)
		}
		return strings.Replace(deltaHeadCTE, "HEADTOTAL", "", 1)
	}
	report := func(bytes bool) string {
		if bytes {
			return strings.Replace(deltaReportSQL, "NOTOTAL", "EXISTS (SELECT 1 FROM head WHERE total_bytes IS NULL)", 1)
		}
		return strings.Replace(deltaReportSQL, "NOTOTAL", "false", 1)
	}
	s := deltaStatements{
		insert:      sq(head(false) + itemsAt("$11", "$10") + report(false) + `0, 0`),
		insertBytes: sq(head(true) + itemsAt("$11", "$10") + report(true) + `0, 0`),
		trimBytes: sq(`WITH ` + bytesTrimAt("$2::bigint", "(SELECT total_bytes FROM {H} WHERE thread_id = $1 AND seq = $2::bigint)", "$3::bigint", "$4::bigint", deltaKeepAfterTrim) + `
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM gone)`),
		trim: sq(`WITH ` + trimAt("$2", deltaKeepAfterTrim) + `
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM gone)`),
		first: sq(`WITH ins AS (
    INSERT INTO {H} (thread_id, checkpoint_id, snapshot, arrays, alloc, lo, hi, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $6::text::jsonb, $7::text::jsonb, $9::text::bigint[], $10::text::bigint[], $4, $5, 1, $5::INTEGER
    WHERE NOT EXISTS (SELECT 1 FROM {H} WHERE thread_id = $1)
    RETURNING seq
)` + itemsAt("$11", "$8") + `
SELECT (SELECT seq FROM ins), (SELECT count(*) FROM items)`),
		peek: sq(`SELECT checkpoint_id, arrays::text, alloc::text FROM {H}
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`),
		getLatest: sq(strings.Replace(deltaGetSQL, "WHERE_CLAUSE", "WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1", 1)),
		getByID:   sq(strings.Replace(deltaGetSQL, "WHERE_CLAUSE", "WHERE thread_id = $1 AND checkpoint_id = $2", 1)),
		gc:        sq(deltaGCSQL),
		fork:      sq(deltaForkSQL),
		catalog: `SELECT
    EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1),
    (SELECT table_type FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $3 AND table_type = 'BASE TABLE'),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $4 AND table_type = 'BASE TABLE'),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $3 AND indexname = $5),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $3 AND column_name = 'total_bytes'),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $6 AND column_name = 'max_bytes_per_thread')`,
	}
	if f.oneStatementPut {
		s.put = sq(head(false) + itemsAt("$11", "$10") + `, ` + trimAt("(SELECT seq FROM ins) - $14::bigint", deltaKeepOrNew) +
			report(false) + `(SELECT count(*) FROM del), (SELECT count(*) FROM gone)`)
		s.putBytes = sq(head(true) + itemsAt("$11", "$10") + `, ` +
			bytesTrimAt("(SELECT seq FROM ins)", "(SELECT total_bytes FROM ins)", "$14::bigint", "$15::bigint", deltaKeepOrNew) +
			report(true) + `(SELECT count(*) FROM del), (SELECT count(*) FROM gone)`)
	}
	return s
}

// tableTypeSQL reports what <table> is ($1 schema, $2 table): "BASE TABLE", "VIEW" or no row. A full
// writer asks it after a statement failed in a way a delta table's view makes it fail.
const tableTypeSQL = `SELECT table_type FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2`

// deltaStatementMap lists the non-empty statements of s by field name (the golden files, mocks).
func deltaStatementMap(s deltaStatements) map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String && f.String() != "" {
			out[v.Type().Field(i).Name] = f.String()
		}
	}
	return out
}
