package pgcheckpoint_test

// Statement shapes of the PostgreSQL dialect, pinned with go-sqlmock (QueryMatcherEqual compares the text
// after collapsing whitespace). The SQL is written out here literally: an expectation built from the
// dialect's own strings would compare the code with itself. The same statements run on a real server in
// integration/.

import (
	"context"
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ziroagent/pgcheckpoint"
)

const (
	// pgHead is the head-and-insert part shared by the PostgreSQL put and the CockroachDB insert.
	pgHead = `WITH head AS (
    SELECT checkpoint_id FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1
    ORDER BY checkpoint_id DESC
    LIMIT 1
), locked AS (
    SELECT checkpoint_id, seq FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1 AND checkpoint_id = (SELECT checkpoint_id FROM head)
    FOR SHARE
), ins AS (
    INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
    SELECT $1, $2, $3::text::jsonb, $4, $5, seq + 1 FROM locked
    WHERE checkpoint_id < $2 AND seq IS NOT NULL
      AND ($6::text IS NULL OR $6::text = checkpoint_id)
    RETURNING seq
)`

	pgPut = pgHead + `, del AS (
    DELETE FROM "public"."ziro_checkpoints"
    WHERE thread_id = $1
      AND checkpoint_id >= (
        SELECT checkpoint_id FROM "public"."ziro_checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
      AND checkpoint_id <= (
        SELECT checkpoint_id FROM "public"."ziro_checkpoints"
        WHERE thread_id = $1 AND seq = (SELECT seq FROM ins) - $7::bigint)
    RETURNING 1
)
SELECT (SELECT seq FROM ins), (SELECT checkpoint_id FROM head), (SELECT seq IS NOT NULL FROM locked), (SELECT count(*) FROM del)`

	pgRenumber = `UPDATE "public"."ziro_checkpoints" AS t SET seq = r.base + r.n
FROM (SELECT checkpoint_id,
             row_number() OVER (ORDER BY checkpoint_id) AS n,
             COALESCE(max(seq) OVER (), 0) AS base
      FROM "public"."ziro_checkpoints" WHERE thread_id = $1) AS r
WHERE t.thread_id = $1 AND t.checkpoint_id = r.checkpoint_id`

	pgLockThread = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`
	pgFirst      = `INSERT INTO "public"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
SELECT $1, $2, $3::text::jsonb, $4, $5, 1
WHERE NOT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1)
RETURNING seq`

	pgExists = `SELECT EXISTS (SELECT 1 FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2)`

	pgGetLatest = `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`
	pgGetByID = `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND checkpoint_id = $2`
	pgList = `SELECT checkpoint_id, created_at, version, size_bytes FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2`
	pgListBefore = `SELECT checkpoint_id, created_at, version, size_bytes FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND checkpoint_id < $2 ORDER BY checkpoint_id DESC LIMIT $3`
	pgDeleteOne = `DELETE FROM "public"."ziro_checkpoints" WHERE thread_id = $1 AND checkpoint_id = $2`
	pgDeleteAll = `DELETE FROM "public"."ziro_checkpoints" WHERE thread_id = $1`
	pgThreads   = `SELECT thread_id, count(*), max(checkpoint_id), max(created_at), sum(size_bytes) FROM "public"."ziro_checkpoints"
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2`
	pgPruneThreads = `SELECT thread_id FROM "public"."ziro_checkpoints"
WHERE thread_id > $1 GROUP BY thread_id ORDER BY thread_id LIMIT $2`
	pgPruneRun = `DELETE FROM "public"."ziro_checkpoints" AS t
WHERE t.thread_id >= $1 AND t.thread_id <= $2 AND t.created_at < $3
  AND ($4 OR t.checkpoint_id < (SELECT max(checkpoint_id) FROM "public"."ziro_checkpoints" WHERE thread_id = t.thread_id))
RETURNING t.thread_id`
)

const (
	headA = "01900000-0000-7000-8000-000000000001"
	snap1 = `{"version": 2, "messages": []}`
)

var putColumns = []string{"seq", "head_id", "head_seq_known", "trimmed"}

func newMock(t *testing.T, opts pgcheckpoint.Options) (*pgcheckpoint.Checkpointer, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("unmet expectations: %v", err)
		}
		db.Close()
	})
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cp, mock
}

// uuidArg matches a canonical UUIDv7 argument and remembers it; after, when set, must sort below it.
type uuidArg struct {
	after string
	got   *string
}

func (a uuidArg) Match(v driver.Value) bool {
	s, ok := v.(string)
	if !ok || len(s) != 36 || s[14] != '7' || s != strings.ToLower(s) || s <= a.after {
		return false
	}
	if a.got != nil {
		*a.got = s
	}
	return true
}

func pgErr(code string) error { return &pgconn.PgError{Code: code, Message: "injected"} }

func TestSQLPutOneStatement(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{got: &id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(1), nil, nil, int64(0)))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id {
		t.Fatalf("Put = %q, %v; want the id sent (%q)", got, err, id)
	}
}

// An empty thread's first row goes in under a per-thread lock; a put that finds the thread filled
// meanwhile runs again on the normal path.
func TestSQLPutFirstRow(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{got: &id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, nil, nil, int64(0)))
	mock.ExpectBegin()
	mock.ExpectExec(pgLockThread).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgFirst).WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
	mock.ExpectCommit()
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id {
		t.Fatalf("first put = %q, %v; want %q", got, err, id)
	}

	// Another first put got there first: no row from first, and the put runs again (now appending).
	mock.ExpectQuery(pgPut).
		WithArgs("t2", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), "", int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, nil, nil, int64(0)))
	mock.ExpectBegin()
	mock.ExpectExec(pgLockThread).WithArgs("t2").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgFirst).WithArgs("t2", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}))
	mock.ExpectCommit()
	mock.ExpectQuery(pgPut).
		WithArgs("t2", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), "", int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, headA, true, int64(0)))
	if _, err := cp.PutAfter(context.Background(), "t2", "", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("expect-empty losing the first-row race: %v, want ErrConflict", err)
	}
}

// On CockroachDB (no advisory locks) the first row goes in at SERIALIZABLE, without a lock statement.
func TestSQLPutFirstRowCockroach(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB})
	mock.ExpectBegin()
	mock.ExpectQuery(crdbInsert).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil).
		WillReturnRows(sqlmock.NewRows(putColumns[:3]).AddRow(nil, nil, nil))
	mock.ExpectCommit()
	mock.ExpectBegin()
	mock.ExpectQuery(pgFirst).WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
	mock.ExpectCommit()
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
}

// A connection that broke under a put (here the server terminated the backend) leaves the outcome
// unknown: the put looks for its id, and runs again with the same id only if it is not there.
func TestSQLPutConnectionLost(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{got: &id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("57P01"))
	mock.ExpectQuery(pgExists).WithArgs("t1", sqlmock.AnyArg()).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(false))
	mock.ExpectQuery(pgPut).
		WithArgs("t1", sameArg{&id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(4), headA, true, int64(0)))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id {
		t.Fatalf("Put after a lost connection = %q, %v; want %q", got, err, id)
	}

	// The statement did commit before the connection broke: found, not written twice.
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{got: &id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("08006"))
	mock.ExpectQuery(pgExists).WithArgs("t1", sameArg{&id}).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
	if got, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil || got != id {
		t.Fatalf("Put whose commit landed = %q, %v; want %q", got, err, id)
	}

	// Still down: the check fails too, and the put gives up at once with the original error.
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("57P03"))
	mock.ExpectQuery(pgExists).WithArgs("t1", sqlmock.AnyArg()).WillReturnError(pgErr("57P03"))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); pgcheckpoint.SQLState(err) != "57P03" {
		t.Fatalf("Put while the server is down = %v, want the 57P03 error", err)
	}
}

// sameArg matches the value another matcher remembered.
type sameArg struct{ want *string }

func (a sameArg) Match(v driver.Value) bool { s, ok := v.(string); return ok && s == *a.want }

// A head trimmed between the statement's snapshot and its lock: nothing inserted, run again.
func TestSQLPutHeadTrimmedMeanwhile(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, headA, nil, int64(0)))
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(9), headA, true, int64(1)))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
}

func TestSQLPutFencedAndNoRetention(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), headA, nil).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(8), headA, true, int64(0)))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), "", nil).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, headA, true, int64(0)))
	if _, err := cp.PutAfter(context.Background(), "t1", "", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("expect-empty on a non-empty thread: %v, want ErrConflict", err)
	}
}

func TestSQLPutFenceMismatchWritesNothingMore(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	other := "01900000-0000-7000-8000-000000000002"
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), headA, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, other, true, int64(0)))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

func TestSQLPutRenumbersThreadWrittenByTypeScript(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, headA, false, int64(0)))
	mock.ExpectExec(pgRenumber).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(7), headA, true, int64(0)))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
}

func TestSQLPutClockLagGetsIDAboveHead(t *testing.T) {
	t.Parallel()
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	cp, mock := newMock(t, pgcheckpoint.Options{Clock: func() time.Time { return past }})
	future := "01f00000-0000-7000-8000-000000000000" // far after 2020
	var id string
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(nil, future, true, int64(0)))
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{after: future, got: &id}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(2), future, true, int64(0)))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id || got <= future {
		t.Fatalf("Put = %q, %v; want an id above %s", got, err, future)
	}
}

func TestSQLPutSameSeqTakenRetries(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("23505"))
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnRows(sqlmock.NewRows(putColumns).AddRow(int64(3), headA, true, int64(1)))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	// A fenced put that loses the same race is a conflict, at once.
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), headA, int64(100)).
		WillReturnError(pgErr("23505"))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("fenced put losing the race: %v, want ErrConflict", err)
	}
}

func TestSQLPutBadInputSendsNothing(t *testing.T) {
	t.Parallel()
	cp, _ := newMock(t, pgcheckpoint.Options{MaxSnapshotBytes: 20})
	for _, tc := range []struct {
		thread, snap string
		want         error
	}{
		{"t", `{"a": "\u0000"}`, pgcheckpoint.ErrInvalidSnapshot},
		{"t", `[]`, pgcheckpoint.ErrInvalidSnapshot},
		{"t", `{"aaaaaaaaaaaaaaaaaaaa": 1}`, pgcheckpoint.ErrSnapshotTooLarge},
		{"", `{}`, pgcheckpoint.ErrInvalidThreadID},
	} {
		if _, err := cp.Put(context.Background(), tc.thread, []byte(tc.snap)); !errors.Is(err, tc.want) {
			t.Errorf("Put(%q, %s) = %v, want %v", tc.thread, tc.snap, err, tc.want)
		}
	}
	if _, err := cp.PutAfter(context.Background(), "t", "nonsense", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Errorf("PutAfter with a malformed head = %v, want ErrConflict", err)
	}
}

func TestSQLGet(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cols := []string{"checkpoint_id", "created_at", "version", "size_bytes", "snapshot"}
	mock.ExpectQuery(pgGetLatest).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows(cols).AddRow(headA, at, int64(2), int64(30), []byte(snap1)))
	got, err := cp.Get(context.Background(), "t1", "")
	if err != nil || got.ID != headA || got.Version != 2 || got.SizeBytes != 30 || string(got.Snapshot) != snap1 || !got.CreatedAt.Equal(at) {
		t.Fatalf("Get latest = %+v, %v", got, err)
	}
	mock.ExpectQuery(pgGetByID).WithArgs("t1", headA).WillReturnRows(sqlmock.NewRows(cols))
	if _, err := cp.Get(context.Background(), "t1", headA); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Fatalf("Get of a missing id = %v, want ErrNotFound", err)
	}
	// A malformed id never reaches the server.
	if _, err := cp.Get(context.Background(), "t1", "x"); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Fatalf("Get of a malformed id = %v, want ErrNotFound", err)
	}
	mock.ExpectQuery(pgGetLatest).WithArgs("t1").WillReturnError(pgErr("42P01"))
	if _, err := cp.Get(context.Background(), "t1", ""); !errors.Is(err, pgcheckpoint.ErrSchemaMissing) || pgcheckpoint.SQLState(err) != "42P01" {
		t.Fatalf("missing table: %v, want ErrSchemaMissing wrapping 42P01", err)
	}
}

func TestSQLList(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 7})
	cols := []string{"checkpoint_id", "created_at", "version", "size_bytes"}
	at := time.Now()
	mock.ExpectQuery(pgList).WithArgs("t1", int64(7)).
		WillReturnRows(sqlmock.NewRows(cols).AddRow(headA, at, int64(1), int64(10)))
	if l, err := cp.List(context.Background(), "t1", pgcheckpoint.ListOptions{}); err != nil || len(l) != 1 || l[0].ID != headA {
		t.Fatalf("List = %+v, %v", l, err)
	}
	mock.ExpectQuery(pgListBefore).WithArgs("t1", headA, int64(10000)).WillReturnRows(sqlmock.NewRows(cols))
	if l, err := cp.List(context.Background(), "t1", pgcheckpoint.ListOptions{Limit: -1, Before: headA}); err != nil || len(l) != 0 {
		t.Fatalf("List before = %+v, %v", l, err)
	}
}

func TestSQLDelete(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	mock.ExpectExec(pgDeleteAll).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 4))
	if err := cp.Delete(context.Background(), "t1", ""); err != nil {
		t.Fatal(err)
	}
	mock.ExpectBegin()
	mock.ExpectExec(pgDeleteOne).WithArgs("t1", headA).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(pgRenumber).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), "t1", headA); err != nil {
		t.Fatal(err)
	}
	mock.ExpectBegin()
	mock.ExpectExec(pgDeleteOne).WithArgs("t1", headA).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), "t1", headA); err != nil {
		t.Fatal(err)
	}
	if err := cp.Delete(context.Background(), "t1", "not-an-id"); err != nil {
		t.Fatalf("Delete of a malformed id = %v, want nil and no statement", err)
	}
}

func TestSQLThreadsAndPrune(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	at := time.Now()
	mock.ExpectQuery(pgThreads).WithArgs("a", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id", "count", "max", "max", "sum"}).AddRow("b", int64(3), headA, at, int64(99)))
	th, err := cp.Threads(context.Background(), pgcheckpoint.ThreadsOptions{After: "a", Limit: 2})
	if err != nil || len(th) != 1 || th[0].Checkpoints != 3 || th[0].TotalBytes != 99 {
		t.Fatalf("Threads = %+v, %v", th, err)
	}

	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	mock.ExpectQuery(`SELECT now()`).WillReturnRows(sqlmock.NewRows([]string{"now"}).AddRow(now))
	mock.ExpectQuery(pgPruneThreads).WithArgs("", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("a").AddRow("b"))
	mock.ExpectQuery(pgPruneRun).WithArgs("a", "b", now.Add(-time.Hour), false).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("a").AddRow("a"))
	mock.ExpectQuery(pgPruneThreads).WithArgs("b", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("c"))
	mock.ExpectQuery(pgPruneRun).WithArgs("c", "c", now.Add(-time.Hour), false).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("c"))
	res, err := cp.Prune(context.Background(), pgcheckpoint.PruneOptions{OlderThan: time.Hour, BatchThreads: 2})
	if err != nil || res.Deleted != 3 || res.Threads != 2 {
		t.Fatalf("Prune = %+v, %v; want 3 deleted in 2 threads", res, err)
	}
}

func TestSQLEnsureSchema(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{Schema: "agents", Table: "Checkpoints"})
	mock.ExpectBegin()
	mock.ExpectExec(`SELECT pg_advisory_xact_lock(` + strconv.FormatInt(pgcheckpoint.LockKeyFor(`"agents"."Checkpoints"`), 10) + `)`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`CREATE SCHEMA IF NOT EXISTS "agents"`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`CREATE TABLE IF NOT EXISTS "agents"."Checkpoints" (
    thread_id     TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    snapshot      JSONB NOT NULL,
    version       INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    seq           BIGINT,
    PRIMARY KEY (thread_id, checkpoint_id)
)`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`ALTER TABLE "agents"."Checkpoints" ADD COLUMN IF NOT EXISTS seq BIGINT`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`CREATE UNIQUE INDEX IF NOT EXISTS "Checkpoints_thread_seq_key" ON "agents"."Checkpoints" (thread_id, seq) WHERE seq IS NOT NULL`).
		WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = '"agents"."Checkpoints"'::regclass AND attname = 'snapshot' AND attcompression <> 'l') THEN
        ALTER TABLE "agents"."Checkpoints" ALTER COLUMN snapshot SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := cp.EnsureSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSQLInCallerTransaction(t *testing.T) {
	t.Parallel()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mock.ExpectBegin()
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("40001"))
	mock.ExpectRollback()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = base.WithTx(tx).Put(context.Background(), "t1", []byte(snap1))
	if !pgcheckpoint.Retryable(err) {
		t.Fatalf("inside a caller's transaction a 40001 must surface (no retry): %v", err)
	}
	_ = tx.Rollback()
	// Without a transaction of its own, a unique violation inside the caller's transaction is a conflict.
	mock.ExpectBegin()
	mock.ExpectQuery(pgPut).
		WithArgs("t1", uuidArg{}, []byte(snap1), int64(2), int64(len(snap1)), nil, int64(100)).
		WillReturnError(pgErr("23505"))
	mock.ExpectRollback()
	tx, _ = db.Begin()
	if _, err = base.WithTx(tx).Put(context.Background(), "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("unique violation in a caller's transaction: %v, want ErrConflict", err)
	}
	_ = tx.Rollback()
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}
