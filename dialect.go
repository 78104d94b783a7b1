package pgcheckpoint

// Dialect is the SQL flavour of the server: PostgreSQL or CockroachDB. A dialect only produces SQL text
// and a few facts about the engine; the Checkpointer executes. The interface is sealed: use the values
// PostgreSQL and CockroachDB, or DetectDialect.
type Dialect interface {
	// Name is "postgres" or "cockroach".
	Name() string

	statements(n names) statements
	ddl(n names) []string
	// splitPut reports that the insert and its retention trim must be two statements in one transaction,
	// retried as a whole (CockroachDB: one statement may not modify a table twice).
	splitPut() bool
	defaultMaxSnapshotBytes() int
}

// statements is every SQL text a Checkpointer runs, with the table name already quoted in. Parameters:
// $1 is always the thread id.
type statements struct {
	// put inserts a checkpoint and trims the thread in one statement when the dialect allows it.
	// $2 id, $3 snapshot, $4 version, $5 size_bytes, $6 fence (NULL: none; '': thread must be empty;
	// else the head it must follow), $7 cap (NULL: no trim). Returns new_seq (NULL when nothing was
	// inserted), head_id (NULL: empty thread), head_seq_known (NULL: the head was trimmed meanwhile).
	put string
	// insert is put without the trim ($1..$6), for dialects that split them.
	insert string
	// first inserts the first row of an empty thread ($1..$5), numbered 1, if the thread is still empty.
	// It runs in a transaction after lockThread, or, where lockThread is empty, at SERIALIZABLE: either
	// way no concurrent first put can interleave with it.
	first string
	// lockThread takes a transaction-level lock on thread $1 (PostgreSQL: an advisory lock).
	lockThread string
	// trim deletes the thread's rows at or below the row numbered $2.
	trim string
	// exists reports whether checkpoint $2 of thread $1 is stored (resolving an ambiguous commit).
	exists string
	// renumber gives the thread's rows fresh, dense sequence numbers above the current maximum.
	renumber string

	getLatest, getByID     string
	list, listBefore       string
	deleteOne, deleteAll   string
	threads                string
	pruneThreads, pruneRun string
}
