package pgcheckpoint

import (
	"database/sql"
	"fmt"
	"strings"
)

// Dialect is the SQL flavour of the server: PostgreSQL or CockroachDB. A dialect produces SQL text and
// states a few named facts about the engine; the Checkpointer executes. The interface is sealed: use the
// values PostgreSQL and CockroachDB, ParseDialect, or DetectDialect.
type Dialect interface {
	// Name is "postgres" or "cockroach".
	Name() string

	facts() dialectFacts
	ddl(n names) schemaDDL
	// deltaDDL is the DDL of a delta table (dialect_*_delta.go).
	deltaDDL(heads names, items, view string) schemaDDL
}

// schemaDDL is what creates a table's schema, written out for each dialect: createSchema (empty when the
// dialect never creates it) and then the table, its columns and indexes. Every statement is IF NOT EXISTS.
type schemaDDL struct {
	createSchema string
	table        []string
}

// all is every statement in order.
func (d schemaDDL) all() []string {
	if d.createSchema == "" {
		return d.table
	}
	return append([]string{d.createSchema}, d.table...)
}

// policyDDL creates the table that records the checkpoint table's retention policy, the same on every
// dialect: at most one row (singleton is its key and can only be true); max_checkpoints_per_thread 0
// means every checkpoint is kept. EnsureSchema fills the row in; Checkpointer.SetRetention changes it.
func policyDDL(n names) string {
	return `CREATE TABLE IF NOT EXISTS ` + n.policy + ` (
    singleton                  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    max_checkpoints_per_thread INTEGER NOT NULL CHECK (max_checkpoints_per_thread >= 0)
)`
}

// policyBytesDDL adds the byte budget to the policy table (tables of older versions have only the count
// cap): max_bytes_per_thread 0 means no byte budget, so an existing policy keeps its meaning.
func policyBytesDDL(n names) string {
	return `ALTER TABLE ` + n.policy + ` ADD COLUMN IF NOT EXISTS max_bytes_per_thread BIGINT NOT NULL DEFAULT 0 CHECK (max_bytes_per_thread >= 0)`
}

// dialectFacts are the differences between the engines that change what the Checkpointer does. Each is
// one fact about the engine, named for what it is; the code that depends on it says so by name.
type dialectFacts struct {
	// oneStatementPut: one statement may insert into and delete from the same table. PostgreSQL: yes,
	// so a put with retention is one statement. CockroachDB: no (SQLSTATE 0A000), so the insert and the
	// trim are two statements in one transaction.
	oneStatementPut bool
	// advisoryLocks: pg_advisory_xact_lock works. PostgreSQL: yes; it serialises a thread's first put
	// and concurrent EnsureSchema runs. CockroachDB: the functions exist but lock nothing, so a first
	// put runs at SERIALIZABLE and EnsureSchema runs statement by statement, retrying conflicts.
	advisoryLocks bool
	// callerIsolation is the only isolation level a caller's transaction (WithTx) may have; the put's
	// reasoning depends on it. PostgreSQL: READ COMMITTED (each statement sees what committed before it
	// began). CockroachDB: SERIALIZABLE, its default.
	callerIsolation string
	// ownIsolation is the level of the Checkpointer's own transactions. PostgreSQL: READ COMMITTED,
	// set explicitly, whatever the database's default (the locking reasoning needs each statement to
	// see what committed before it). CockroachDB: the server's default (SERIALIZABLE).
	ownIsolation sql.IsolationLevel
	// firstRowIsolation is the level of a thread's first put: where there are no advisory locks,
	// SERIALIZABLE makes the emptiness check and the insert one atomic step.
	firstRowIsolation sql.IsolationLevel
	// defaultMaxSnapshotBytes is the snapshot size limit when Options.MaxSnapshotBytes is 0.
	defaultMaxSnapshotBytes int
	// byteOrder is what follows a text column in a comparison that must be in byte order whatever the
	// column's collation (a table the TypeScript package created has the database's default collation).
	// PostgreSQL: ` COLLATE "C"`, which on pgcheckpoint's own COLLATE "C" columns still uses the primary
	// key. CockroachDB: nothing: uncollated strings compare bytewise, and old versions reject COLLATE "C".
	byteOrder string
}

// Dialect names for ParseDialect, as Dialect.Name returns them.
const (
	DialectPostgres  = "postgres"
	DialectCockroach = "cockroach"
)

// ParseDialect returns the dialect a name stands for: "postgres" (or "postgresql") and "cockroach" (or
// "cockroachdb"), in any case. An empty name means PostgreSQL. Anything else is ErrInvalidOptions.
func ParseDialect(name string) (Dialect, error) {
	switch strings.ToLower(name) {
	case "", DialectPostgres, "postgresql":
		return PostgreSQL, nil
	case DialectCockroach, "cockroachdb":
		return CockroachDB, nil
	}
	return nil, fail(OpNew, "", "", fmt.Errorf("unknown dialect %q (want %q or %q): %w", name, DialectPostgres, DialectCockroach, ErrInvalidOptions))
}
