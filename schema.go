package pgcheckpoint

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// EnsureSchema creates the schema, table and indexes if they are missing (with Options.Keys, a table
// that holds no checkpoint is made one that requires encryption: see Encryption), and upgrades a table created by
// the TypeScript package (adds the seq and total_bytes columns and the indexes) or an older version. It is idempotent and cheap when nothing
// is missing: it reads the catalog first and then runs no DDL and takes no lock, so it can run at every
// start. It is safe when several processes run it at once: on PostgreSQL the DDL runs in one transaction
// behind a transaction-level advisory lock; on CockroachDB, which has no advisory locks, each statement
// is retried when a concurrent run conflicts with it. Creating needs the CREATE privilege on the
// database (for a missing schema) or the schema (ErrPermission names what is missing); a schema that
// exists is never created again, so its owner needs no privilege on the database. The runtime
// operations need only SELECT, INSERT, UPDATE and DELETE on the table.
func (c *Checkpointer) EnsureSchema(ctx context.Context) error {
	defer c.hold()()
	return fail(OpEnsureSchema, "", "", c.ensureSchema(ctx))
}

func (c *Checkpointer) ensureSchema(ctx context.Context) error {
	if err := c.ensureTables(ctx); err != nil {
		return err
	}
	if err := c.recordRetention(ctx); err != nil {
		return err
	}
	return c.markEncryptedIfEmpty(ctx)
}

// ensureTables creates or upgrades what the catalog lacks.
func (c *Checkpointer) ensureTables(ctx context.Context) error {
	if c.delta != nil {
		return c.ensureDeltaSchema(ctx)
	}
	have, err := c.readCatalog(ctx)
	if err != nil {
		return err
	}
	if !have.complete() {
		if err := c.createMissing(ctx, have); err != nil {
			return c.fullMismatch(ctx, "ensure schema", err)
		}
	}
	return nil
}

// createMissing runs the DDL of what the catalog lacks.
func (c *Checkpointer) createMissing(ctx context.Context, have catalog) error {
	ddl := c.dialect.ddl(c.names)
	stmts := ddl.all()
	if have.schema {
		// CREATE SCHEMA IF NOT EXISTS demands CREATE on the database even when the schema exists.
		stmts = ddl.table
	}
	return c.runDDL(ctx, stmts)
}

// runDDL runs EnsureSchema's statements: in one transaction behind the schema lock where there are
// advisory locks, else one by one (ensureEach).
func (c *Checkpointer) runDDL(ctx context.Context, stmts []string) error {
	if !c.facts.advisoryLocks {
		return c.ensureEach(ctx, stmts)
	}
	return c.runTx(ctx, func(q DBTX) error {
		if _, err := q.ExecContext(ctx, c.q.lockSchema); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return privilegeError(c.names, s, err)
			}
		}
		return nil
	})
}

// catalog is what of the table's schema exists.
type catalog struct {
	schema, table, seqColumn, seqIndex, unnumberedIndex, policyTable bool
	totalColumn, policyBytes                                         bool
}

// complete reports that nothing is missing.
func (k catalog) complete() bool {
	return k.schema && k.table && k.seqColumn && k.seqIndex && k.unnumberedIndex && k.policyTable && k.totalColumn && k.policyBytes
}

// readCatalog reads what exists, in one query.
func (c *Checkpointer) readCatalog(ctx context.Context) (catalog, error) {
	var k catalog
	seqIdx := strings.Trim(c.names.seqIdx, `"`)
	unnumbered := strings.Trim(c.names.unnumberedIdx, `"`)
	err := c.db.QueryRowContext(ctx, c.q.catalog, c.names.rawSchema, c.names.rawTable, seqIdx, unnumbered, c.names.rawPolicy).
		Scan(&k.schema, &k.table, &k.seqColumn, &k.seqIndex, &k.unnumberedIndex, &k.policyTable, &k.totalColumn, &k.policyBytes)
	return k, err
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
					return interpret(err)
				}
			}
			_, err := c.db.ExecContext(ctx, s)
			if err == nil {
				break
			}
			if c.inTx || !concurrentDDL(err) {
				return interpret(privilegeError(c.names, s, err))
			}
			if attempt >= c.attempts {
				return fmt.Errorf("%d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
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

// SchemaSQL returns the DDL that EnsureSchema runs for a dialect (nil means PostgreSQL) and table, as
// plain SQL statements separated by semicolons, for migration tools (golang-migrate, goose, Atlas,
// Flyway), ending with the statement that records the default retention policy (100 checkpoints per
// thread) where the table records none. Empty schema or table mean the defaults.
func SchemaSQL(d Dialect, schema, table string) (string, error) {
	if d == nil {
		d = PostgreSQL
	}
	n, err := newNames(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable))
	if err != nil {
		return "", err
	}
	record := strings.Replace(newStatements(n, d.facts()).recordPolicy, "$1", strconv.Itoa(DefaultMaxCheckpointsPerThread), 1)
	record = strings.Replace(record, "$2", "0", 1)
	return strings.Join(append(d.ddl(n).all(), record), ";\n\n") + ";\n", nil
}
