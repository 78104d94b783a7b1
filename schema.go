package pgcheckpoint

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
)

// EnsureSchema creates the schema, table and index if they are missing, and upgrades a table created by
// the TypeScript package (adds the seq column and its index). It is idempotent and safe when several
// processes run it at once: on PostgreSQL the DDL runs in one transaction behind a transaction-level
// advisory lock; on CockroachDB, which has no advisory locks, each statement is retried when a concurrent
// run conflicts with it. It needs the CREATE privilege on the database or schema (ErrPermission names
// what is missing); the runtime operations need only SELECT, INSERT, UPDATE and DELETE on the table.
func (c *Checkpointer) EnsureSchema(ctx context.Context) error {
	stmts := c.dialect.ddl(c.names)
	if c.dialect.splitPut() {
		return c.ensureEach(ctx, stmts)
	}
	err := c.runTx(ctx, "ensure schema", func(q DBTX) error {
		if _, err := q.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", c.lockKey())); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return privilegeError(c.names, s, err)
			}
		}
		return nil
	})
	return interpret("ensure schema", err)
}

// ensureEach runs the DDL statement by statement (CockroachDB: no advisory locks, and DDL inside an
// explicit transaction is not atomic there anyway). Every statement is IF NOT EXISTS, so running one
// again is harmless; a concurrent run of the same DDL may make it fail with 40001 (transaction
// conflict), 42P07 or 42710 (a concurrent creation won: the name exists now, or is about to), 23505 (the
// same, caught by a catalog index) or 40003 (commit outcome unknown). Each of those runs the statement
// again, with backoff, up to Options.MaxAttempts times: the next run either finds the object and does
// nothing, or reports a real clash (a different object of that name) that no retry cures. Inside the
// caller's transaction nothing is retried.
func (c *Checkpointer) ensureEach(ctx context.Context, stmts []string) error {
	for _, s := range stmts {
		for attempt := 1; ; attempt++ {
			if attempt > 1 {
				if err := backoff(ctx, attempt); err != nil {
					return interpret("ensure schema", err)
				}
			}
			_, err := c.db.ExecContext(ctx, s)
			if err == nil {
				break
			}
			if c.inTx || !concurrentDDL(err) {
				return interpret("ensure schema", privilegeError(c.names, s, err))
			}
			if attempt >= c.attempts {
				return fmt.Errorf("pgcheckpoint: ensure schema: %d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
			}
		}
	}
	return nil
}

// concurrentDDL reports an error that a concurrent run of the same IF NOT EXISTS DDL can cause.
func concurrentDDL(err error) bool {
	switch SQLState(err) {
	case stateDuplicateTable, stateDuplicateObject, stateUniqueViolation, stateAmbiguousCommit:
		return true
	}
	return Retryable(err)
}

// lockKey derives the advisory lock key from the table name, so runs for different tables do not wait
// for each other.
func (c *Checkpointer) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("pgcheckpoint:" + c.names.table))
	return int64(h.Sum64())
}

// SchemaSQL returns the DDL that EnsureSchema runs for a dialect (nil means PostgreSQL) and table, as
// plain SQL statements separated by semicolons, for migration tools (golang-migrate, goose, Atlas,
// Flyway). Empty schema or table mean the defaults.
func SchemaSQL(d Dialect, schema, table string) (string, error) {
	if d == nil {
		d = PostgreSQL
	}
	n, err := newNames(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable))
	if err != nil {
		return "", err
	}
	return strings.Join(d.ddl(n), ";\n\n") + ";\n", nil
}
