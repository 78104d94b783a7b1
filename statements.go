package pgcheckpoint

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// statements is every SQL text a Checkpointer runs, with the table name already quoted in. This file is
// the one place SQL is written; testdata/sql holds the generated text of each dialect as golden files
// (go test -run TestGoldenSQL -update rewrites them), and the sqlmock tests and pgcheckpointmock read
// the same statements. Parameters: $1 is always the thread id.
type statements struct {
	// put inserts a checkpoint and trims the thread in one statement (dialects with oneStatementPut).
	// $2 id, $3 snapshot, $4 version, $5 size_bytes, $6 fence (NULL: none; else the head the new row
	// must follow), $7 cap (NULL: no trim). It reports one putReport row.
	put string
	// insert is put without the trim ($1..$6), for dialects without oneStatementPut; trim follows it in
	// the same transaction.
	insert string
	// trim deletes the thread's rows at or below the row numbered $2.
	trim string
	// putBytes, insertBytes and trimBytes are put, insert and trim for a policy with a byte budget
	// (bytesTrimCTE): putBytes takes $7 cap (NULL: none) and $8 budget; insertBytes is insert; trimBytes
	// takes $2 the new row's seq, $3 cap (NULL: none), $4 budget. Their head check also refuses a head
	// without a running total (see headCTE), so the thread is renumbered first.
	putBytes, insertBytes, trimBytes string
	// first inserts the first row of an empty thread ($1..$5), numbered 1, if the thread is still
	// empty, and returns its seq. It runs in a transaction after lockFirst (dialects with advisory
	// locks) or at SERIALIZABLE: either way no concurrent first put interleaves with it.
	first string
	// lockFirst takes a transaction-level advisory lock on thread $1, scoped to this table.
	lockFirst string
	// stored returns a row when checkpoint $2 is in thread $1: a put whose attempt has an unknown outcome
	// looks its id up instead of running the insert again (see settle in put.go).
	stored string
	// lockRows locks every row of the thread, newest first, and returns their ids. Renumbering a thread
	// (delete of one checkpoint, rows written by TypeScript) holds these locks, so no put can append
	// or trim while the numbers change.
	lockRows string
	// lockNewest locks the thread's newest row and returns its id (no row when the thread is empty).
	// Renumbering takes this lock before any other row's: a put holds only the head's lock, so whoever
	// holds the newest row's lock first goes first, and nobody waits for a row lock while holding one
	// the other needs.
	lockNewest string
	// savepoint, rollbackToSavepoint and releaseSavepoint let lockThreadRows give back the row locks of
	// a round that locked a row that is no longer the newest.
	savepoint, rollbackToSavepoint, releaseSavepoint string
	// newest returns the thread's newest id in a fresh snapshot (NULL when it is empty).
	newest string
	// renumber gives the thread's rows fresh, dense sequence numbers above the current maximum, and
	// fresh running totals (total_bytes). The head's number always changes, which is how a put that read
	// the old numbers (or totals) notices.
	renumber string

	getLatest, getByID   string
	list, listBefore     string
	deleteOne, deleteAll string
	threads              string
	// pruneRun deletes every row older than $3 of the threads from $1 to $2, newest rows included
	// (PruneOptions.IncludeNewest).
	pruneThreads, pruneRun string
	// pruneLock locks the newest row of each thread from $1 to $2 and returns (thread_id, checkpoint_id)
	// of each; pruneOlder ($1 a JSON array of [thread_id, locked id] pairs, $2 and $3 the batch's first
	// and last thread, $4 the cutoff) then deletes only rows older than a row the prune holds locked, so no delete that commits meanwhile can leave a
	// thread without its newest row (the linearizability checker found that when the bound was the newest
	// row of the delete's snapshot instead).
	pruneLock, pruneOlder string
	// now reads the server's clock: Prune's cutoff is the server's time, not the client's.
	now string
	// version is what DetectDialect asks (versionSQL), listed here so that it is pinned with the rest.
	version string

	// isolation reports the current transaction's isolation level (a caller's transaction is checked).
	isolation string
	// catalog reports what of the schema exists: schema, table, seq column, seq index, unnumbered index,
	// policy table, total_bytes column, the policy's max_bytes_per_thread column.
	catalog string
	// lockSchema serialises EnsureSchema runs for this table (dialects with advisory locks).
	lockSchema string

	// policyTable reports whether the policy table exists (tables of the TypeScript package and of
	// pgcheckpoint before v0.2 have none until EnsureSchema or migrate runs). It asks pg_tables, not
	// information_schema, which hides tables the role has no privilege on: a role that may not read the
	// policy must fail loudly (ErrPermission), not trim by no policy.
	policyTable string
	// readPolicy reads the recorded policy: no row when none is recorded.
	readPolicy string
	// recordPolicy records a policy where none is (EnsureSchema); setPolicy records it whatever was.
	recordPolicy, setPolicy string

	// threadsPrefix and pruneThreadsPrefix are threads and pruneThreads for the ids that start with a
	// prefix: $3 is the prefix, $4 the first string after every id that starts with it (prefixEnd), and
	// every comparison and the order are in byte order (dialectFacts.byteOrder), so the range holds
	// exactly the ids with the prefix whatever the column's collation, and is a range scan of the
	// primary key.
	threadsPrefix, pruneThreadsPrefix string
	// pruneLockPrefix, pruneOlderPrefix and pruneRunPrefix are pruneLock, pruneOlder and pruneRun for a
	// batch of pruneThreadsPrefix: the batch's range, from its first to its last id, is compared in byte
	// order too, so it holds only ids with the prefix (the ids between two that start with a prefix start
	// with it too).
	pruneLockPrefix, pruneOlderPrefix, pruneRunPrefix string

	// fork copies checkpoint $2 of thread $1, with up to $4 - 1 older ones when $4 > 1 (and, with a byte
	// budget $5, only the newest whose sizes sum to at most $5, $2 always), into thread $3,
	// if $2 exists and $3 has no row, in one statement: the snapshots never leave the server. The
	// copies keep their ids, created_at, version and size, and are numbered 1, 2, ... in id order, so
	// the new thread is a thread like any other (running totals included). It reports whether the source checkpoint exists,
	// whether the target thread has rows, and how many rows it copied. It runs in a transaction after
	// lockFirst on $3 (dialects with advisory locks) or at SERIALIZABLE, as a thread's first put does:
	// no first put into $3 interleaves with it.
	fork string

	// leaseTable, leaseAcquire, leaseCheck, leaseRenew and leaseRelease are single-writer leases on
	// threads (leaseStatements).
	leaseTable, leaseAcquire, leaseCheck, leaseRenew, leaseRelease string
}

// sqlFor replaces the placeholder {T} with the quoted table name. Statements stay readable as SQL.
func sqlFor(n names, s string) string { return strings.ReplaceAll(s, "{T}", n.table) }

// headCTE reads the thread's newest row in the statement's snapshot (head), then locks that row in its
// latest committed version (locked). The put inserts head.seq + 1 only when
//   - the locked row is still there with the number the snapshot gave it: nothing trimmed, deleted or
//     renumbered it since the snapshot, so the snapshot's numbering is the committed one and the trim
//     boundary looked up in it is the right row (another writer's renumbering changes the head's
//     number, so it cannot go unnoticed);
//   - no row of the thread lacks a number (written by the TypeScript package): those are renumbered
//     first, or the trim would not count them (with a byte budget, NOHEADTOTAL: neither may the head
//     lack a running total, written by an older version: the renumbering computes them);
//   - the new id sorts after the head, and the fence, when given, names the head.
//
// Holding the row lock until commit, no other put can append after the same head, and no renumbering
// can start, before this statement commits. The unique (thread_id, seq) index stops the rest: a writer
// whose snapshot is older than the last put fails on the number that put took. An empty thread inserts
// nothing here: its first row goes through first, under a lock of its own.
//
// The new row's total_bytes is the head's plus its own size (see bytesTrimCTE). Every statement that
// renumbers a thread also recomputes its totals, so the totals the snapshot shows are the committed
// ones whenever its numbers are.
//
// ON CONFLICT on the primary key, and mine in the report: this put's id is stored already. A put never
// sends one id in two statements that could both commit (sendOnce in put.go refuses database/sql's
// re-send; an unknown outcome is looked up, not run again), so this is a second line of defence: were
// the same id ever sent twice, the copy would insert nothing and report the first as the put's.
const headCTE = `WITH head AS (
    SELECT checkpoint_id, seq, total_bytes FROM {T}
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq, total_bytes FROM {T}
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR UPDATE
), unnumbered AS (
    SELECT EXISTS (SELECT 1 FROM {T} WHERE thread_id = $1 AND seq IS NULL)NOHEADTOTAL AS found
), ins AS (
    INSERT INTO {T} (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
    SELECT $1, $2, $3::text::jsonb, $4, $5, locked.seq + 1, locked.total_bytes + $5::INTEGER
    FROM locked, head, unnumbered
    WHERE locked.seq = head.seq
      AND NOT unnumbered.found
      AND locked.checkpoint_id < $2
      AND ($6::text IS NULL OR $6::text = locked.checkpoint_id)
    ON CONFLICT (thread_id, checkpoint_id) DO NOTHING
    RETURNING seq, total_bytes
)`

// noHeadTotal is headCTE's NOHEADTOTAL with a byte budget: a head without a running total (written
// by an older version, or before the table had the column) makes the put renumber the thread, which
// computes every row's total, before it inserts.
const noHeadTotal = ` OR EXISTS (SELECT 1 FROM head WHERE total_bytes IS NULL)`

// headCTEFor is headCTE with (bytes) or without the byte budget's check of the head's total.
func headCTEFor(bytes bool) string {
	if bytes {
		return strings.Replace(headCTE, "NOHEADTOTAL", noHeadTotal, 1)
	}
	return strings.Replace(headCTE, "NOHEADTOTAL", "", 1)
}

// Running totals: total_bytes is a row's running total, the sum of size_bytes of its thread's rows up to and
// including it in the thread's order, up to a constant the same for every row of the thread (a put adds
// its size to the head's total; trimming or pruning the oldest rows changes no other row's total; a
// renumbering starts again from 0). So the rows from r to the newest hold
// newest.total_bytes - (r.total_bytes - r.size_bytes) bytes, whichever rows were trimmed before r,
// and a put under a byte budget finds its trim boundary from the oldest row up, without summing
// anything: O(rows trimmed), never O(thread).
//
// bytesTrimCTE is trimCTE for a byte budget ($8), with or without a cap ($7, NULL: none): the put keeps
// the newest rows whose sizes, its own included, sum to at most the budget, and at most cap rows with
// its own; it always keeps its own row (which the statement's snapshot does not hold). keep is the
// oldest row to keep: the first row, in seq order from the thread's oldest, within both limits (a row
// is within the budget when the bytes from it to the new row, new.total - (total - size), are at most
// the budget, which holds for every newer row too), found by an index scan of (thread_id, seq) that
// stops there; no such row means every older row goes. low is the oldest live row, found as trimCTE's
// lower bound is and for the same reason: the scan that finds it steps over the index entries of rows
// earlier puts trimmed (marking them dead), and both keep's scan and the delete's range start from it
// instead of walking those entries again. (Until VACUUM removes them, or a scan can mark them dead, the
// scan for low steps over one index entry per row trimmed since, as trimCTE's lower bound does: the
// same cost as the cap's trim, not a scan of the thread.)
const bytesTrimCTE = `, low AS (
    SELECT seq FROM {T} WHERE thread_id = $1 AND seq IS NOT NULL ORDER BY seq LIMIT 1
), keep AS (
    SELECT COALESCE((
        SELECT seq FROM {T}
        WHERE thread_id = $1 AND seq IS NOT NULL
          AND seq >= (SELECT seq FROM low)
          AND seq > (SELECT seq FROM ins) - COALESCE($7::bigint, (SELECT seq FROM ins))
          AND total_bytes - size_bytes >= (SELECT total_bytes FROM ins) - $8::bigint
        ORDER BY seq
        LIMIT 1), (SELECT seq FROM ins)) AS seq
), del AS (
    DELETE FROM {T}
    WHERE thread_id = $1 AND seq IS NOT NULL
      AND seq >= (SELECT seq FROM low)
      AND seq < (SELECT seq FROM keep)
    RETURNING 1
)`

// bytesTrimSQL is statements.trimBytes: bytesTrimCTE as a statement of its own, after the insert in
// the same transaction (which it sees: the new row is the one numbered $2).
const bytesTrimSQL = `WITH low AS (
    SELECT seq FROM {T} WHERE thread_id = $1 AND seq IS NOT NULL ORDER BY seq LIMIT 1
)
DELETE FROM {T}
WHERE thread_id = $1 AND seq IS NOT NULL
  AND seq >= (SELECT seq FROM low)
  AND seq < COALESCE((
    SELECT seq FROM {T}
    WHERE thread_id = $1 AND seq IS NOT NULL
      AND seq >= (SELECT seq FROM low)
      AND seq > $2::bigint - COALESCE($3::bigint, $2::bigint)
      AND total_bytes - size_bytes >= (
        SELECT total_bytes FROM {T} WHERE thread_id = $1 AND seq = $2::bigint) - $4::bigint
    ORDER BY seq
    LIMIT 1), $2::bigint)`

// putReportSQL is the row every put attempt returns (see putReport in put.go): the new row's number (NULL:
// nothing inserted), the snapshot's head id and number, whether the head could be locked and its
// committed number, whether the thread has rows without a number, whether this put's id is stored
// already (an earlier attempt committed), and how many rows the trim deleted.
const putReportSQL = `
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq FROM head),
       EXISTS (SELECT 1 FROM locked), (SELECT seq FROM locked), (SELECT found FROM unnumbered),
       EXISTS (SELECT 1 FROM {T} WHERE thread_id = $1 AND checkpoint_id = $2), `

// trimCTE deletes the rows from the thread's oldest live row up to the row numbered new_seq - cap. The
// lower bound is found by a plain index scan with LIMIT 1, which marks the index entries of rows earlier
// puts deleted as dead on its way and stops at the first live row; without it, the range
// "checkpoint_id <= boundary" is read by a bitmap scan that visits the heap for every deleted row still
// in the index, so a hot thread's put grew slower with each put until the next VACUUM (see
// docs/benchmarks.md).
const trimCTE = `, del AS (
    DELETE FROM {T}
    WHERE thread_id = $1
      AND checkpoint_id >= (
        SELECT checkpoint_id FROM {T} WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
      AND checkpoint_id <= (
        SELECT checkpoint_id FROM {T}
        WHERE thread_id = $1 AND seq = (SELECT seq FROM ins) - $7::bigint)
    RETURNING 1
)`

// forkSQL is statements.fork.
const forkSQL = `WITH source AS (
    SELECT EXISTS (SELECT 1 FROM {T} WHERE thread_id = $1 AND checkpoint_id = $2) AS found
), target AS (
    SELECT EXISTS (SELECT 1 FROM {T} WHERE thread_id = $3) AS found
), ins AS (
    INSERT INTO {T} (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq, total_bytes)
    SELECT $3, r.checkpoint_id, r.snapshot, r.version, r.size_bytes, r.created_at,
           row_number() OVER (ORDER BY r.checkpoint_id),
           (sum(r.size_bytes) OVER (ORDER BY r.checkpoint_id))::BIGINT
    FROM (SELECT checkpoint_id, snapshot, version, size_bytes, created_at,
                 sum(size_bytes) OVER (ORDER BY checkpoint_id DESC) AS upto
          FROM {T}
          WHERE thread_id = $1 AND checkpoint_id <= $2
          ORDER BY checkpoint_id DESC
          LIMIT $4) AS r, source, target
    WHERE source.found AND NOT target.found
      AND ($5::bigint IS NULL OR r.upto <= $5::bigint OR r.checkpoint_id = $2)
    RETURNING 1
)
SELECT (SELECT found FROM source), (SELECT found FROM target), (SELECT count(*) FROM ins)`

// versionSQL asks the server what it is (DetectDialect, which runs before a dialect is chosen).
const versionSQL = `SELECT version()`

// newStatements writes out every statement for table n on an engine with facts f.
func newStatements(n names, f dialectFacts) statements {
	s := statements{
		insert:      sqlFor(n, headCTEFor(false)+putReportSQL+`0`),
		insertBytes: sqlFor(n, headCTEFor(true)+putReportSQL+`0`),
		trimBytes:   sqlFor(n, bytesTrimSQL),
		trim: sqlFor(n, `DELETE FROM {T}
WHERE thread_id = $1
  AND checkpoint_id >= (SELECT checkpoint_id FROM {T} WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
  AND checkpoint_id <= (
    SELECT checkpoint_id FROM {T} WHERE thread_id = $1 AND seq = $2)`),
		first: sqlFor(n, `INSERT INTO {T} (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
SELECT $1, $2, $3::text::jsonb, $4, $5, 1, $5::INTEGER
WHERE NOT EXISTS (SELECT 1 FROM {T} WHERE thread_id = $1)
RETURNING seq`),
		lockRows:   sqlFor(n, `SELECT checkpoint_id FROM {T} WHERE thread_id = $1 ORDER BY checkpoint_id DESC FOR UPDATE`),
		lockNewest: sqlFor(n, `SELECT checkpoint_id FROM {T} WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1 FOR UPDATE`),
		newest:     sqlFor(n, `SELECT max(checkpoint_id) FROM {T} WHERE thread_id = $1`),
		renumber: sqlFor(n, `UPDATE {T} AS t SET seq = r.base + r.n, total_bytes = r.total
FROM (SELECT checkpoint_id,
             row_number() OVER (ORDER BY checkpoint_id) AS n,
             COALESCE(max(seq) OVER (), 0) AS base,
             (sum(size_bytes) OVER (ORDER BY checkpoint_id))::BIGINT AS total
      FROM {T} WHERE thread_id = $1) AS r
WHERE t.thread_id = $1 AND t.checkpoint_id = r.checkpoint_id`),
		getLatest: sqlFor(n, `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM {T}
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`),
		getByID: sqlFor(n, `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM {T}
WHERE thread_id = $1 AND checkpoint_id = $2`),
		list: sqlFor(n, `SELECT checkpoint_id, created_at, version, size_bytes FROM {T}
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2`),
		listBefore: sqlFor(n, `SELECT checkpoint_id, created_at, version, size_bytes FROM {T}
WHERE thread_id = $1 AND checkpoint_id < $2 ORDER BY checkpoint_id DESC LIMIT $3`),
		deleteOne: sqlFor(n, `DELETE FROM {T} WHERE thread_id = $1 AND checkpoint_id = $2`),
		stored:    sqlFor(n, `SELECT 1 FROM {T} WHERE thread_id = $1 AND checkpoint_id = $2`),
		deleteAll: sqlFor(n, `DELETE FROM {T} WHERE thread_id = $1`),
		threads: sqlFor(n, `SELECT thread_id, count(*), max(checkpoint_id), max(created_at), sum(size_bytes) FROM {T}
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2`),
		pruneThreads: sqlFor(n, `SELECT thread_id FROM {T}
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2`),
		pruneLock: sqlFor(n, `SELECT t.thread_id, t.checkpoint_id FROM {T} AS t
WHERE t.thread_id >= $1 AND t.thread_id <= $2
  AND t.checkpoint_id = (SELECT max(checkpoint_id) FROM {T} WHERE thread_id = t.thread_id)
FOR UPDATE OF t`),
		pruneRun: sqlFor(n, `DELETE FROM {T} AS t
WHERE t.thread_id >= $1 AND t.thread_id <= $2 AND t.created_at < $3
RETURNING t.thread_id`),
		now:                 `SELECT now()`,
		version:             versionSQL,
		savepoint:           `SAVEPOINT pgcheckpoint_lock_rows`,
		rollbackToSavepoint: `ROLLBACK TO SAVEPOINT pgcheckpoint_lock_rows`,
		releaseSavepoint:    `RELEASE SAVEPOINT pgcheckpoint_lock_rows`,
		isolation:           `SHOW transaction_isolation`,
		catalog: `SELECT
    EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1),
    EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = 'seq'),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3),
    EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $4),
    EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $5),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = 'total_bytes'),
    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $5 AND column_name = 'max_bytes_per_thread')`,
		policyTable:  `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)`,
		readPolicy:   `SELECT max_checkpoints_per_thread, max_bytes_per_thread FROM ` + n.policy,
		recordPolicy: `INSERT INTO ` + n.policy + ` (max_checkpoints_per_thread, max_bytes_per_thread) VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING`,
		setPolicy: `INSERT INTO ` + n.policy + ` (max_checkpoints_per_thread, max_bytes_per_thread) VALUES ($1, $2)
ON CONFLICT (singleton) DO UPDATE SET max_checkpoints_per_thread = excluded.max_checkpoints_per_thread,
    max_bytes_per_thread = excluded.max_bytes_per_thread`,
	}
	s.pruneOlder = pruneOlderSQL(n, "t.thread_id")
	prefixStatements(&s, n, f)
	leaseStatements(&s, n, f)
	s.fork = sqlFor(n, forkSQL)
	if f.oneStatementPut {
		s.put = sqlFor(n, headCTEFor(false)+trimCTE+putReportSQL+`(SELECT count(*) FROM del)`)
		s.putBytes = sqlFor(n, headCTEFor(true)+bytesTrimCTE+putReportSQL+`(SELECT count(*) FROM del)`)
	}
	if f.advisoryLocks {
		// The two-key form: its key space is apart from the one-bigint form applications most often use,
		// and the first key scopes the lock to this table.
		s.lockFirst = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, hashtext($1))`, lockKey("thread", n))
		s.lockSchema = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, 0)`, lockKey("schema", n))
	}
	return s
}

// prefixStatements writes out the statements of a listing or prune scoped to a thread id prefix.
func prefixStatements(s *statements, n names, f dialectFacts) {
	id := func(col string) string { return col + f.byteOrder }
	s.threadsPrefix = sqlFor(n, `SELECT thread_id, count(*), max(checkpoint_id), max(created_at), sum(size_bytes) FROM {T}
WHERE `+id("thread_id")+` > $1 AND `+id("thread_id")+` >= $3 AND `+id("thread_id")+` < $4
GROUP BY thread_id ORDER BY `+id("thread_id")+` LIMIT $2`)
	s.pruneThreadsPrefix = sqlFor(n, `SELECT thread_id FROM {T}
WHERE `+id("thread_id")+` > $1 AND `+id("thread_id")+` >= $3 AND `+id("thread_id")+` < $4
GROUP BY thread_id ORDER BY `+id("thread_id")+` LIMIT $2`)
	s.pruneLockPrefix = sqlFor(n, `SELECT t.thread_id, t.checkpoint_id FROM {T} AS t
WHERE `+id("t.thread_id")+` >= $1 AND `+id("t.thread_id")+` <= $2
  AND t.checkpoint_id = (SELECT max(checkpoint_id) FROM {T} WHERE thread_id = t.thread_id)
FOR UPDATE OF t`)
	s.pruneOlderPrefix = pruneOlderSQL(n, id("t.thread_id"))
	s.pruneRunPrefix = sqlFor(n, `DELETE FROM {T} AS t
WHERE `+id("t.thread_id")+` >= $1 AND `+id("t.thread_id")+` <= $2 AND t.created_at < $3
RETURNING t.thread_id`)
}

// pruneOlderSQL is pruneOlder (or pruneOlderPrefix, whose range compares thread ids as the expression
// thread does): the batch's range, $2 to $3, says nothing the pairs do not, but gives the planner the
// estimate that makes it read the primary key rather than the table (it guesses 100 rows for a JSON
// function, however few pairs it holds).
func pruneOlderSQL(n names, thread string) string {
	return sqlFor(n, `DELETE FROM {T} AS t
USING (SELECT value->>0 AS thread_id, value->>1 AS locked FROM jsonb_array_elements($1::text::jsonb)) AS l
WHERE `+thread+` >= $2 AND `+thread+` <= $3 AND t.thread_id = l.thread_id AND t.checkpoint_id < l.locked
  AND t.created_at < $4
RETURNING t.thread_id`)
}

// ttlSQL is CockroachDB's row-level TTL for table n (TTLSQL): a checkpoint expires interval after its
// created_at, and the TTL job runs on schedule cron. The expression goes through TIMESTAMP in UTC because
// CockroachDB wants an immutable expression, and TIMESTAMPTZ + INTERVAL depends on the session's time zone
// for days and months. interval and cron are checked by TTLSQL (digits and words; cron holds no quote).
func ttlSQL(n names, interval, cron string) string {
	return sqlFor(n, `ALTER TABLE {T} SET (
    ttl_expiration_expression = '((created_at AT TIME ZONE ''UTC'') + INTERVAL ''`+interval+`'') AT TIME ZONE ''UTC''',
    ttl_job_cron = '`+cron+`'
)`)
}

// leaseStatements writes out the statements of single-writer leases (lease.go). The lease table is the
// checkpoint table's name + "_leases": one row per thread that was ever leased, never deleted, so its
// token only grows. Every decision about time is the server's: now() on the server, never the client's
// clock.
func leaseStatements(s *statements, n names, f dialectFacts) {
	t := sqlFor(n, "{T}")
	l := t[:len(t)-1] + `_leases"`
	lease := func(q string) string { return strings.ReplaceAll(q, "{L}", l) }
	s.leaseTable = lease(`CREATE TABLE IF NOT EXISTS {L} (
    thread_id  TEXT` + f.byteOrder + ` NOT NULL PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)`)
	// leaseAcquire grants thread $1 to owner $2 for $3 seconds when it is free (never leased, expired or
	// released), or already $2's: a new grant either way, with the next token. It returns the token and
	// the expiry, or no row when another owner holds an unexpired lease.
	s.leaseAcquire = lease(`INSERT INTO {L} AS l (thread_id, owner, token, expires_at)
VALUES ($1, $2, 1, now() + $3::FLOAT8 * INTERVAL '1 second')
ON CONFLICT (thread_id) DO UPDATE
SET owner = excluded.owner, token = l.token + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= now() OR l.owner = excluded.owner
RETURNING token, expires_at`)
	// leaseCheck locks lease ($1, $2, $3) and reports whether it is unexpired; no row: it was taken
	// over. A put through the lease runs it first in the put's transaction: holding the row lock until
	// commit, no new grant of the thread can commit before the put does.
	s.leaseCheck = lease(`SELECT expires_at > now() FROM {L} WHERE thread_id = $1 AND owner = $2 AND token = $3 FOR UPDATE`)
	// leaseRenew extends an unexpired lease to $4 seconds from now; no row: lost.
	s.leaseRenew = lease(`UPDATE {L} SET expires_at = now() + $4::FLOAT8 * INTERVAL '1 second'
WHERE thread_id = $1 AND owner = $2 AND token = $3 AND expires_at > now()
RETURNING expires_at`)
	// leaseRelease ends the lease now; the row stays, so that the next grant's token is higher.
	s.leaseRelease = lease(`UPDATE {L} SET expires_at = now()
WHERE thread_id = $1 AND owner = $2 AND token = $3 AND expires_at > now()`)
}

// lockKey derives the first advisory lock key of a purpose ("thread", "schema") from the table name, so
// locks of different tables and purposes do not wait for each other.
func lockKey(purpose string, n names) int32 {
	h := fnv.New32a()
	h.Write([]byte("pgcheckpoint:" + purpose + ":" + n.table))
	return int32(h.Sum32())
}
