package pgcheckpoint_test

// Statement sequences of the CockroachDB dialect, pinned with go-sqlmock (QueryMatcherEqual: exact text
// after collapsing whitespace; the mock is ordered, so BEGIN, statements, COMMIT and ROLLBACK must come
// in exactly this order, and any statement not listed fails the call that sends it).
//
// What these tests are, and what they are not: they replay OUR READING of CockroachDB's documentation
// (docs/cockroachdb.md): that every retryable error carries SQLSTATE 40001, that it can come from any
// statement of an explicit transaction and from COMMIT, that after it the whole transaction may run
// again, that 40003 means the commit may or may not have happened, and that an INSERT and a DELETE of
// one table must be separate statements. No CockroachDB server answers here. What only a real cluster can
// confirm is listed in docs/cockroachdb.md and checked by integration.TestRealCockroach when
// PGCHECKPOINT_COCKROACH_DSN is set.
//
// The SQL text and every argument are written out literally. The one argument that cannot be is the
// checkpoint id: it is generated from the clock and random bits inside Put. Instead of sqlmock.AnyArg it
// is matched by crdbID, which is stricter: it accepts only a canonical lower-case UUIDv7, optionally
// above a given id, and records it, so that later statements can require the SAME id (sameID) - the
// property the 40003 resolution depends on.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ziroagent/pgcheckpoint"
)

const (
	// The insert is the PostgreSQL put without its trim; exists, renumber and delete-one are the
	// PostgreSQL statements unchanged.
	crdbInsert = pgHead + `
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq IS NOT NULL FROM locked)`

	crdbTrim = `DELETE FROM "public"."ziro_checkpoints"
WHERE thread_id = $1
  AND checkpoint_id >= (SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
  AND checkpoint_id <= (
    SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND seq = $2)`

	crdbExists = pgExists

	crdbRenumber = pgRenumber

	crdbDeleteOne = pgDeleteOne

	crdbCreateTable = `CREATE TABLE IF NOT EXISTS "public"."ziro_checkpoints" (
    thread_id     TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    seq           BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)`
	crdbAddSeq   = `ALTER TABLE "public"."ziro_checkpoints" ADD COLUMN IF NOT EXISTS seq BIGINT`
	crdbSeqIndex = `CREATE UNIQUE INDEX IF NOT EXISTS "ziro_checkpoints_thread_seq_key" ON "public"."ziro_checkpoints" (thread_id, seq) WHERE seq IS NOT NULL`
)

const (
	crdbThread = "thread-1"
	crdbSnap   = `{"version": 3, "step": "plan"}`
	crdbHead   = "01900000-0000-7000-8000-0000000000aa"
)

var insertColumns = []string{"seq", "head_id", "head_seq_known"}

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

// sameID matches exactly the id recorded earlier by a crdbID.
type sameID struct{ id *string }

func (a sameID) Match(v driver.Value) bool { s, ok := v.(string); return ok && s == *a.id }

func newCockroachMock(t *testing.T, opts pgcheckpoint.Options) (*pgcheckpoint.Checkpointer, *sql.DB, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("statements expected but never sent: %v", err)
		}
		db.Close()
	})
	opts.Dialect = pgcheckpoint.CockroachDB
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cp, db, mock
}

// expectInsert expects the insert of crdbSnap into crdbThread with no fence; id matches the generated id.
func expectInsert(mock sqlmock.Sqlmock, id driver.Value, fence any) *sqlmock.ExpectedQuery {
	return mock.ExpectQuery(crdbInsert).
		WithArgs(crdbThread, id, []byte(crdbSnap), int64(3), int64(len(crdbSnap)), fence)
}

// inserted is the insert's answer when it stored row number seq on top of crdbHead.
func inserted(seq int64) *sqlmock.Rows {
	return sqlmock.NewRows(insertColumns).AddRow(seq, crdbHead, true)
}

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

// A put with retention: insert and trim in one transaction; the trim bound is new seq - cap.
func TestCockroachPutWithRetention(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 5})
	var id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(inserted(12))
	mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(7)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)

	// Below the cap there is nothing to trim: the transaction holds the insert alone.
	mock.ExpectBegin()
	expectInsert(mock, crdbID{above: &id, got: &id}, nil).WillReturnRows(inserted(5))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
}

// 40001 on the insert, on the trim and on COMMIT: each time the whole transaction runs again (after a
// ROLLBACK when the transaction is still open) and the retry succeeds. A retry takes a fresh id, above
// the first: nothing of the failed attempt was stored.
func TestCockroachPut40001RetriesWholeTransaction(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"insert", "trim", "commit"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			var attempts int
			cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{
				MaxCheckpointsPerThread: 100,
				Observer:                pgcheckpoint.ObserverFunc(func(_ context.Context, e pgcheckpoint.Event) { attempts = e.Attempts }),
			})
			var first, id string
			mock.ExpectBegin()
			switch where {
			case "insert":
				expectInsert(mock, crdbID{got: &first}, nil).WillReturnError(crdbState("40001"))
				mock.ExpectRollback()
			case "trim":
				expectInsert(mock, crdbID{got: &first}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(1)).WillReturnError(crdbState("40001"))
				mock.ExpectRollback()
			case "commit":
				expectInsert(mock, crdbID{got: &first}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(1)).WillReturnResult(sqlmock.NewResult(0, 1))
				mock.ExpectCommit().WillReturnError(crdbState("40001"))
			}
			mock.ExpectBegin()
			expectInsert(mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(inserted(101))
			mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(1)).WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectCommit()
			mustPutOK(t, cp, &id)
			if attempts != 2 {
				t.Fatalf("Event.Attempts = %d, want 2", attempts)
			}
		})
	}
}

// Retries are bounded by MaxAttempts; the error says so and keeps the driver's error reachable.
func TestCockroachPutRetriesExhausted(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{MaxAttempts: 3})
	for range 3 {
		mock.ExpectBegin()
		expectInsert(mock, crdbID{}, nil).WillReturnError(crdbState("40001"))
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
func TestCockroachPutContextCancelledBetweenAttempts(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mock.ExpectBegin()
	expectInsert(mock, crdbID{}, nil).WillReturnError(&cancellingError{PgError: &pgconn.PgError{Code: "40001"}, cancel: cancel})
	mock.ExpectRollback()
	_, err := cp.Put(ctx, crdbThread, []byte(crdbSnap))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if pgcheckpoint.Retryable(err) || errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
		t.Fatalf("err = %v: a cancelled put is neither retryable nor 'retries exhausted'", err)
	}
}

// 40003 on COMMIT, and the row is there: the commit happened; success, nothing sent again.
func TestCockroachPut40003Committed(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbExists).WithArgs(crdbThread, sameID{&id}).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
	mustPutOK(t, cp, &id)
}

// 40003 on COMMIT, and the row is not there: the transaction runs again WITH THE SAME ID, so that a
// commit landing late can never become a second checkpoint.
func TestCockroachPut40003NotCommitted(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbExists).WithArgs(crdbThread, sameID{&id}).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(false))
	mock.ExpectBegin()
	expectInsert(mock, sameID{&id}, nil).WillReturnRows(inserted(150))
	mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(50)).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
}

// answerHeadIsID matches the same id as sameID and, as it matches, makes the statement's answer say
// "nothing inserted: the head is this very id" (the answer needs the id, which is generated inside Put).
type answerHeadIsID struct {
	id   *string
	rows *sqlmock.Rows
}

func (a answerHeadIsID) Match(v driver.Value) bool {
	if !(sameID{a.id}).Match(v) {
		return false
	}
	a.rows.AddRow(nil, *a.id, true)
	return true
}

// 40003, the check does not find the row, and the retry finds our own id at the head: the first commit
// landed after the check. Success, without a second insert and without a new id.
func TestCockroachPut40003LateCommit(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(inserted(7))
	mock.ExpectCommit().WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbExists).WithArgs(crdbThread, sameID{&id}).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(false))
	mock.ExpectBegin()
	late := sqlmock.NewRows(insertColumns)
	expectInsert(mock, answerHeadIsID{&id, late}, nil).WillReturnRows(late)
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
}

// 40003 on the one-statement put (no retention: no transaction of its own) is resolved the same way.
func TestCockroachPut40003SingleStatement(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var id string
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnError(crdbState("40003"))
	mock.ExpectQuery(crdbExists).WithArgs(crdbThread, sameID{&id}).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
	mustPutOK(t, cp, &id)
}

// Without retention a put is the insert alone: one statement, no BEGIN/COMMIT, because CockroachDB
// retries a single statement on the server by itself. Fenced or not.
func TestCockroachPutWithoutRetentionIsOneStatement(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var id string
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(inserted(400))
	mustPutOK(t, cp, &id)

	expectInsert(mock, crdbID{above: &id, got: &id}, crdbHead).WillReturnRows(inserted(401))
	got, err := cp.PutAfter(context.Background(), crdbThread, crdbHead, []byte(crdbSnap))
	if err != nil || got != id {
		t.Fatalf("PutAfter = %q, %v; want %q", got, err, id)
	}
}

// Inside the caller's transaction nothing is retried: a 40001 from the insert or the trim is returned
// at once, wrapped (errors.As finds the driver's error), for the caller's own loop. The Checkpointer
// sends no BEGIN, COMMIT or ROLLBACK of its own.
func TestCockroachPutInCallerTransactionSurfaces40001(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"insert", "trim"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			cp, db, mock := newCockroachMock(t, pgcheckpoint.Options{})
			mock.ExpectBegin()
			if where == "insert" {
				expectInsert(mock, crdbID{}, nil).WillReturnError(crdbState("40001"))
			} else {
				expectInsert(mock, crdbID{}, nil).WillReturnRows(inserted(101))
				mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(1)).WillReturnError(crdbState("40001"))
			}
			mock.ExpectRollback() // the caller's
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = cp.WithTx(tx).Put(context.Background(), crdbThread, []byte(crdbSnap))
			var pgErr *pgconn.PgError
			if !pgcheckpoint.Retryable(err) || !errors.As(err, &pgErr) || pgErr.Code != "40001" {
				t.Fatalf("err = %v, want the driver's 40001, wrapped", err)
			}
			if errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || !strings.HasPrefix(err.Error(), "pgcheckpoint: put: ") {
				t.Fatalf("err = %v: want it wrapped by put, not retried", err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The seq unique index (23505) on CockroachDB: another writer took the row number. Unfenced: the whole
// transaction runs again with a fresh id. Fenced: ErrConflict at once.
func TestCockroachPutUniqueViolation(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	var first, id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &first}, nil).WillReturnError(crdbState("23505"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	expectInsert(mock, crdbID{above: &first, got: &id}, nil).WillReturnRows(inserted(9))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)

	mock.ExpectBegin()
	expectInsert(mock, crdbID{}, crdbHead).WillReturnError(crdbState("23505"))
	mock.ExpectRollback()
	_, err := cp.PutAfter(context.Background(), crdbThread, crdbHead, []byte(crdbSnap))
	if !errors.Is(err, pgcheckpoint.ErrConflict) || pgcheckpoint.SQLState(err) != "23505" {
		t.Fatalf("fenced put losing the row number: %v, want ErrConflict wrapping 23505", err)
	}
}

// A head written without a row number (the TypeScript package): the attempt inserts nothing, the
// thread is renumbered by one UPDATE (a single statement, retried by the server), then the put again.
func TestCockroachPutRenumbers(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 3})
	var id string
	mock.ExpectBegin()
	expectInsert(mock, crdbID{got: &id}, nil).WillReturnRows(sqlmock.NewRows(insertColumns).AddRow(nil, crdbHead, false))
	mock.ExpectCommit()
	mock.ExpectExec(crdbRenumber).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectBegin()
	expectInsert(mock, sameID{&id}, nil).WillReturnRows(inserted(9))
	mock.ExpectExec(crdbTrim).WithArgs(crdbThread, int64(6)).WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
}

// Deleting one checkpoint renumbers the thread in the same transaction; a 40001 runs both again.
func TestCockroachDeleteOne(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	mock.ExpectBegin()
	mock.ExpectExec(crdbDeleteOne).WithArgs(crdbThread, crdbHead).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(crdbRenumber).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectCommit().WillReturnError(crdbState("40001"))
	mock.ExpectBegin()
	mock.ExpectExec(crdbDeleteOne).WithArgs(crdbThread, crdbHead).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(crdbRenumber).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), crdbThread, crdbHead); err != nil {
		t.Fatal(err)
	}
	// Nothing deleted: nothing to renumber.
	mock.ExpectBegin()
	mock.ExpectExec(crdbDeleteOne).WithArgs(crdbThread, crdbHead).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), crdbThread, crdbHead); err != nil {
		t.Fatal(err)
	}
}

// EnsureSchema on CockroachDB: no transaction, no advisory lock, no CREATE SCHEMA for public, no
// COLLATE, no compression block; each IF NOT EXISTS statement on its own, run again when a concurrent
// run of the same DDL makes it fail with 42P07, 42710 or 40001.
func TestCockroachEnsureSchema(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{})
	mock.ExpectExec(crdbCreateTable).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(crdbAddSeq).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(crdbSeqIndex).WillReturnResult(sqlmock.NewResult(0, 0))
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatal(err)
	}

	mock.ExpectExec(crdbCreateTable).WillReturnError(crdbState("42P07"))
	mock.ExpectExec(crdbCreateTable).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(crdbAddSeq).WillReturnError(crdbState("40001"))
	mock.ExpectExec(crdbAddSeq).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(crdbSeqIndex).WillReturnError(crdbState("42710"))
	mock.ExpectExec(crdbSeqIndex).WillReturnResult(sqlmock.NewResult(0, 0))
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatalf("EnsureSchema racing a concurrent run: %v", err)
	}
}

// A schema other than public is created first (CREATE SCHEMA IF NOT EXISTS needs admin on CockroachDB,
// which is why public is skipped); a clash that no retry cures ends after MaxAttempts.
func TestCockroachEnsureSchemaOwnSchema(t *testing.T) {
	t.Parallel()
	cp, _, mock := newCockroachMock(t, pgcheckpoint.Options{Schema: "agents", MaxAttempts: 2})
	mock.ExpectExec(`CREATE SCHEMA IF NOT EXISTS "agents"`).WillReturnResult(sqlmock.NewResult(0, 0))
	table := strings.ReplaceAll(crdbCreateTable, `"public"`, `"agents"`)
	mock.ExpectExec(table).WillReturnError(crdbState("42P07"))
	mock.ExpectExec(table).WillReturnError(crdbState("42P07"))
	err := cp.EnsureSchema(context.Background())
	if !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || pgcheckpoint.SQLState(err) != "42P07" {
		t.Fatalf("err = %v, want ErrRetriesExhausted wrapping 42P07", err)
	}
	mock.ExpectExec(`CREATE SCHEMA IF NOT EXISTS "agents"`).WillReturnError(crdbState("42501"))
	if err := cp.EnsureSchema(context.Background()); !errors.Is(err, pgcheckpoint.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
}
