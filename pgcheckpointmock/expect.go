// Package pgcheckpointmock lets applications unit-test code that uses a pgcheckpoint.Checkpointer with
// go-sqlmock alone: the exact statements a Checkpointer sends per dialect (Statements, PostgreSQL,
// CockroachDB, StatementsFor) and helpers that register what each operation sends and what the database
// answers (ExpectPut, ExpectGetLatest, ExpectList, ...).
//
// The helpers describe the usual path of each operation: a put that lands (on a thread with a head, or
// as an empty thread's first row), a get that finds or does not find, a delete. For anything else (a conflict, a driver error, the retry paths) register expectations
// with the statement texts directly. The package's own tests run a real Checkpointer against these
// expectations, so they change when the Checkpointer does.
//
// Expectations are SQL texts, not regular expressions: create the mock with New, or with
// sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual).
//
// The package is a module of its own (github.com/ziroagent/pgcheckpoint/pgcheckpointmock), so that users
// of pgcheckpoint who do not use go-sqlmock never download it; require it at the library's version.
package pgcheckpointmock

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/internal/snapshotfacts"
)

// New returns a sqlmock database whose expectations match SQL text exactly (whitespace aside), as the
// helpers of this package need.
func New() (*sql.DB, sqlmock.Sqlmock, error) {
	return sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
}

// Option describes the Checkpointer under test or the answer the mock gives.
type Option func(*config)

type config struct {
	schema, table string
	cap           int
	budget        int64
	fence         *string
	seq           int64
	trimmed       int64
	before        string
}

// Table names the schema and table the Checkpointer uses (Options.Schema, Options.Table).
func Table(schema, table string) Option {
	return func(c *config) { c.schema, c.table = schema, table }
}

// Cap is the retention cap the put trims to, the table's (0 means 100, negative means none).
func Cap(n int) Option { return func(c *config) { c.cap = n } }

// Budget is the table's byte budget (Retention.MaxBytesPerThread; 0: none): ExpectPut expects the
// statements that trim by bytes, ExpectRetention reports it.
func Budget(n int64) Option { return func(c *config) { c.budget = n } }

// Fence makes ExpectPut expect a PutAfter naming head ("" for a thread that must be empty).
func Fence(head string) Option { return func(c *config) { c.fence = &head } }

// Seq is the row number the mock reports for the put's new checkpoint. 1 (the default without a Fence
// naming a head) is an empty thread's first checkpoint, which a put stores in a transaction of its own
// after its statement found no head; above 1 (the default with a Fence naming a head is 2) the thread has
// a head numbered Seq-1 that the put appends to. On CockroachDB, a Seq above the cap makes ExpectPut
// expect the trim too.
func Seq(n int64) Option { return func(c *config) { c.seq = n } }

// Trimmed is how many rows the mock reports the put's trim deleted (default 0).
func Trimmed(n int64) Option { return func(c *config) { c.trimmed = n } }

// Before makes ExpectList expect a page older than the cursor id (ListOptions.Before).
func Before(id string) Option { return func(c *config) { c.before = id } }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.seq == 0 {
		c.seq = 1
		if c.fence != nil && *c.fence != "" {
			c.seq = 2 // the fence names a head: the new row follows it
		}
	}
	switch {
	case c.cap == 0:
		c.cap = pgcheckpoint.DefaultMaxCheckpointsPerThread
	case c.cap < 0:
		c.cap = 0
	}
	return c
}

func statements(d pgcheckpoint.Dialect, c config) Statements {
	s, err := StatementsFor(d, c.schema, c.table)
	if err != nil {
		panic(fmt.Sprintf("pgcheckpointmock: %v", err))
	}
	return s
}

// ID matches the checkpoint id a put sends (a canonical lower-case UUIDv7) and remembers it.
type ID struct{ id string }

// Match implements sqlmock.Argument.
func (a *ID) Match(v driver.Value) bool {
	s, ok := v.(string)
	if !ok || len(s) != 36 || s[14] != '7' || s != strings.ToLower(s) {
		return false
	}
	a.id = s
	return true
}

// String returns the id the put sent ("" before it ran): the id Put returned.
func (a *ID) String() string { return a.id }

// reportColumns are the columns of the row a put's statement returns (Statements.Put, Statements.Insert).
var reportColumns = []string{"new_seq", "head_id", "head_seq", "locked", "locked_seq", "unnumbered", "mine", "trimmed"}

// priorHead is the head ExpectPut reports when no Fence names one: an id below every id a put sends.
const priorHead = "00000000-0000-7000-8000-000000000000"

// ExpectPut registers one Put (or, with Fence, PutAfter) of snapshot to thread that stores the
// checkpoint, and returns the id the Checkpointer will send. snapshot must be a valid snapshot (a JSON
// object); its bytes are expected as they are.
//
// With Seq above 1 the put's statement (Put, or on CockroachDB Insert and, above the cap, Trim in one
// transaction) appends to the thread's head. With Seq 1 the thread is empty: the statement reports no
// head, and the put stores the first row in a transaction of its own (LockFirst and First on
// PostgreSQL; First at SERIALIZABLE on CockroachDB).
func ExpectPut(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread string, snapshot []byte, opts ...Option) *ID {
	c := newConfig(opts)
	s := statements(d, c)
	version, size, err := snapshotfacts.Inspect(snapshot)
	if err != nil {
		panic(fmt.Sprintf("pgcheckpointmock: ExpectPut: %v", err))
	}
	id := &ID{}
	var fence, capArg, budgetArg driver.Value
	if c.fence != nil {
		fence = *c.fence
	}
	if c.cap > 0 {
		capArg = int64(c.cap)
	}
	put, insert := s.Put, s.Insert
	if c.budget > 0 {
		budgetArg = c.budget
		put, insert = s.PutBytes, s.InsertBytes
	}
	retention := c.cap > 0 || c.budget > 0
	first := c.seq <= 1 && (c.fence == nil || *c.fence == "")
	oneStatement := s.Put != ""
	report := sqlmock.NewRows(reportColumns)
	if first {
		report.AddRow(nil, nil, nil, false, nil, false, false, int64(0))
	} else {
		head := priorHead
		if c.fence != nil {
			head = *c.fence
		}
		trimmed := int64(0) // on CockroachDB the trim is a statement of its own
		if oneStatement {
			trimmed = c.trimmed
		}
		report.AddRow(c.seq, head, c.seq-1, true, c.seq-1, false, false, trimmed)
	}
	args := []driver.Value{thread, id, snapshot, int64(version), int64(size), fence}
	switch {
	case oneStatement && c.budget > 0:
		mock.ExpectQuery(put).WithArgs(append(args, capArg, budgetArg)...).WillReturnRows(report)
	case oneStatement:
		mock.ExpectQuery(put).WithArgs(append(args, capArg)...).WillReturnRows(report)
	default:
		if retention {
			mock.ExpectBegin()
		}
		mock.ExpectQuery(insert).WithArgs(args...).WillReturnRows(report)
		if c.budget > 0 && !first {
			mock.ExpectExec(s.TrimBytes).WithArgs(thread, c.seq, capArg, budgetArg).WillReturnResult(sqlmock.NewResult(0, c.trimmed))
		}
		if c.budget > 0 {
			mock.ExpectCommit()
		} else if c.cap > 0 {
			if bound := c.seq - int64(c.cap); !first && bound >= 1 {
				mock.ExpectExec(s.Trim).WithArgs(thread, bound).WillReturnResult(sqlmock.NewResult(0, c.trimmed))
			}
			mock.ExpectCommit()
		}
	}
	if first {
		mock.ExpectBegin()
		if s.LockFirst != "" {
			mock.ExpectExec(s.LockFirst).WithArgs(thread).WillReturnResult(sqlmock.NewResult(0, 1))
		}
		mock.ExpectQuery(s.First).WithArgs(args[:5]...).WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
		mock.ExpectCommit()
	}
	return id
}

var (
	getColumns  = []string{"checkpoint_id", "created_at", "version", "size_bytes", "snapshot"}
	listColumns = []string{"checkpoint_id", "created_at", "version", "size_bytes"}
)

// ExpectRetention registers the reads of the table's retention policy that a Checkpointer makes before
// its first put (and again once a minute): the policy table exists and records cap checkpoints per
// thread (0: every checkpoint is kept) and, with Budget, a byte budget. With Table, the policy table is
// that table's.
func ExpectRetention(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, cap int, opts ...Option) {
	c := newConfig(opts)
	s := statements(d, c)
	schema, table := c.schema, c.table
	if schema == "" {
		schema = pgcheckpoint.DefaultSchema
	}
	if table == "" {
		table = pgcheckpoint.DefaultTable
	}
	mock.ExpectQuery(s.PolicyTable).WithArgs(schema, table+"_policy").
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
	mock.ExpectQuery(s.ReadPolicy).WithArgs().
		WillReturnRows(sqlmock.NewRows([]string{"max_checkpoints_per_thread", "max_bytes_per_thread"}).AddRow(int64(cap), c.budget))
}

// ExpectGetLatest registers a Get of the thread's newest checkpoint that returns cp, or finds nothing
// (ErrNotFound) when cp is nil. Zero CreatedAt, Version and SizeBytes are filled in from the snapshot.
func ExpectGetLatest(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread string, cp *pgcheckpoint.Checkpoint, opts ...Option) {
	s := statements(d, newConfig(opts))
	mock.ExpectQuery(s.GetLatest).WithArgs(thread).WillReturnRows(getRows(cp))
}

// ExpectGet registers a Get of checkpoint id that returns cp, or finds nothing when cp is nil. The id is
// expected in the canonical lower case the Checkpointer sends. A malformed id sends nothing: Get returns
// ErrInvalidCheckpointID without asking.
func ExpectGet(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread, id string, cp *pgcheckpoint.Checkpoint, opts ...Option) {
	s := statements(d, newConfig(opts))
	mock.ExpectQuery(s.GetByID).WithArgs(thread, strings.ToLower(id)).WillReturnRows(getRows(cp))
}

func getRows(cp *pgcheckpoint.Checkpoint) *sqlmock.Rows {
	rows := sqlmock.NewRows(getColumns)
	if cp != nil {
		c := filled(*cp)
		rows.AddRow(c.ID, c.CreatedAt, int64(c.Version), int64(c.SizeBytes), []byte(c.Snapshot))
	}
	return rows
}

// filled completes the metadata a test left out from the snapshot.
func filled(cp pgcheckpoint.Checkpoint) pgcheckpoint.Checkpoint {
	if cp.CreatedAt.IsZero() {
		cp.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cp.SizeBytes == 0 {
		cp.SizeBytes = int32(len(cp.Snapshot))
	}
	if cp.Version == 0 && cp.Snapshot != nil {
		cp.Version, _, _ = snapshotfacts.Inspect(cp.Snapshot)
	}
	return cp
}

// ExpectList registers a List of the thread that returns cps (newest first, snapshots ignored). limit
// is the LIMIT the Checkpointer sends: ListOptions.Limit, or 100 for 0, or for a negative limit
// pgcheckpoint.MaxListLimit (each further page of a longer list is one more List statement, older than
// the last id of the page before). Before sets the cursor.
func ExpectList(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread string, limit int, cps []pgcheckpoint.Checkpoint, opts ...Option) {
	c := newConfig(opts)
	s := statements(d, c)
	rows := sqlmock.NewRows(listColumns)
	for _, cp := range cps {
		cp = filled(cp)
		rows.AddRow(cp.ID, cp.CreatedAt, int64(cp.Version), int64(cp.SizeBytes))
	}
	if c.before != "" {
		mock.ExpectQuery(s.ListBefore).WithArgs(thread, strings.ToLower(c.before), int64(limit)).WillReturnRows(rows)
		return
	}
	mock.ExpectQuery(s.List).WithArgs(thread, int64(limit)).WillReturnRows(rows)
}

// ExpectDelete registers a Delete of checkpoint id that deletes it (found) or finds nothing. The delete
// runs in one transaction: it locks the thread's rows (LockRows, then Newest to see that no row was
// added meanwhile), deletes the checkpoint (DeleteOne) and, when it was found, renumbers the thread
// (Renumber). The id is expected in canonical lower case; a malformed id sends nothing.
func ExpectDelete(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread, id string, found bool, opts ...Option) {
	s := statements(d, newConfig(opts))
	id = strings.ToLower(id)
	deleted := int64(0)
	var ids []string
	if found {
		ids, deleted = []string{id}, 1
	}
	mock.ExpectBegin()
	expectLockThread(mock, s, thread, ids)
	mock.ExpectExec(s.DeleteOne).WithArgs(thread, id).WillReturnResult(sqlmock.NewResult(0, deleted))
	if found {
		mock.ExpectExec(s.Renumber).WithArgs(thread).WillReturnResult(sqlmock.NewResult(0, 0))
	}
	mock.ExpectCommit()
}

// ExpectDeleteThread registers a Delete of the whole thread that deletes n checkpoints: in a transaction,
// the thread's rows locked first (newest first, as a put takes them), then the delete.
func ExpectDeleteThread(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, thread string, n int64, opts ...Option) {
	s := statements(d, newConfig(opts))
	mock.ExpectBegin()
	expectLockThread(mock, s, thread, nil)
	mock.ExpectExec(s.DeleteAll).WithArgs(thread).WillReturnResult(sqlmock.NewResult(0, n))
	mock.ExpectCommit()
}

// expectLockThread expects the row locks a renumbering or a thread's delete takes when no other writer
// moves the thread meanwhile: a savepoint, the newest row (ids[0]) locked, the newest id in a fresh
// snapshot, every row (ids, newest first) locked, the newest id again, the savepoint released.
func expectLockThread(mock sqlmock.Sqlmock, s Statements, thread string, ids []string) {
	newest := func() *sqlmock.Rows {
		r := sqlmock.NewRows([]string{"max"})
		if len(ids) == 0 {
			return r.AddRow(nil)
		}
		return r.AddRow(ids[0])
	}
	head := sqlmock.NewRows([]string{"checkpoint_id"})
	all := sqlmock.NewRows([]string{"checkpoint_id"})
	for i, id := range ids {
		if i == 0 {
			head.AddRow(id)
		}
		all.AddRow(id)
	}
	mock.ExpectExec(s.Savepoint).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(s.LockNewest).WithArgs(thread).WillReturnRows(head)
	mock.ExpectQuery(s.Newest).WithArgs(thread).WillReturnRows(newest())
	mock.ExpectQuery(s.LockRows).WithArgs(thread).WillReturnRows(all)
	mock.ExpectQuery(s.Newest).WithArgs(thread).WillReturnRows(newest())
	mock.ExpectExec(s.ReleaseSavepoint).WillReturnResult(sqlmock.NewResult(0, 0))
}

// ExpectThreads registers a Threads call that returns infos. after and limit are what the Checkpointer
// sends: ThreadsOptions.After, and ThreadsOptions.Limit (100 for 0, 10,000 for a negative limit).
func ExpectThreads(mock sqlmock.Sqlmock, d pgcheckpoint.Dialect, after string, limit int, infos []pgcheckpoint.ThreadInfo, opts ...Option) {
	s := statements(d, newConfig(opts))
	rows := sqlmock.NewRows([]string{"thread_id", "count", "max_id", "max_created_at", "sum_size"})
	for _, ti := range infos {
		rows.AddRow(ti.ThreadID, int64(ti.Checkpoints), ti.NewestID, ti.NewestAt, ti.TotalBytes)
	}
	mock.ExpectQuery(s.Threads).WithArgs(after, int64(limit)).WillReturnRows(rows)
}
