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
	_, err := c.runTx(ctx, func(q DBTX) error {
		if _, err := q.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", c.lockKey())); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	return interpret("ensure schema", err)
}

// ensureEach runs the DDL statement by statement; concurrent IF NOT EXISTS DDL on CockroachDB may fail
// with 40001 (retry), 42P07 or 42710 (someone else created it: done).
func (c *Checkpointer) ensureEach(ctx context.Context, stmts []string) error {
	for _, s := range stmts {
		for attempt := 1; ; attempt++ {
			_, err := c.db.ExecContext(ctx, s)
			switch code := SQLState(err); {
			case err == nil, code == "42P07", code == "42710":
			case (Retryable(err) || code == stateUniqueViolation) && !c.inTx && attempt < c.attempts:
				if err := backoff(ctx, attempt+1); err != nil {
					return interpret("ensure schema", err)
				}
				continue
			default:
				return interpret("ensure schema", err)
			}
			break
		}
	}
	return nil
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
