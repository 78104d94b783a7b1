package sqlmocktest_test

// Statement sequences of the CockroachDB dialect, pinned with go-sqlmock (QueryMatcherEqual: exact text
// after collapsing whitespace; the mock is ordered, so BEGIN, statements, COMMIT and ROLLBACK must come
// in exactly this order, and any statement not listed fails the call that sends it). The SQL texts are
// the golden files under testdata/sql/cockroach.
//
// What these tests are, and what they are not: they replay OUR READING of CockroachDB's documentation
// (docs/cockroachdb.md): that every retryable error carries SQLSTATE 40001, that it can come from any
// statement of an explicit transaction and from COMMIT, that after it the whole transaction may run
// again, that 40003 means the commit may or may not have happened, and that an INSERT and a DELETE of
// one table must be separate statements. No CockroachDB server answers here. What only a real cluster can
// confirm is listed in docs/cockroachdb.md and checked by integration.TestRealCockroach when
// PGCHECKPOINT_COCKROACH_DSN is set.
//
// Every argument is written out literally but the checkpoint id: it is generated from the clock and
// random bits inside Put. Instead of sqlmock.AnyArg it is matched by crdbID, which is stricter: it
// accepts only a canonical lower-case UUIDv7, optionally above a given id, and records it, so that later
// statements can require the SAME id (sameArg) - the property the 40003 resolution depends on.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ziroagent/pgcheckpoint"
)

const (
	crdbThread = "thread-1"
	crdbSnap   = `{"version": 3, "step": "plan"}`
	crdbHead   = "01900000-0000-7000-8000-0000000000aa"
)

// crdbSQL is the golden text of a CockroachDB statement for the default table.
func crdbSQL(t testing.TB, name string) string { t.Helper(); return goldenSQL(t, "cockroach/"+name) }

// crdbState is a driver error carrying a SQLSTATE, as pgx's *pgconn.PgError does.
func crdbState(code string) error {
	return &pgconn.PgError{Code: code, Message: "restart transaction: injected by the test"}
}

// crdbID matches the generated checkpoint id (see the file comment) and records it in *got.
type crdbID struct {
	above *string // when set, the id must sort above *above (read when the statement arrives)
	got   *string
}

func (a crdbID) Match(v driver.Value) bool {
	s, ok := v.(string)
	if !ok || len(s) != 36 || s[14] != '7' || s != strings.ToLower(s) || (a.above != nil && s <= *a.above) {
		return false
	}
	if a.got != nil {
		*a.got = s
	}
	return true
}

func newCockroachMock(t *testing.T, opts pgcheckpoint.Options) (*pgcheckpoint.Checkpointer, sqlmock.Sqlmock, *beginLog) {
	t.Helper()
	opts.Dialect = pgcheckpoint.CockroachDB
	return newLoggedMock(t, opts)
}

// expectInsert expects the insert of crdbSnap into crdbThread; id matches the generated id.
func expectInsert(t *testing.T, mock sqlmock.Sqlmock, id driver.Value, fence any) *sqlmock.ExpectedQuery {
	t.Helper()
	return mock.ExpectQuery(crdbSQL(t, "insert")).
		WithArgs(crdbThread, id, []byte(crdbSnap), int64(3), int64(len(crdbSnap)), fence)
}

// expectFirst expects the first-row insert of crdbSnap into crdbThread with the id recorded in *id.
func expectFirst(t *testing.T, mock sqlmock.Sqlmock, id *string) *sqlmock.ExpectedQuery {
	t.Helper()
	return mock.ExpectQuery(crdbSQL(t, "first")).
		WithArgs(crdbThread, sameArg{id}, []byte(crdbSnap), int64(3), int64(len(crdbSnap)))
}

// inserted is the insert's answer when it stored row number seq on top of crdbHead (the insert reports
// no trim: the trim is a statement of its own).
func inserted(seq int64) *sqlmock.Rows { return stored(seq, crdbHead, 0) }

func mustPutOK(t *testing.T, cp *pgcheckpoint.Checkpointer, want *string) {
	t.Helper()
	got, err := cp.Put(context.Background(), crdbThread, []byte(crdbSnap))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got != *want {
		t.Fatalf("Put returned %q, but the statement that stored it sent %q", got, *want)
	}
}

// A put with retention: insert and trim in one transaction at the server's default level; the trim
// bound is new seq - cap.
func TestSqlmockCockroachPutWithRetention(t *testing.T) {
	t.Parallel()
	cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 5})
	var id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnRows(inserted(12))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(7)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)

	// Below the cap there is nothing to trim: the transaction holds the insert alone.
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{above: &id, got: &id}, nil).WillReturnRows(inserted(5))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
	if l := log.got(); !slices.Equal(l, []sql.IsolationLevel{sql.LevelDefault, sql.LevelDefault}) {
		t.Errorf("transactions began at %v, want the server's default (SERIALIZABLE) twice", l)
	}
}

// 40001 on the insert, on the trim and on COMMIT: each time the whole transaction runs again (after a
// ROLLBACK when the transaction is still open) and the retry succeeds. A retry takes a fresh id, above
// the first: nothing of the failed attempt was stored.
func TestSqlmockCockroachPut40001RetriesWholeTransaction(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"insert", "trim", "commit"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			var n int
			cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 100, Observer: attempts(&n)})
			var first, id string
			mock.ExpectBegin()
			switch where {
			case "insert":
				expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnError(crdbState("40001"))
				mock.ExpectRollback()
			case "trim":
				expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(1)).WillReturnError(crdbState("40001"))
				mock.ExpectRollback()
			case "commit":
				expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(1)).WillReturnResult(sqlmock.NewResult(0, 1))
				mock.ExpectCommit().WillReturnError(crdbState("40001"))
			}
			mock.ExpectBegin()
			expectInsert(t, mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(inserted(101))
			mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(1)).WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectCommit()
			mustPutOK(t, cp, &id)
			if n != 2 {
				t.Fatalf("Event.Attempts = %d, want 2", n)
			}
		})
	}
}

// Retries are bounded by MaxAttempts; the error says so and keeps the driver's error reachable.
func TestSqlmockCockroachPutRetriesExhausted(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{MaxAttempts: 3})
	for range 3 {
		mock.ExpectBegin()
		expectInsert(t, mock, crdbID{}, nil).WillReturnError(crdbState("40001"))
		mock.ExpectRollback()
	}
	_, err := cp.Put(context.Background(), crdbThread, []byte(crdbSnap))
	if !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
		t.Fatalf("err = %v, want ErrRetriesExhausted", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" || pgcheckpoint.SQLState(err) != "40001" || !pgcheckpoint.Retryable(err) {
		t.Fatalf("err = %v: the driver's 40001 must stay reachable (errors.As, SQLState, Retryable)", err)
	}
}

// cancellingError is a 40001 that cancels the put's context when the put looks at its SQLSTATE: after
// the failed attempt was rolled back and before the backoff, the one moment between two attempts.
type cancellingError struct {
	*pgconn.PgError
	once   sync.Once
	cancel context.CancelFunc
}

func (e *cancellingError) SQLState() string {
	e.once.Do(e.cancel)
	return e.PgError.SQLState()
}

func (e *cancellingError) Unwrap() error { return e.PgError }

// A context cancelled between attempts stops the loop: no second BEGIN, the context's error returned.
func TestSqlmockCockroachPutContextCancelledBetweenAttempts(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{}, nil).WillReturnError(&cancellingError{PgError: &pgconn.PgError{Code: "40001"}, cancel: cancel})
	mock.ExpectRollback()
	_, err := cp.Put(ctx, crdbThread, []byte(crdbSnap))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if pgcheckpoint.Retryable(err) || errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
		t.Fatalf("err = %v: a cancelled put is neither retryable nor 'retries exhausted'", err)
	}
}

// 40003 on COMMIT, and the commit had happened: the put looks its id up (stored), finds it and returns
// it; nothing is sent a second time.
func TestSqlmockCockroachPut40003Committed(t *testing.T) {
	t.Parallel()
	var n int
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{Observer: attempts(&n)})
	var id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbSQL(t, "stored")).WithArgs(crdbThread, sameArg{&id}).WillReturnRows(storedRows(true))
	mustPutOK(t, cp, &id)
	if n != 1 {
		t.Fatalf("Event.Attempts = %d, want 1", n)
	}
}

// 40003 on COMMIT, and the id is not there: the commit may have been lost, may still land, or may have
// landed and the row been deleted or trimmed since. The put never runs the insert again (that could
// bring a deleted checkpoint back, or store the snapshot twice): ErrOutcomeUnknown, naming the id.
func TestSqlmockCockroachPut40003NotFound(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbSQL(t, "stored")).WithArgs(crdbThread, sameArg{&id}).WillReturnRows(storedRows(false))
	_, err := cp.Put(context.Background(), crdbThread, []byte(crdbSnap))
	if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || pgcheckpoint.SQLState(err) != "40003" || !strings.Contains(err.Error(), id) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown wrapping 40003, naming %s", err, id)
	}
}

// A connection that breaks inside the put's own transaction, before COMMIT was sent, leaves nothing
// that could commit: the transaction runs again (here with a new id) and stores the checkpoint once.
func TestSqlmockCockroachPutConnectionLostBeforeCommit(t *testing.T) {
	t.Parallel()
	var n int
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{Observer: attempts(&n)})
	var first, id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(50)).WillReturnError(crdbState("08006"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
	if n != 2 {
		t.Fatalf("Event.Attempts = %d, want 2", n)
	}
}

// 40003 on the one-statement put (no retention: no transaction of its own) is settled the same way.
func TestSqlmockCockroachPut40003SingleStatement(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var id string
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbSQL(t, "stored")).WithArgs(crdbThread, sameArg{&id}).WillReturnRows(storedRows(true))
	mustPutOK(t, cp, &id)
}

// Without retention a put is the insert alone: one statement, no BEGIN/COMMIT, because CockroachDB
// retries a single statement on the server by itself. Fenced or not.
func TestSqlmockCockroachPutWithoutRetentionIsOneStatement(t *testing.T) {
	t.Parallel()
	cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var id string
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnRows(inserted(400))
	mustPutOK(t, cp, &id)

	expectInsert(t, mock, crdbID{above: &id, got: &id}, crdbHead).WillReturnRows(inserted(401))
	got, err := cp.PutAfter(context.Background(), crdbThread, crdbHead, []byte(crdbSnap))
	if err != nil || got != id {
		t.Fatalf("PutAfter = %q, %v; want %q", got, err, id)
	}
	if l := log.got(); len(l) != 0 {
		t.Errorf("began %v, want no transaction", l)
	}
}

// An empty thread's first row goes in at SERIALIZABLE, without a lock statement (CockroachDB has no
// advisory locks). A first put that loses to another at SERIALIZABLE (40001) is a round lost to other
// writers' progress, not a failure: it runs again with a fresh id even with MaxAttempts 1, so writers of
// other threads cannot exhaust each other's retries.
func TestSqlmockCockroachPutFirstRow(t *testing.T) {
	t.Parallel()
	cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{MaxAttempts: 1})
	var first, id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnRows(emptyThread())
	mock.ExpectCommit()
	mock.ExpectBegin()
	expectFirst(t, mock, &first).WillReturnError(crdbState("40001"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(emptyThread())
	mock.ExpectCommit()
	mock.ExpectBegin()
	expectFirst(t, mock, &id).WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
	want := []sql.IsolationLevel{sql.LevelDefault, sql.LevelSerializable, sql.LevelDefault, sql.LevelSerializable}
	if l := log.got(); !slices.Equal(l, want) {
		t.Errorf("transactions began at %v, want %v", l, want)
	}
}

// Inside the caller's transaction nothing is retried: a 40001 from the insert or the trim is returned
// at once, wrapped (errors.As finds the driver's error), for the caller's own loop. The Checkpointer
// sends no BEGIN, COMMIT or ROLLBACK of its own; it checks once that the transaction is SERIALIZABLE.
func TestSqlmockCockroachPutInCallerTransactionSurfaces40001(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"insert", "trim"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{})
			mock.ExpectBegin()
			mock.ExpectQuery(crdbSQL(t, "isolation")).WillReturnRows(sqlmock.NewRows([]string{"transaction_isolation"}).AddRow("serializable"))
			if where == "insert" {
				expectInsert(t, mock, crdbID{}, nil).WillReturnError(crdbState("40001"))
			} else {
				expectInsert(t, mock, crdbID{}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(1)).WillReturnError(crdbState("40001"))
			}
			mock.ExpectRollback() // the caller's
			tx, err := log.Begin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = cp.WithTx(tx).Put(context.Background(), crdbThread, []byte(crdbSnap))
			var pgErr *pgconn.PgError
			if !pgcheckpoint.Retryable(err) || !errors.As(err, &pgErr) || pgErr.Code != "40001" {
				t.Fatalf("err = %v, want the driver's 40001, wrapped", err)
			}
			var e *pgcheckpoint.Error
			if errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || !errors.As(err, &e) || e.Op != pgcheckpoint.OpPut {
				t.Fatalf("err = %v: want it wrapped by put, not retried", err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A caller's transaction below SERIALIZABLE is refused before anything is written.
func TestSqlmockCockroachPutInCallerTransactionChecksIsolation(t *testing.T) {
	t.Parallel()
	cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{})
	mock.ExpectBegin()
	mock.ExpectQuery(crdbSQL(t, "isolation")).WillReturnRows(sqlmock.NewRows([]string{"transaction_isolation"}).AddRow("read committed"))
	mock.ExpectRollback()
	tx, err := log.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.WithTx(tx).Put(context.Background(), crdbThread, []byte(crdbSnap)); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
		t.Fatalf("put at READ COMMITTED on CockroachDB: %v, want ErrInvalidOptions", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}

// The seq unique index (23505) on CockroachDB: another writer took the row number. Unfenced: the whole
// transaction runs again with a fresh id. Fenced: ErrConflict at once.
func TestSqlmockCockroachPutUniqueViolation(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{})
	var first, id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &first}, nil).WillReturnError(crdbState("23505"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(inserted(9))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)

	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{}, crdbHead).WillReturnError(crdbState("23505"))
	mock.ExpectRollback()
	_, err := cp.PutAfter(context.Background(), crdbThread, crdbHead, []byte(crdbSnap))
	if !errors.Is(err, pgcheckpoint.ErrConflict) || pgcheckpoint.SQLState(err) != "23505" {
		t.Fatalf("fenced put losing the row number: %v, want ErrConflict wrapping 23505", err)
	}
}

// Rows without a number (the TypeScript package): the attempt inserts nothing; the thread is renumbered
// in a transaction that holds every row lock first; then the put runs again with the same id.
func TestSqlmockCockroachPutRenumbers(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 3})
	var id string
	mock.ExpectBegin()
	expectInsert(t, mock, crdbID{got: &id}, nil).WillReturnRows(report(nil, crdbHead, nil, true, nil, true, false, int64(0)))
	mock.ExpectCommit()
	mock.ExpectBegin()
	expectLockThread(t, mock, crdbSQL, crdbThread, crdbHead)
	mock.ExpectExec(crdbSQL(t, "renumber")).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	mock.ExpectBegin()
	expectInsert(t, mock, sameArg{&id}, nil).WillReturnRows(inserted(9))
	mock.ExpectExec(crdbSQL(t, "trim")).WithArgs(crdbThread, int64(6)).WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
}

// Deleting one checkpoint locks the thread's rows and renumbers it in the same transaction; a 40001
// runs all of it again.
func TestSqlmockCockroachDeleteOne(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{})
	for _, commit := range []error{crdbState("40001"), nil} {
		mock.ExpectBegin()
		expectLockThread(t, mock, crdbSQL, crdbThread, crdbHead)
		mock.ExpectExec(crdbSQL(t, "deleteOne")).WithArgs(crdbThread, crdbHead).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec(crdbSQL(t, "renumber")).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 3))
		mock.ExpectCommit().WillReturnError(commit)
	}
	if err := cp.Delete(context.Background(), crdbThread, crdbHead); err != nil {
		t.Fatal(err)
	}
	// Nothing deleted: nothing to renumber.
	mock.ExpectBegin()
	expectLockThread(t, mock, crdbSQL, crdbThread)
	mock.ExpectExec(crdbSQL(t, "deleteOne")).WithArgs(crdbThread, crdbHead).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), crdbThread, crdbHead); err != nil {
		t.Fatal(err)
	}
}

// EnsureSchema on CockroachDB reads the catalog first, then: no transaction, no advisory lock, no
// CREATE SCHEMA for public, no COLLATE, no compression block; each IF NOT EXISTS statement on its own,
// run again when a concurrent run of the same DDL makes it fail with 42P07, 42710 or 40001.
func TestSqlmockCockroachEnsureSchema(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{})
	ddl := goldenDDL(t, "cockroach")
	catalog := func(have ...bool) {
		mock.ExpectQuery(crdbSQL(t, "catalog")).
			WithArgs("public", "ziro_checkpoints", "ziro_checkpoints_thread_seq_key", "ziro_checkpoints_unnumbered", "ziro_checkpoints_policy").
			WillReturnRows(catalogRow(have...))
	}
	policy := func(recorded bool) {
		mock.ExpectQuery(crdbSQL(t, "policyTable")).WithArgs("public", "ziro_checkpoints_policy").
			WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
		rows := sqlmock.NewRows([]string{"max_checkpoints_per_thread", "max_bytes_per_thread"})
		if recorded {
			rows.AddRow(int64(100), int64(0))
		}
		mock.ExpectQuery(crdbSQL(t, "readPolicy")).WillReturnRows(rows)
		if !recorded {
			mock.ExpectExec(crdbSQL(t, "recordPolicy")).WithArgs(int64(100), int64(0)).WillReturnResult(sqlmock.NewResult(0, 1))
		}
	}
	catalog(true, false, false, false, false, false, false, false)
	for _, s := range ddl {
		mock.ExpectExec(s).WillReturnResult(sqlmock.NewResult(0, 0))
	}
	policy(false)
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatal(err)
	}

	catalog(true, false, false, false, false, false, false, false)
	for i, code := range []string{"42P07", "40001", "42710", "23505"} {
		mock.ExpectExec(ddl[i]).WillReturnError(crdbState(code))
		mock.ExpectExec(ddl[i]).WillReturnResult(sqlmock.NewResult(0, 0))
	}
	for _, s := range ddl[4:] {
		mock.ExpectExec(s).WillReturnResult(sqlmock.NewResult(0, 0))
	}
	policy(true)
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatalf("EnsureSchema racing a concurrent run: %v", err)
	}

	catalog(true, true, true, true, true, true, true, true)
	policy(true)
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatalf("EnsureSchema with nothing missing: %v", err)
	}
}

// A schema other than public is created first (CREATE SCHEMA IF NOT EXISTS needs admin on CockroachDB,
// which is why public is skipped); a clash that no retry cures ends after MaxAttempts; a missing
// privilege is ErrPermission.
func TestSqlmockCockroachEnsureSchemaOwnSchema(t *testing.T) {
	t.Parallel()
	cp, mock, _ := newCockroachMock(t, pgcheckpoint.Options{Schema: "agents", Table: "Checkpoints", MaxAttempts: 2})
	const dir = "cockroach/agents.Checkpoints"
	ddl := goldenDDL(t, dir)
	catalog := func() {
		mock.ExpectQuery(goldenSQL(t, dir+"/catalog")).
			WithArgs("agents", "Checkpoints", "Checkpoints_thread_seq_key", "Checkpoints_unnumbered", "Checkpoints_policy").
			WillReturnRows(catalogRow(false, false, false, false, false, false, false, false))
	}
	if !strings.HasPrefix(ddl[0], "CREATE SCHEMA") {
		t.Fatalf("the first DDL statement is not CREATE SCHEMA: %s", ddl[0])
	}
	catalog()
	mock.ExpectExec(ddl[0]).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(ddl[1]).WillReturnError(crdbState("42P07"))
	mock.ExpectExec(ddl[1]).WillReturnError(crdbState("42P07"))
	err := cp.EnsureSchema(context.Background())
	if !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || pgcheckpoint.SQLState(err) != "42P07" {
		t.Fatalf("err = %v, want ErrRetriesExhausted wrapping 42P07", err)
	}
	catalog()
	mock.ExpectExec(ddl[0]).WillReturnError(crdbState("42501"))
	if err := cp.EnsureSchema(context.Background()); !errors.Is(err, pgcheckpoint.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
}
