package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A table's encryption state is the database's: a check constraint named <table>_encrypted (on a delta
// table, one on each of <table>_heads and <table>_items) that lets only envelopes in. The server
// enforces it for every writer, also one whose client is stale or has no keys, and also the TypeScript
// package. While the constraint is NOT VALID (being encrypted), rows written before it may still be
// plaintext; once it is validated every row is an envelope, and a client with keys refuses plaintext.

// EncryptionState is a table's encryption state (see Checkpointer.Encryption).
type EncryptionState int

const (
	// EncryptionNone: the table takes plaintext and envelopes alike. A client with Options.Keys still
	// seals everything it writes.
	EncryptionNone EncryptionState = iota
	// EncryptionMigrating: `pgcheckpoint rekey` (Rekey) has started to encrypt the table: the server
	// refuses plaintext writes; older rows may still be plaintext, and clients read them.
	EncryptionMigrating
	// EncryptionRequired: every row is sealed; the server refuses plaintext writes and clients with
	// keys refuse plaintext rows (ErrEncryptionRequired).
	EncryptionRequired
)

// String returns "none", "migrating" or "required".
func (s EncryptionState) String() string {
	switch s {
	case EncryptionNone:
		return "none"
	case EncryptionMigrating:
		return "migrating"
	case EncryptionRequired:
		return "required"
	}
	return "EncryptionState(" + strconv.Itoa(int(s)) + ")"
}

// encryptedSuffix names a table's encryption constraint: <table>_encrypted.
const encryptedSuffix = "_encrypted"

// encTarget is one table an encryption constraint guards: the table, its constraint and the JSONB
// column it checks.
type encTarget struct {
	table, rawTable, constraint, column string
}

// encTargets are the tables of the Checkpointer's encryption constraints: the table itself, or a delta
// table's heads and items.
func (c *Checkpointer) encTargets() []encTarget {
	targets := []encTarget{{table: c.names.table, rawTable: c.names.rawTable, column: "snapshot"}}
	if c.delta != nil {
		raw := c.delta.view.rawTable + itemsSuffix
		targets = append(targets, encTarget{table: c.delta.items, rawTable: raw, column: "item"})
	}
	for i := range targets {
		targets[i].constraint = targets[i].rawTable + encryptedSuffix
	}
	return targets
}

// addConstraint is the DDL that makes t refuse plaintext: validated at once (valid) or only for new
// rows (NOT VALID). A value is an envelope when its "$" member is envelopeMarker; CHECK lets NULL
// pass, hence COALESCE.
func (t encTarget) addConstraint(valid bool) string {
	s := `ALTER TABLE ` + t.table + ` ADD CONSTRAINT ` + quoteIdent(t.constraint) +
		` CHECK (COALESCE(` + t.column + `->>'$' = '` + envelopeMarker + `', false))`
	if !valid {
		s += ` NOT VALID`
	}
	return s
}

// validate is the DDL that checks every existing row of t and marks its constraint validated.
func (t encTarget) validate() string {
	return `ALTER TABLE ` + t.table + ` VALIDATE CONSTRAINT ` + quoteIdent(t.constraint)
}

// encStateQuery reads a constraint's state: no row, none; convalidated false, migrating; true, required.
const encStateQuery = `SELECT c.convalidated FROM pg_catalog.pg_constraint AS c
JOIN pg_catalog.pg_class AS t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace AS s ON s.oid = t.relnamespace
WHERE s.nspname = $1 AND t.relname = $2 AND c.conname = $3`

// readEncryption reads the table's state from its (first) constraint: the heads' for a delta table,
// whose items' constraint is added and validated in the same steps.
func (c *Checkpointer) readEncryption(ctx context.Context) (EncryptionState, error) {
	return c.readEncryptionIn(ctx, c.db)
}

// readEncryptionIn is readEncryption in q (a transaction that must see the state as it is now).
func (c *Checkpointer) readEncryptionIn(ctx context.Context, q DBTX) (EncryptionState, error) {
	t := c.encTargets()[0]
	var valid bool
	err := q.QueryRowContext(ctx, encStateQuery, c.names.rawSchema, t.rawTable, t.constraint).Scan(&valid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return EncryptionNone, nil
	case err != nil:
		return 0, interpret(err)
	case valid:
		return EncryptionRequired, nil
	}
	return EncryptionMigrating, nil
}

// Encryption returns the table's encryption state as the database records it now.
func (c *Checkpointer) Encryption(ctx context.Context) (EncryptionState, error) {
	defer c.hold()()
	s, err := c.readEncryption(ctx)
	return s, fail(OpEncryption, "", "", err)
}

// encryptionCached is the table's state as read at most policyRefresh ago (reads of plaintext rows by a
// client with keys ask it).
func (c *Checkpointer) encryptionCached(ctx context.Context) (EncryptionState, error) {
	p := c.policy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.encAt.IsZero() || time.Since(p.encAt) >= policyRefresh {
		s, err := c.readEncryption(ctx)
		if err != nil {
			return 0, err
		}
		p.enc, p.encAt = s, time.Now()
	}
	return p.enc, nil
}

// forgetEncryption makes the next read ask the database again.
func (c *Checkpointer) forgetEncryption() {
	c.policy.mu.Lock()
	c.policy.encAt = time.Time{}
	c.policy.mu.Unlock()
}

// bind is the binding of a row (full table) or head (delta table) of the thread: see seal.go.
func (c *Checkpointer) bind(kind byte, threadID, at, extra string) binding {
	return binding{table: c.sealedTable(), kind: kind, thread: threadID, at: at, extra: extra}
}

// sealedTable is the table name ciphertexts are bound to: "schema.table" as the user names it (a
// delta table's view).
func (c *Checkpointer) sealedTable() string {
	if c.delta != nil {
		return c.delta.view.rawSchema + "." + c.delta.view.rawTable
	}
	return c.names.rawSchema + "." + c.names.rawTable
}

// conceal returns what a put stores for plain bound to b: its envelope with keys, else plain itself.
func (c *Checkpointer) conceal(ctx context.Context, b binding, plain []byte) ([]byte, error) {
	if c.seal == nil {
		return plain, nil
	}
	return c.seal.seal(ctx, b, plain)
}

// reveal returns the snapshot a stored value bound to b stands for: an envelope is opened (a client
// without keys gets ErrKeyMissing), plaintext is returned as it is unless the client has keys and the
// table requires encryption (ErrEncryptionRequired).
func (c *Checkpointer) reveal(ctx context.Context, b binding, stored []byte) ([]byte, error) {
	if isEnvelope(stored) {
		if c.seal == nil {
			return nil, fmt.Errorf("%s is encrypted and this client has no Options.Keys: %w", b.describe(), ErrKeyMissing)
		}
		return c.seal.open(ctx, b, stored)
	}
	if c.seal == nil {
		return stored, nil
	}
	state, err := c.encryptionCached(ctx)
	if err != nil {
		return nil, err
	}
	if state == EncryptionRequired {
		return nil, fmt.Errorf("%s of thread %q is plaintext in a table that requires encryption: %w", b.describe(), b.thread, ErrEncryptionRequired)
	}
	return stored, nil
}

// markEncryptedIfEmpty makes a table that holds no checkpoint an encrypted one (EncryptionRequired) when
// the client has keys and the table has no constraint yet: EnsureSchema does so, so a table created with
// keys never takes a plaintext row. A table with rows keeps its state: encrypting it is Rekey's.
func (c *Checkpointer) markEncryptedIfEmpty(ctx context.Context) error {
	if c.seal == nil {
		return nil
	}
	state, err := c.readEncryption(ctx)
	if err != nil || state != EncryptionNone {
		return err
	}
	var any bool
	if err := c.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+c.names.table+`)`).Scan(&any); err != nil || any {
		return interpret(err)
	}
	err = c.addEncryptionConstraints(ctx, true)
	if SQLState(err) == stateCheckViolation {
		return nil // a plaintext row arrived meanwhile: the table stays as it is
	}
	return err
}

// addEncryptionConstraints adds the constraints the table lacks (valid: validated at once, else NOT
// VALID), behind the schema lock where there are advisory locks. A constraint another run added
// meanwhile (42710) is fine.
func (c *Checkpointer) addEncryptionConstraints(ctx context.Context, valid bool) error {
	var stmts []string
	for _, t := range c.encTargets() {
		var one bool
		err := c.db.QueryRowContext(ctx, encStateQuery, c.names.rawSchema, t.rawTable, t.constraint).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			stmts = append(stmts, t.addConstraint(valid))
		case err != nil:
			return interpret(err)
		}
	}
	defer c.forgetEncryption()
	if len(stmts) == 0 {
		return nil
	}
	if c.facts.advisoryLocks {
		// ADD CONSTRAINT takes the table's ACCESS EXCLUSIVE lock: waiting for it behind a long
		// transaction would queue every put and read behind the wait. A bounded wait, run again after a
		// backoff, lets them through in between.
		stmts = append([]string{constraintLockTimeout}, stmts...)
	}
	for attempt := 1; ; attempt++ {
		err := c.runDDL(ctx, stmts)
		switch {
		case SQLState(err) == stateDuplicateObject:
			return nil
		case SQLState(err) != stateLockNotAvailable || attempt >= c.attempts:
			return err
		}
		if err := backoff(ctx, attempt+1); err != nil {
			return err
		}
	}
}

// constraintLockTimeout bounds, in the DDL transaction on PostgreSQL, how long adding an encryption
// constraint waits for the table's lock.
const constraintLockTimeout = `SET LOCAL lock_timeout = '2s'`

// validateEncryption validates the table's constraints: every row is an envelope from then on
// (EncryptionRequired). A plaintext row left is ErrEncryptionRequired (23514).
func (c *Checkpointer) validateEncryption(ctx context.Context) error {
	var stmts []string
	for _, t := range c.encTargets() {
		stmts = append(stmts, t.validate())
	}
	defer c.forgetEncryption()
	// One statement at a time, each its own transaction: VALIDATE scans the table, and should not hold
	// the schema lock meanwhile.
	for _, s := range stmts {
		if _, err := c.db.ExecContext(ctx, s); err != nil {
			return interpret(privilegeError(c.names, s, err))
		}
	}
	return nil
}

// resealRows is the statement that replaces the stored value of rows of the table: $1 is a JSON array
// of {"t": thread, "c": checkpoint id, "s": envelope}. Fork (re-binding its copies) and Rekey (a new
// key) write through it; it never inserts, so a row deleted meanwhile stays deleted.
func resealRows(table string) string {
	return `UPDATE ` + table + ` AS t SET snapshot = u.value->'s'
FROM jsonb_array_elements($1::text::jsonb) AS u
WHERE t.thread_id = u.value->>'t' AND t.checkpoint_id = u.value->>'c'`
}

// resealItems is resealRows for a delta table's items: $1 is a JSON array of {"t": thread, "p":
// position, "i": envelope}.
func resealItems(items string) string {
	return `UPDATE ` + items + ` AS t SET item = u.value->'i'
FROM jsonb_array_elements($1::text::jsonb) AS u
WHERE t.thread_id = u.value->>'t' AND t.pos = (u.value->>'p')::bigint`
}

// resealedItem is one entry of resealItems' argument.
type resealedItem struct {
	Thread string          `json:"t"`
	Pos    int64           `json:"p"`
	Item   json.RawMessage `json:"i"`
}

// resealed is one entry of resealRows' argument (Arrays: of resealHeads', a delta head's new arrays
// column, or none to keep it).
type resealed struct {
	Thread     string          `json:"t"`
	Checkpoint string          `json:"c"`
	Snapshot   json.RawMessage `json:"s"`
	Arrays     json.RawMessage `json:"a,omitempty"`
}

// rebindFork re-binds, inside the fork's transaction, the copies a fork made in thread r.to of a full
// table: their envelopes are bound to r.from, so each is opened and sealed again for r.to (through the
// client: the server has no keys, so a fork of an encrypted table costs O(snapshot) however it is
// stored). Without keys, a fork that copied an envelope is ErrKeyMissing (its copies could never be
// read).
func (c *Checkpointer) rebindFork(ctx context.Context, q DBTX, r forkRequest) error {
	if c.delta != nil {
		return c.deltaRebindFork(ctx, q, r)
	}
	rows, err := q.QueryContext(ctx, `SELECT checkpoint_id, snapshot::text FROM `+c.names.table+`
WHERE thread_id = $1 AND snapshot->>'$' = '`+envelopeMarker+`'`, r.to)
	if err != nil {
		return err
	}
	defer rows.Close()
	var out []resealed
	for rows.Next() {
		var id string
		var env []byte
		if err := rows.Scan(&id, &env); err != nil {
			return err
		}
		if c.seal == nil {
			return errForkKeyMissing("checkpoint " + id)
		}
		sealed, err := c.rebind(ctx, c.bind(bindRow, r.from, id, ""), c.bind(bindRow, r.to, id, ""), env)
		if err != nil {
			return err
		}
		out = append(out, resealed{Thread: r.to, Checkpoint: id, Snapshot: sealed})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return execResealed(ctx, q, resealRows(c.names.table), out)
}
