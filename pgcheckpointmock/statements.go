package pgcheckpointmock

import (
	"fmt"

	"github.com/ziroagent/pgcheckpoint"
)

// Statements is every SQL text a Checkpointer sends, for one dialect and table, taken from
// pgcheckpoint.Statements: the texts are the ones the Checkpointer itself uses, not copies. go-sqlmock's
// QueryMatcherEqual compares them after collapsing whitespace runs. $1 is always the thread id where
// there is one. A statement the dialect never sends is empty.
type Statements struct {
	// Put inserts a checkpoint and trims the thread in one statement (PostgreSQL; empty for CockroachDB).
	// Args: thread, id, snapshot, version, size_bytes, fence (nil: none), cap (nil: no retention).
	// It returns one report row of 8 columns: new seq (NULL when nothing was inserted), head id and head
	// seq in the statement's snapshot (NULL for an empty thread), whether the head could be locked, its
	// locked seq, whether the thread has rows without a seq, whether this put's id is stored already,
	// and the rows trimmed.
	Put string
	// Insert is Put without the trim (CockroachDB), inside a transaction when retention is on. Args:
	// thread, id, snapshot, version, size_bytes, fence. It returns the same 8 columns (trimmed is 0).
	Insert string
	// Trim follows Insert on CockroachDB when the new seq is above the cap. Args: thread, new seq - cap.
	Trim string
	// PutBytes, InsertBytes and TrimBytes replace Put, Insert and Trim when the table's policy has a byte
	// budget (Retention.MaxBytesPerThread). PutBytes args: Put's, then the budget (cap nil when there is
	// none); InsertBytes args: Insert's; TrimBytes (CockroachDB, after InsertBytes whenever it stored the
	// row) args: thread, new seq, cap (nil: none), budget. They return what Put, Insert and Trim return.
	PutBytes, InsertBytes, TrimBytes string
	// LockFirst and First store the first checkpoint of a thread that Put (or Insert) found empty, in a
	// transaction of their own. LockFirst takes the thread's advisory lock (PostgreSQL; empty for
	// CockroachDB, which runs that transaction at SERIALIZABLE instead), args: thread. First args:
	// thread, id, snapshot, version, size_bytes; it returns the new seq (1), or no row when the thread
	// is no longer empty.
	LockFirst, First string
	// Stored (args: thread, id) returns a row (one column, 1) when the checkpoint is stored, none
	// otherwise. A put whose attempt ended with an unknown outcome (a broken connection after the
	// statement was sent, SQLSTATE 40003) looks its id up with it instead of running the insert again:
	// found, the put returns the id; not found, ErrOutcomeUnknown.
	Stored string
	// LockRows, Newest and Renumber renumber a thread, in one transaction: after a delete of one
	// checkpoint, and when a put reports rows without a seq (written by the TypeScript package).
	// LockRows locks every row of the thread and returns their checkpoint_id, newest first; Newest
	// returns max(checkpoint_id) (LockRows runs again while it is above what LockRows returned);
	// Renumber gives the rows fresh numbers. Args: thread.
	LockRows, Newest, Renumber string
	// LockNewest locks the thread's newest row first (args: thread; returns its checkpoint_id, no row
	// for an empty thread), inside Savepoint, which RollbackToSavepoint undoes when a newer row appeared
	// meanwhile and ReleaseSavepoint ends once every row is held (no args).
	LockNewest, Savepoint, RollbackToSavepoint, ReleaseSavepoint string
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
	// Now (no args) reads the server's clock, then PruneThreads (args: after, batch) lists a batch of
	// threads, and each batch is a transaction: PruneLock (args: first thread, last thread; locks and
	// returns each thread's newest thread_id, checkpoint_id; run again, up to three times, while a
	// thread of the batch has none) and PruneOlder (args: a JSON array of [thread_id, locked id] pairs,
	// first thread, last thread, cutoff; returns a thread_id per deleted row), or, when the newest go
	// too, PruneRun alone (args: first thread, last thread, cutoff).
	Now, PruneThreads, PruneRun, PruneLock, PruneOlder string
	// Version (no args) is what DetectDialect asks.
	Version string
	// Isolation (no args) returns the caller's transaction isolation level, which a Checkpointer over a
	// *sql.Tx (or WithTx) checks once before its first put.
	Isolation string
	// Catalog (args: schema, table, seq index name, unnumbered index name, policy table name,
	// unquoted) returns eight booleans: what of the schema exists (the last two: the total_bytes column
	// and the policy's max_bytes_per_thread column). EnsureSchema reads it first and does nothing when all are
	// true. LockSchema (PostgreSQL; no args) serialises EnsureSchema's DDL; the DDL itself is
	// pgcheckpoint.SchemaSQL.
	Catalog, LockSchema string
	// ThreadsPrefix is Threads for ThreadsOptions.Prefix. Args: after, limit, prefix, end of the prefix's
	// range (the first string after every id that starts with the prefix).
	ThreadsPrefix string
	// PruneThreadsPrefix (args: after, batch, prefix, end of its range), PruneLockPrefix,
	// PruneOlderPrefix and PruneRunPrefix (args as PruneLock, PruneOlder and PruneRun) are the prune's
	// statements for PruneOptions.Prefix.
	PruneThreadsPrefix, PruneLockPrefix, PruneOlderPrefix, PruneRunPrefix string
	// Fork copies a checkpoint (and up to limit - 1 older ones) into an empty thread, in a transaction
	// after LockFirst on the target (PostgreSQL) or at SERIALIZABLE (CockroachDB). Args: source thread,
	// checkpoint id, target thread, limit, byte budget (nil: none; History only). It returns source found, target has rows, rows copied.
	Fork string
	// LeaseTable creates the lease table (EnsureLeaseSchema). LeaseAcquire (args: thread, owner, ttl
	// seconds; returns token, expires_at or no row), LeaseCheck (args: thread, owner, token; returns
	// whether the lease is unexpired, or no row, inside a lease put's transaction before the put),
	// LeaseRenew (args: thread, owner, token, ttl seconds; returns expires_at) and LeaseRelease (args:
	// thread, owner, token) are the leases' statements.
	LeaseTable, LeaseAcquire, LeaseCheck, LeaseRenew, LeaseRelease string
	// PolicyTable (args: schema, policy table name, unquoted) returns whether the table of the retention
	// policy exists; ReadPolicy (no args) returns the recorded max_checkpoints_per_thread (0: keep all)
	// and max_bytes_per_thread (0: no byte budget), no row when none is recorded. A Checkpointer sends
	// both before its first put, and again a minute later (ExpectRetention). RecordPolicy (EnsureSchema,
	// where none is recorded) and SetPolicy (SetRetention) take the cap and the byte budget.
	PolicyTable, ReadPolicy, RecordPolicy, SetPolicy string
}

// fields maps the names of pgcheckpoint.Statements to the fields of s.
func (s *Statements) fields() map[string]*string {
	return map[string]*string{
		"put": &s.Put, "insert": &s.Insert, "trim": &s.Trim,
		"putBytes": &s.PutBytes, "insertBytes": &s.InsertBytes, "trimBytes": &s.TrimBytes, "first": &s.First, "lockFirst": &s.LockFirst, "stored": &s.Stored,
		"lockRows": &s.LockRows, "newest": &s.Newest, "renumber": &s.Renumber,
		"lockNewest": &s.LockNewest, "savepoint": &s.Savepoint, "rollbackToSavepoint": &s.RollbackToSavepoint,
		"releaseSavepoint": &s.ReleaseSavepoint,
		"getLatest":        &s.GetLatest, "getByID": &s.GetByID, "list": &s.List, "listBefore": &s.ListBefore,
		"deleteOne": &s.DeleteOne, "deleteAll": &s.DeleteAll, "threads": &s.Threads,
		"now": &s.Now, "pruneThreads": &s.PruneThreads, "pruneRun": &s.PruneRun, "pruneLock": &s.PruneLock, "pruneOlder": &s.PruneOlder, "version": &s.Version,
		"isolation": &s.Isolation, "catalog": &s.Catalog, "lockSchema": &s.LockSchema,
		"threadsPrefix": &s.ThreadsPrefix, "pruneThreadsPrefix": &s.PruneThreadsPrefix,
		"pruneLockPrefix": &s.PruneLockPrefix, "pruneOlderPrefix": &s.PruneOlderPrefix, "pruneRunPrefix": &s.PruneRunPrefix,
		"fork": &s.Fork, "leaseTable": &s.LeaseTable, "leaseAcquire": &s.LeaseAcquire, "leaseCheck": &s.LeaseCheck,
		"leaseRenew": &s.LeaseRenew, "leaseRelease": &s.LeaseRelease,
		"policyTable": &s.PolicyTable, "readPolicy": &s.ReadPolicy, "recordPolicy": &s.RecordPolicy, "setPolicy": &s.SetPolicy,
	}
}

// PostgreSQL holds the statements of the PostgreSQL dialect for the default table
// public.ziro_checkpoints.
var PostgreSQL = mustStatements(pgcheckpoint.PostgreSQL)

// CockroachDB holds the statements of the CockroachDB dialect for the default table: the PostgreSQL ones,
// except that a put is an Insert and, when the thread is over its cap, a Trim in one transaction, and
// that there are no advisory locks (LockFirst, LockSchema).
var CockroachDB = mustStatements(pgcheckpoint.CockroachDB)

func mustStatements(d pgcheckpoint.Dialect) Statements {
	s, err := StatementsFor(d, "", "")
	if err != nil {
		panic(fmt.Sprintf("pgcheckpointmock: %v", err))
	}
	return s
}

// StatementsFor returns the statements of dialect d (nil means PostgreSQL) for a table; empty schema or
// table mean the defaults. Names are checked as pgcheckpoint.New checks them (ErrInvalidIdentifier).
func StatementsFor(d pgcheckpoint.Dialect, schema, table string) (Statements, error) {
	texts, err := pgcheckpoint.Statements(d, schema, table)
	if err != nil {
		return Statements{}, err
	}
	var s Statements
	fields := s.fields()
	for name, text := range texts {
		f, ok := fields[name]
		if !ok {
			// A statement the core sends that this package cannot name: its tests fail on it.
			return Statements{}, fmt.Errorf("pgcheckpointmock: pgcheckpoint sends a statement %q that Statements has no field for", name)
		}
		*f = text
	}
	return s, nil
}
