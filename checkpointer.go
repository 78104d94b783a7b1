package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// DBTX is what a Checkpointer runs its statements on: a *sql.DB, a *sql.Conn or a *sql.Tx (or anything with
// the same methods). With a *sql.DB or *sql.Conn the Checkpointer runs its own short transactions and
// retries them; with a *sql.Tx everything joins the caller's transaction and nothing is retried (see
// WithTx).
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txBeginner is the part of *sql.DB and *sql.Conn that lets the Checkpointer own transactions.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Defaults for the zero values of Options.
const (
	DefaultSchema                  = "public"
	DefaultTable                   = "ziro_checkpoints"
	DefaultMaxCheckpointsPerThread = 100
	DefaultMaxAttempts             = 10
	DefaultListLimit               = 100

	// NoLimit, as MaxCheckpointsPerThread or MaxSnapshotBytes, disables that limit.
	NoLimit = -1
)

// Options configure a Checkpointer. The zero value means PostgreSQL, table public.ziro_checkpoints,
// 100 checkpoints per thread and the dialect's snapshot size limit.
type Options struct {
	// Dialect is PostgreSQL (the default when nil) or CockroachDB; DetectDialect asks the server.
	Dialect Dialect
	// Schema and Table name the checkpoint table: [A-Za-z_][A-Za-z0-9_]*, at most 63 bytes, including the
	// derived index name (Table + "_thread_seq_key"). Defaults: "public", "ziro_checkpoints".
	Schema, Table string
	// MaxCheckpointsPerThread is the retention cap this client expects: after a put returns, the
	// thread keeps its newest this many checkpoints; NoLimit (any negative value) keeps everything. The
	// table records the cap every writer trims to (see Retention): 0, the default, follows the table;
	// another value must equal the table's (else puts fail with ErrRetentionMismatch), and is the cap
	// EnsureSchema records for a table that records none yet (0 records 100). On a table that records
	// no policy (one made by the TypeScript package that EnsureSchema has not upgraded), 0 trims
	// nothing.
	MaxCheckpointsPerThread int
	// MaxBytesPerThread is the byte budget this client expects: after a put returns, the thread keeps
	// its newest checkpoints whose sizes (size_bytes, the JSON as sent) sum to at most this many bytes,
	// and always at least the newest. Like MaxCheckpointsPerThread it is the table's (see Retention): 0,
	// the default, follows the table; NoLimit (any negative value) expects no byte budget; another value
	// must equal the table's (else ErrRetentionMismatch) and is what EnsureSchema records for a table
	// that records no policy yet (0 records none). With both a cap and a budget the put keeps whichever
	// is fewer. Memory: 0 and negative mean no byte budget.
	MaxBytesPerThread int64
	// MaxSnapshotBytes rejects larger snapshots with ErrSnapshotTooLarge before anything is sent. 0 means
	// the dialect's default (PostgreSQL 16 MiB, CockroachDB 1 MiB); NoLimit (negative) disables the check.
	MaxSnapshotBytes int
	// MaxAttempts bounds how often, in all, a put or delete runs when the server reports a retryable
	// conflict (SQLSTATE 40001), an unknown commit outcome (40003), or another writer takes the same
	// position in the thread; on CockroachDB it also bounds each EnsureSchema statement. 0 means 10.
	MaxAttempts int
	// Clock replaces time.Now for the timestamps inside checkpoint ids (tests, determinism). Ids stay
	// strictly increasing whatever it returns.
	Clock func() time.Time
	// Observer, when set, hears about every operation (see Event).
	Observer Observer
	// Storage is the table's layout: StorageFull (the zero value; the TypeScript package's table) or
	// StorageDelta (docs/storage.md). A table of the other layout is ErrStorageMismatch.
	Storage Storage
	// Keys, when set, encrypts at rest (docs/security.md): every snapshot this client writes is sealed
	// with AES-256-GCM under Keys' current key, bound to its table, thread and checkpoint; reads open
	// envelopes with the key they name and, from a table that requires encryption, refuse plaintext
	// (ErrEncryptionRequired). EnsureSchema makes an empty table require encryption; Rekey encrypts a
	// table that has rows and moves rows to a new current key. Nil: no encryption (an encrypted
	// snapshot is then ErrKeyMissing).
	Keys KeyProvider
}

// Checkpointer stores agent snapshots in one table. It is safe for concurrent use, also over a
// *sql.Conn (its operations then take turns on the one connection).
type Checkpointer struct {
	db      DBTX
	dialect Dialect
	facts   dialectFacts
	names   names
	q       statements
	wantCap *int // the cap Options name: nil follows the table, 0 keeps everything
	// wantBudget is the byte budget Options name: nil follows the table, 0 none.
	wantBudget *int64
	policy     *policyCache // the table's policy as last read, shared with WithTx copies
	maxBytes   int          // 0: no limit
	attempts   int
	ids        *idGen
	observer   Observer
	// delta is set for a delta table (StorageDelta); names and q then name its heads table.
	delta *delta
	// seal encrypts and decrypts snapshots (Options.Keys); nil: no encryption.
	seal *sealer
	// inTx: db is the caller's transaction (New with a *sql.Tx, or WithTx): nothing is retried, and
	// the transaction's isolation level is checked once (isolationOK).
	inTx        bool
	isolationOK *atomic.Bool
	// serial, when set, makes operations take turns: db is one connection (*sql.Conn), where another
	// goroutine's statement would otherwise run inside this one's transaction.
	serial *sync.Mutex
}

// New returns a Checkpointer over db: a *sql.DB or *sql.Conn (or a wrapper with BeginTx), on which it
// runs its own short transactions and retries them, or a *sql.Tx, whose transaction it joins (as WithTx
// does). It checks the options (ErrInvalidIdentifier, ErrInvalidOptions) and does not touch the database.
// A nil handle, a typed nil, or a DBTX that is neither a *sql.Tx nor able to begin transactions (a
// logging wrapper without BeginTx, say, which would silently lose the put's atomicity) is
// ErrInvalidOptions.
func New(db DBTX, opts Options) (*Checkpointer, error) {
	if isNil(db) {
		return nil, fail(OpNew, "", "", fmt.Errorf("nil database handle: %w", ErrInvalidOptions))
	}
	d := opts.Dialect
	if d == nil {
		d = PostgreSQL
	}
	n, err := newNames(orDefault(opts.Schema, DefaultSchema), orDefault(opts.Table, DefaultTable))
	if err != nil {
		return nil, fail(OpNew, "", "", err)
	}
	c := &Checkpointer{
		db:         db,
		dialect:    d,
		facts:      d.facts(),
		names:      n,
		q:          newStatements(n, d.facts()),
		wantCap:    wantCapOf(opts),
		wantBudget: wantBudgetOf(opts),
		policy:     new(policyCache),
		maxBytes:   maxBytesOf(opts, d),
		attempts:   opts.MaxAttempts,
		observer:   opts.Observer,
		ids:        newIDGen(opts.Clock),
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if err := c.useStorage(opts.Storage); err != nil {
		return nil, fail(OpNew, "", "", err)
	}
	c.seal = newSealer(opts.Keys, c.sealedTable())
	switch db.(type) {
	case *sql.Tx:
		c.inTx, c.isolationOK = true, new(atomic.Bool)
	case *sql.Conn:
		c.serial = new(sync.Mutex)
	case txBeginner:
	default:
		return nil, fail(OpNew, "", "", fmt.Errorf("a %T can neither begin transactions (BeginTx) nor is a *sql.Tx: "+
			"give the wrapper a BeginTx method, or pass the caller's transaction through WithTx: %w", db, ErrInvalidOptions))
	}
	return c, nil
}

// isNil reports a nil interface or an interface holding a nil pointer.
func isNil(db DBTX) bool {
	if db == nil {
		return true
	}
	v := reflect.ValueOf(db)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// WithTx returns a Checkpointer that runs every statement inside tx, sharing this one's options and id
// sequence, so a checkpoint commits or rolls back together with the caller's own writes. Inside a caller's
// transaction pgcheckpoint never retries: a retryable error (see Retryable) or ErrConflict is returned
// and the caller's own loop should run the whole transaction again. The transaction must run at READ
// COMMITTED on PostgreSQL (its default) and SERIALIZABLE on CockroachDB (its default): at another level
// a put returns ErrInvalidOptions before it writes anything.
func (c *Checkpointer) WithTx(tx *sql.Tx) *Checkpointer {
	cp := *c
	cp.db = tx
	cp.inTx = true
	cp.isolationOK = new(atomic.Bool)
	cp.serial = nil
	return &cp
}

// hold makes the caller take its turn on a single connection; it returns the release.
func (c *Checkpointer) hold() func() {
	if c.serial == nil {
		return func() {}
	}
	c.serial.Lock()
	return c.serial.Unlock
}

// checkCallerIsolation refuses a caller's transaction at an isolation level the put is not built for,
// once per transaction. At REPEATABLE READ on PostgreSQL, say, a first put would look for rows in a
// snapshot older than the lock it holds, and could reuse a number another writer's rows still need.
func (c *Checkpointer) checkCallerIsolation(ctx context.Context) error {
	if !c.inTx || c.isolationOK.Load() {
		return nil
	}
	var level string
	if err := c.db.QueryRowContext(ctx, c.q.isolation).Scan(&level); err != nil {
		return err
	}
	if !strings.EqualFold(level, c.facts.callerIsolation) {
		return fmt.Errorf("the caller's transaction runs at %s; on %s it must run at %s: %w",
			strings.ToUpper(level), c.dialect.Name(), strings.ToUpper(c.facts.callerIsolation), ErrInvalidOptions)
	}
	c.isolationOK.Store(true)
	return nil
}

// Dialect returns the dialect the Checkpointer speaks.
func (c *Checkpointer) Dialect() Dialect { return c.dialect }

// Checkpoint is one stored snapshot and its metadata. List leaves Snapshot nil.
type Checkpoint struct {
	ID        string          // UUIDv7, canonical lower case
	ThreadID  string          // the conversation thread
	CreatedAt time.Time       // the server's time of the insert
	Version   int32           // the snapshot's top-level "version" (0 when absent)
	SizeBytes int32           // length of the snapshot JSON as it was sent
	Snapshot  json.RawMessage // the snapshot as PostgreSQL returns it: equivalent JSON in JSONB's normal form (encrypted: as it was sent)
}

// Put stores snapshot (a JSON object) as the newest checkpoint of the thread, trims the thread to the
// retention cap in the same atomic step, and returns the new checkpoint's id.
func (c *Checkpointer) Put(ctx context.Context, threadID string, snapshot []byte) (string, error) {
	return c.put(ctx, OpPut, threadID, snapshot, nil)
}

// PutAfter is Put with writer fencing: it stores the snapshot only if head is still the thread's newest
// checkpoint. Otherwise, also when head is unknown, it writes nothing and returns ErrConflict, with the
// head it lost to in Error.Head; a head that is not a UUID (the empty string included: PutIfEmpty is
// the put that expects no head) is ErrInvalidCheckpointID. Of concurrent PutAfter calls naming the same
// head, exactly one succeeds.
func (c *Checkpointer) PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error) {
	if head == "" {
		return "", fail(OpPutAfter, threadID, head, errNoHead)
	}
	return c.put(ctx, OpPutAfter, threadID, snapshot, &head)
}

// PutIfEmpty is Put only if the thread has no checkpoint: the first put of a conversation that must not
// land on top of another writer's. Otherwise it writes nothing and returns ErrConflict, with the
// thread's newest id in Error.Head. Of concurrent PutIfEmpty calls on one thread, exactly one succeeds.
func (c *Checkpointer) PutIfEmpty(ctx context.Context, threadID string, snapshot []byte) (string, error) {
	empty := ""
	return c.put(ctx, OpPutIfEmpty, threadID, snapshot, &empty)
}

// Get returns checkpoint id of the thread. It returns ErrNotFound when the thread has no such checkpoint,
// and ErrInvalidCheckpointID when id is not a UUID (the empty string included: Latest reads the newest).
func (c *Checkpointer) Get(ctx context.Context, threadID, id string) (Checkpoint, error) {
	defer c.hold()()
	start := time.Now()
	cp, err := c.getByID(ctx, threadID, id)
	err = fail(OpGet, threadID, id, err)
	c.observe(ctx, Event{Op: OpGet, ThreadID: threadID, Start: start, Bytes: len(cp.Snapshot), Err: err})
	return cp, err
}

// Latest returns the thread's newest checkpoint, or ErrNotFound when the thread has none.
func (c *Checkpointer) Latest(ctx context.Context, threadID string) (Checkpoint, error) {
	defer c.hold()()
	start := time.Now()
	cp, err := c.get(ctx, threadID, "")
	err = fail(OpLatest, threadID, "", err)
	c.observe(ctx, Event{Op: OpLatest, ThreadID: threadID, Start: start, Bytes: len(cp.Snapshot), Err: err})
	return cp, err
}

func (c *Checkpointer) getByID(ctx context.Context, threadID, id string) (Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return Checkpoint{}, err
	}
	canon, err := checkID("checkpoint id", id)
	if err != nil {
		return Checkpoint{}, err
	}
	return c.get(ctx, threadID, canon)
}

// get reads checkpoint id of the thread (a canonical id), or its newest when id is "".
func (c *Checkpointer) get(ctx context.Context, threadID, id string) (Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return Checkpoint{}, err
	}
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	if c.delta != nil {
		return c.deltaGetChecked(ctx, threadID, id)
	}
	query, args := c.q.getLatest, []any{threadID}
	if id != "" {
		query, args = c.q.getByID, []any{threadID, id}
	}
	cp := Checkpoint{ThreadID: threadID}
	var snap []byte
	err := c.db.QueryRowContext(ctx, query, args...).Scan(&cp.ID, &cp.CreatedAt, &cp.Version, &cp.SizeBytes, &snap)
	if err == sql.ErrNoRows {
		return Checkpoint{}, ErrNotFound
	}
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Snapshot, err = c.reveal(ctx, c.bind(bindRow, threadID, cp.ID, ""), snap); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// ListOptions page through a thread's checkpoints.
type ListOptions struct {
	// Limit is the most checkpoints returned: 0 means 100, a negative value means all of them. Long lists are read in pages of MaxListLimit
	// rows, one statement each, so none is cut short.
	Limit int
	// Before, when set, returns only checkpoints older than this id: pass the last id of the previous
	// page. It must be a UUID (ErrInvalidCheckpointID).
	Before string
}

// MaxListLimit is the most rows one statement of List reads; a longer list takes several.
const MaxListLimit = 10000

// List returns the metadata of a thread's checkpoints, newest first, without snapshots. An unknown
// thread has an empty list. A list longer than MaxListLimit is read in several statements: a checkpoint
// put meanwhile is not in it, and one deleted meanwhile may be.
func (c *Checkpointer) List(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error) {
	defer c.hold()()
	start := time.Now()
	out, err := c.list(ctx, threadID, opts)
	err = fail(OpList, threadID, opts.Before, err)
	c.observe(ctx, Event{Op: OpList, ThreadID: threadID, Start: start, Rows: len(out), Err: err})
	return out, err
}

func (c *Checkpointer) list(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return nil, err
	}
	before := ""
	if opts.Before != "" {
		canon, err := checkID("cursor", opts.Before)
		if err != nil {
			return nil, err
		}
		before = canon
	}
	want := listLimit(opts.Limit)
	var out []Checkpoint
	for {
		page := MaxListLimit
		if want >= 0 {
			page = min(want-len(out), MaxListLimit)
		}
		got, err := c.listPage(ctx, threadID, before, page)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) < page || len(out) == want {
			return out, nil
		}
		before = got[len(got)-1].ID
	}
}

// listPage reads at most limit checkpoints older than before ("": the newest).
func (c *Checkpointer) listPage(ctx context.Context, threadID, before string, limit int) ([]Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.checkStorage(ctx, "list"); err != nil {
		return nil, err
	}
	var (
		rows *sql.Rows
		err  error
	)
	if before == "" {
		rows, err = c.db.QueryContext(ctx, c.q.list, threadID, limit)
	} else {
		rows, err = c.db.QueryContext(ctx, c.q.listBefore, threadID, before, limit)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Checkpoint, 0, min(limit, 128))
	for rows.Next() {
		cp := Checkpoint{ThreadID: threadID}
		if err := rows.Scan(&cp.ID, &cp.CreatedAt, &cp.Version, &cp.SizeBytes); err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, rows.Err()
}

// Delete removes checkpoint id of the thread. Deleting nothing (an unknown thread or id) is not an
// error; an id that is not a UUID (the empty string included: DeleteThread removes a thread) is
// ErrInvalidCheckpointID.
func (c *Checkpointer) Delete(ctx context.Context, threadID, id string) error {
	defer c.hold()()
	start := time.Now()
	n, err := c.deleteOne(ctx, threadID, id)
	err = fail(OpDelete, threadID, id, err)
	c.observe(ctx, Event{Op: OpDelete, ThreadID: threadID, Start: start, Rows: int(n), Err: err})
	return err
}

// DeleteThread removes every checkpoint of the thread. Deleting an unknown thread is not an error.
func (c *Checkpointer) DeleteThread(ctx context.Context, threadID string) error {
	defer c.hold()()
	start := time.Now()
	n, err := c.deleteThread(ctx, threadID)
	err = fail(OpDeleteThread, threadID, "", err)
	c.observe(ctx, Event{Op: OpDeleteThread, ThreadID: threadID, Start: start, Rows: int(n), Err: err})
	return err
}

// startDelete checks what both deletes check, after their arguments, before they touch the thread. Their row locks are taken
// by looking again in fresh snapshots: a caller's transaction at another level would delete by a stale
// one (the checker saw a whole-thread delete at REPEATABLE READ spare a row committed before it).
func (c *Checkpointer) startDelete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.checkCallerIsolation(ctx); err != nil {
		return err
	}
	return c.checkStorage(ctx, "delete")
}

func (c *Checkpointer) deleteThread(ctx context.Context, threadID string) (int64, error) {
	if err := checkThread(threadID); err != nil {
		return 0, err
	}
	if err := c.startDelete(ctx); err != nil {
		return 0, err
	}
	// The thread's row locks come first, newest first as a put takes them: a plain DELETE locks the
	// oldest rows first and then waits for a put's head, while that put's trim waits for the oldest
	// rows (a deadlock).
	var n int64
	err := c.runTx(ctx, func(q DBTX) error {
		if err := c.lockThreadRows(ctx, q, threadID); err != nil {
			return err
		}
		res, err := q.ExecContext(ctx, c.q.deleteAll, threadID)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if h := testhooks.AfterDeleteThreadRows; h != nil {
			h(c, threadID)
		}
		// Only the items no head holds: a thread's first put takes no row lock that this transaction
		// could have waited for, so one may commit a new head and its items between the DELETE above
		// and this statement (dropping every item of the thread left that head without its items).
		return c.deltaGC(ctx, q, []string{threadID})
	})
	return n, c.fullMismatch(ctx, "delete", err)
}

func (c *Checkpointer) deleteOne(ctx context.Context, threadID, id string) (int64, error) {
	if err := checkThread(threadID); err != nil {
		return 0, err
	}
	canon, err := checkID("checkpoint id", id)
	if err != nil {
		return 0, err
	}
	if err := c.startDelete(ctx); err != nil {
		return 0, err
	}
	// Removing one row can open a gap in the thread's numbering, which would make the next trim keep
	// one checkpoint too few; renumbering in the same transaction keeps it dense. The transaction first
	// holds the lock of every row of the thread, the newest included, so no put appends, trims or waits
	// on this transaction's row locks while holding one of its own (that order deadlocked before).
	var n int64
	err = c.runTx(ctx, func(q DBTX) error {
		if err := c.lockThreadRows(ctx, q, threadID); err != nil {
			return err
		}
		res, err := q.ExecContext(ctx, c.q.deleteOne, threadID, canon)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		if err := c.sealThreadRows(ctx, q, threadID); err != nil { // rekey.go
			return err
		}
		if _, err = q.ExecContext(ctx, c.q.renumber, threadID); err != nil {
			return err
		}
		return c.deltaGC(ctx, q, []string{threadID})
	})
	return n, c.fullMismatch(ctx, "delete", err)
}

// checkThread enforces the thread id rules: 1 to 1024 bytes of valid UTF-8 without NUL.
func checkThread(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("thread id is empty: %w", ErrInvalidThreadID)
	case len(id) > 1024:
		return fmt.Errorf("thread id is %d bytes, the limit is 1024: %w", len(id), ErrInvalidThreadID)
	case !utf8.ValidString(id):
		return fmt.Errorf("thread id is not valid UTF-8: %w", ErrInvalidThreadID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return fmt.Errorf("thread id holds a NUL byte: %w", ErrInvalidThreadID)
		}
	}
	return nil
}

// capOf is the retention cap of a Memory store's opts: 0 means the default, negative means none (0 here).
func capOf(opts Options) int {
	switch {
	case opts.MaxCheckpointsPerThread == 0:
		return DefaultMaxCheckpointsPerThread
	case opts.MaxCheckpointsPerThread < 0:
		return 0
	}
	return opts.MaxCheckpointsPerThread
}

// maxBytesOf is the snapshot size limit of opts for dialect d: 0 means d's default, negative means none
// (0 here).
func maxBytesOf(opts Options, d Dialect) int {
	switch {
	case opts.MaxSnapshotBytes == 0:
		return d.facts().defaultMaxSnapshotBytes
	case opts.MaxSnapshotBytes < 0:
		return 0
	}
	return opts.MaxSnapshotBytes
}

// listLimit turns a List limit into a count: 0 means 100, negative means all (-1).
func listLimit(limit int) int {
	switch {
	case limit == 0:
		return DefaultListLimit
	case limit < 0:
		return -1
	}
	return limit
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
