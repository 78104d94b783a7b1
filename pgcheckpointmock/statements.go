package pgcheckpointmock

import (
	"strings"

	"github.com/ziroagent/pgcheckpoint"
)

// Statements is every SQL text a Checkpointer sends for its operations, for one dialect and table, as
// go-sqlmock's QueryMatcherEqual compares it (whitespace runs count as one space). $1 is always the
// thread id.
type Statements struct {
	// Put inserts a checkpoint and trims the thread in one statement (PostgreSQL; empty for CockroachDB).
	// Args: thread, id, snapshot, version, size_bytes, fence (nil: none), cap (nil: no retention).
	// Returns one row: new seq (NULL when nothing was inserted), head id, head has a seq, rows trimmed.
	Put string
	// Insert is the first statement of a put on CockroachDB, inside a transaction when retention is on.
	// Args: thread, id, snapshot, version, size_bytes, fence. Returns: new seq, head id, head has a seq.
	Insert string
	// Trim follows Insert on CockroachDB when the new seq is above the cap. Args: thread, new seq - cap.
	Trim string
	// LockThread and First store the first checkpoint of a thread that Put (or Insert) found empty, in a
	// transaction: LockThread (PostgreSQL; empty for CockroachDB, which runs that transaction at
	// SERIALIZABLE instead) args: thread; First args: thread, id, snapshot, version, size_bytes, returns
	// the new seq (1), or no row when the thread is no longer empty.
	LockThread, First string
	// Renumber numbers a thread's rows again: after a delete of one checkpoint, and before a put on a
	// thread whose newest row was written by the TypeScript package. Args: thread.
	Renumber string
	// GetLatest and GetByID return checkpoint_id, created_at, version, size_bytes, snapshot.
	// Args: thread (and id).
	GetLatest, GetByID string
	// List and ListBefore return checkpoint_id, created_at, version, size_bytes, newest first.
	// Args: thread, limit / thread, cursor id, limit.
	List, ListBefore string
	// DeleteOne (args: thread, id) and DeleteAll (args: thread) delete checkpoints.
	DeleteOne, DeleteAll string
	// Threads returns thread_id, count, newest id, newest created_at, total size_bytes.
	// Args: after, limit.
	Threads string
}

// defaultTable is the quoted name of the default table, as the statements below spell it.
const defaultTable = `"public"."ziro_checkpoints"`

// headCTE is the beginning of the PostgreSQL put and of the CockroachDB insert.
const headCTE = `WITH head AS (
    SELECT checkpoint_id FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR SHARE
), ins AS (
    INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
    SELECT $1, $2, $3::text::jsonb, $4, $5, seq + 1 FROM locked
    WHERE checkpoint_id < $2 AND seq IS NOT NULL
      AND ($6::text IS NULL OR $6::text = checkpoint_id)
    RETURNING seq
)`

// PostgreSQL holds the statements of the PostgreSQL dialect for the default table
// public.ziro_checkpoints.
var PostgreSQL = Statements{
	Put: headCTE + `, del AS (
    DELETE FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1
      AND checkpoint_id >= (
        SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
      AND checkpoint_id <= (
        SELECT checkpoint_id FROM "public"."ziro_checkpoints"
        WHERE thread_id = $1 AND seq = (SELECT seq FROM ins) - $7::bigint)
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq IS NOT NULL FROM locked), (SELECT count(*) FROM del)`,
	LockThread: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
	First: `INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
SELECT $1, $2, $3::text::jsonb, $4, $5, 1
WHERE NOT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1)
RETURNING seq`,
	Renumber: `UPDATE "public"."ziro_checkpoints" AS t SET seq = r.base + r.n
FROM (SELECT checkpoint_id,
             row_number() OVER (ORDER BY checkpoint_id) AS n,
             COALESCE(max(seq) OVER (), 0) AS base
      FROM "public"."ziro_checkpoints" WHERE thread_id = $1) AS r
WHERE t.thread_id = $1 AND t.checkpoint_id = r.checkpoint_id`,
	GetLatest: `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`,
	GetByID: `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND checkpoint_id = $2`,
	List: `SELECT checkpoint_id, created_at, version, size_bytes FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2`,
	ListBefore: `SELECT checkpoint_id, created_at, version, size_bytes FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND checkpoint_id < $2 ORDER BY checkpoint_id DESC LIMIT $3`,
	DeleteOne: `DELETE FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2`,
	DeleteAll: `DELETE FROM "public"."ziro_checkpoints" WHERE thread_id = $1`,
	Threads: `SELECT thread_id, count(*), max(checkpoint_id), max(created_at), sum(size_bytes) FROM "public"."ziro_checkpoints"
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2`,
}

// CockroachDB holds the statements of the CockroachDB dialect for the default table: the PostgreSQL ones,
// except that a put is an Insert and, when the thread is over its cap, a Trim in one transaction.
var CockroachDB = func() Statements {
	s := PostgreSQL
	s.Put = ""
	s.LockThread = ""
	s.Insert = headCTE + `
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq IS NOT NULL FROM locked)`
	s.Trim = `DELETE FROM "public"."ziro_checkpoints"
WHERE thread_id = $1
  AND checkpoint_id >= (SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
  AND checkpoint_id <= (
    SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND seq = $2)`
	return s
}()

// StatementsFor returns the statements of dialect d (nil means PostgreSQL) for a table; empty schema or
// table mean the defaults. Names are checked as pgcheckpoint.New checks them (ErrInvalidIdentifier).
func StatementsFor(d pgcheckpoint.Dialect, schema, table string) (Statements, error) {
	if _, err := pgcheckpoint.SchemaSQL(d, schema, table); err != nil {
		return Statements{}, err
	}
	s := PostgreSQL
	if d != nil && d.Name() == pgcheckpoint.CockroachDB.Name() {
		s = CockroachDB
	}
	if schema == "" {
		schema = pgcheckpoint.DefaultSchema
	}
	if table == "" {
		table = pgcheckpoint.DefaultTable
	}
	r := strings.NewReplacer(defaultTable, `"`+schema+`"."`+table+`"`)
	for _, p := range []*string{&s.Put, &s.Insert, &s.Trim, &s.First, &s.Renumber, &s.GetLatest, &s.GetByID, &s.List,
		&s.ListBefore, &s.DeleteOne, &s.DeleteAll, &s.Threads} {
		*p = r.Replace(*p)
	}
	return s, nil
}
