package pgcheckpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// deltaCatalog is what of a delta table exists.
type deltaCatalog struct {
	schema              bool
	tableType           sql.NullString // of <table>: "VIEW" for a delta table
	heads, items, index bool
	total, policyBytes  bool
}

func (k deltaCatalog) complete() bool {
	return k.schema && k.tableType.String == "VIEW" && k.heads && k.items && k.index && k.total
}

// upToDate is complete with the policy table's byte budget column too: EnsureSchema runs no DDL only
// then. (The storage check asks for complete alone: a delta table whose policy table is missing is
// trimmed as a full one is then, by the clients that name a policy.)
func (k deltaCatalog) upToDate() bool { return k.complete() && k.policyBytes }

func (c *Checkpointer) readDeltaCatalog(ctx context.Context) (deltaCatalog, error) {
	var k deltaCatalog
	d := c.delta
	err := c.db.QueryRowContext(ctx, d.q.catalog, d.view.rawSchema, d.view.rawTable, c.names.rawTable,
		d.itemsRaw(), strings.Trim(c.names.seqIdx, `"`), c.names.rawPolicy).Scan(&k.schema, &k.tableType, &k.heads, &k.items, &k.index, &k.total, &k.policyBytes)
	return k, err
}

// itemsRaw is the items table's unquoted name.
func (d *delta) itemsRaw() string { return d.view.rawTable + itemsSuffix }

// errMismatch says what the table is and what the Checkpointer wanted.
func (c *Checkpointer) errMismatch(op, found string) error {
	want := StorageFull
	if c.delta != nil {
		want = StorageDelta
	}
	return fmt.Errorf("%s.%s is a %s, not a %s table: %w",
		c.viewNames().rawSchema, c.viewNames().rawTable, strings.ToLower(found), want, ErrStorageMismatch)
}

// viewNames names the table as the user did (the view of a delta table).
func (c *Checkpointer) viewNames() names {
	if c.delta != nil {
		return c.delta.view
	}
	return c.names
}

// checkStorage makes sure, once per Checkpointer, that a delta Checkpointer's table is a delta table:
// a full table of that name is ErrStorageMismatch, a missing one ErrSchemaMissing (checked again next
// time). A full Checkpointer checks nothing here (see fullMismatch).
func (c *Checkpointer) checkStorage(ctx context.Context, op string) error {
	if c.delta == nil || c.delta.modeOK.Load() {
		return nil
	}
	k, err := c.readDeltaCatalog(ctx)
	if err != nil {
		return err
	}
	switch {
	case k.tableType.String == "BASE TABLE":
		return c.errMismatch(op, "table")
	case !k.complete():
		return fmt.Errorf("the delta table %s.%s is incomplete or missing: %w",
			c.delta.view.rawSchema, c.delta.view.rawTable, ErrSchemaMissing)
	}
	c.delta.modeOK.Store(true)
	return nil
}

// fullMismatch turns the error of a full Checkpointer's write on a delta table's view (PostgreSQL
// refuses to write through it: 55000, 42809; CockroachDB: 0A000, 42809; a view made before total_bytes
// lacks that column: 42703) into ErrStorageMismatch, after
// asking the catalog. Reads through the view work and are not refused.
func (c *Checkpointer) fullMismatch(ctx context.Context, op string, err error) error {
	if err == nil || c.delta != nil || errors.Is(err, ErrStorageMismatch) {
		return err
	}
	switch SQLState(err) {
	case "55000", "42809", "0A000", stateUndefinedColumn: // 42703: a view of an older version, without total_bytes
	default:
		return err
	}
	var tt sql.NullString
	if qerr := c.db.QueryRowContext(ctx, tableTypeSQL, c.names.rawSchema, c.names.rawTable).Scan(&tt); qerr != nil || tt.String != "VIEW" {
		return err
	}
	return fmt.Errorf("%w: %w", c.errMismatch(op, "view"), err)
}

// ensureDeltaSchema is EnsureSchema for a delta table: what is missing is created, as for the full
// layout; a full table of the view's name is ErrStorageMismatch before anything is created.
func (c *Checkpointer) ensureDeltaSchema(ctx context.Context) error {
	k, err := c.readDeltaCatalog(ctx)
	if err != nil {
		return interpret(err)
	}
	if k.tableType.String == "BASE TABLE" {
		return c.errMismatch("ensure schema", "table")
	}
	if k.upToDate() {
		return nil
	}
	ddl := c.dialect.deltaDDL(c.names, c.delta.items, c.delta.view.table)
	stmts := ddl.all()
	if k.schema {
		stmts = ddl.table
	}
	return c.runDDL(ctx, stmts)
}

// SchemaSQLFor is SchemaSQL for a table of the given storage: for StorageDelta the heads and items
// tables and the view (docs/storage.md).
func SchemaSQLFor(d Dialect, schema, table string, s Storage) (string, error) {
	switch s {
	case StorageFull:
		return SchemaSQL(d, schema, table)
	case StorageDelta:
	default:
		return "", fmt.Errorf("unknown storage %v: %w", s, ErrInvalidOptions)
	}
	if d == nil {
		d = PostgreSQL
	}
	heads, dl, err := newDelta(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable), d.facts())
	if err != nil {
		return "", err
	}
	return strings.Join(d.deltaDDL(heads, dl.items, dl.view.table).all(), ";\n\n") + ";\n", nil
}
