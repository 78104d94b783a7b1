package sqlmocktest_test

// Statement sequences of the PostgreSQL dialect, pinned with go-sqlmock (QueryMatcherEqual compares the
// text after collapsing whitespace; the mock is ordered, so BEGIN, statements, COMMIT and ROLLBACK must
// come in exactly this order). Every expected SQL text is read from the golden files under the
// repository's testdata/sql (see statements_golden_test.go in package pgcheckpoint), never from the code's
// own strings: a change to a statement shows up as a golden-file diff, and these tests pin the order, the
// arguments and what the put loop does with each answer. The same statements run on a real server in integration/.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// goldenDir holds the golden files of package pgcheckpoint (its statements_golden_test.go writes them).
var goldenDir = filepath.Join("..", "..", "testdata", "sql")

// goldenSQL returns the golden text of one statement: testdata/sql/<path>.sql, path being
// "<dialect>/<name>" or "<dialect>/<schema>.<table>/<name>".
func goldenSQL(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, filepath.FromSlash(path)+".sql"))
	if err != nil {
		t.Fatalf("%v (go test -run TestGoldenSQL -update writes the golden files)", err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// pgSQL is the golden text of a PostgreSQL statement for the default table.
func pgSQL(t testing.TB, name string) string { t.Helper(); return goldenSQL(t, "postgres/"+name) }

// goldenDDL returns the DDL golden files of dir ("<dialect>" or "<dialect>/<schema>.<table>") in the
// order EnsureSchema runs them (ddl_<n>_<role>.sql).
func goldenDDL(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, filepath.FromSlash(dir), "ddl_*.sql"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no DDL golden files in %s: %v", dir, err)
	}
	order := func(p string) int {
		n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(p), "ddl_"), "_", 2)[0])
		return n
	}
	slices.SortFunc(paths, func(a, b string) int { return order(a) - order(b) })
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = goldenSQL(t, filepath.ToSlash(strings.TrimSuffix(strings.TrimPrefix(p, goldenDir+string(filepath.Separator)), ".sql")))
	}
	return out
}

const (
	headA = "01900000-0000-7000-8000-000000000001"
	headB = "01900000-0000-7000-8000-000000000002"
	snap1 = `{"version": 2, "messages": []}`
	// farFuture sorts above every id a put generates (its milliseconds are thousands of years ahead).
	farFuture = "7fff0000-0000-7000-8000-000000000000"
)

// reportColumns are the columns of the put report (new seq, head, head seq, locked, locked seq,
// unnumbered, mine, trimmed).
var reportColumns = []string{"new_seq", "head_id", "head_seq", "locked", "locked_seq", "unnumbered", "mine", "trimmed"}

// report is one put report row.
func report(newSeq, headID, headSeq, locked, lockedSeq, unnumbered, mine, trimmed driver.Value) *sqlmock.Rows {
	return sqlmock.NewRows(reportColumns).AddRow(newSeq, headID, headSeq, locked, lockedSeq, unnumbered, mine, trimmed)
}

// stored is the report of an attempt that appended row seq after head (numbered seq-1).
func stored(seq int64, head string, trimmed int64) *sqlmock.Rows {
	return report(seq, head, seq-1, true, seq-1, false, false, trimmed)
}

// notInserted is the report of an attempt that found head at number seq, locked it unchanged and
// inserted nothing.
func notInserted(head string, seq int64) *sqlmock.Rows {
	return report(nil, head, seq, true, seq, false, false, int64(0))
}

// emptyThread is the report of an attempt that found no row.
func emptyThread() *sqlmock.Rows { return report(nil, nil, nil, false, nil, false, false, int64(0)) }

// beginLog is a *sql.DB that records the isolation level of every transaction the Checkpointer begins
// (sqlmock itself ignores it).
type beginLog struct {
	*sql.DB
	mu     sync.Mutex
	levels []sql.IsolationLevel
}

func (b *beginLog) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	b.mu.Lock()
	b.levels = append(b.levels, opts.Isolation)
	b.mu.Unlock()
	return b.DB.BeginTx(ctx, opts)
}

func (b *beginLog) got() []sql.IsolationLevel {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.levels)
}

// tableCap is the cap the table records in the statement-shape tests: the one opts name (0: the
// default EnsureSchema records).
func tableCap(opts pgcheckpoint.Options) int {
	switch n := opts.MaxCheckpointsPerThread; {
	case n == 0:
		return pgcheckpoint.DefaultMaxCheckpointsPerThread
	case n < 0:
		return 0
	default:
		return n
	}
}

// newLoggedMock returns a Checkpointer over a sqlmock database (through a beginLog), checking at the end
// that every expectation was met.
func newLoggedMock(t *testing.T, opts pgcheckpoint.Options) (*pgcheckpoint.Checkpointer, sqlmock.Sqlmock, *beginLog) {
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
	log := &beginLog{DB: db}
	cp, err := pgcheckpoint.New(log, opts)
	if err != nil {
		t.Fatal(err)
	}
	testhooks.AssumeRetention(cp, tableCap(opts))
	return cp, mock, log
}

func newMock(t *testing.T, opts pgcheckpoint.Options) (*pgcheckpoint.Checkpointer, sqlmock.Sqlmock) {
	t.Helper()
	cp, mock, _ := newLoggedMock(t, opts)
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

// sameArg matches the value another matcher remembered.
type sameArg struct{ want *string }

func (a sameArg) Match(v driver.Value) bool { s, ok := v.(string); return ok && s == *a.want }

func pgErr(code string) error { return &pgconn.PgError{Code: code, Message: "injected"} }

// putArgs are the arguments of the PostgreSQL put of snap1 to thread with id matcher id.
func putArgs(thread string, id driver.Value, fence, cap any) []driver.Value {
	return []driver.Value{thread, id, []byte(snap1), int64(2), int64(len(snap1)), fence, cap}
}

// attempts returns an Observer that records the attempts of the last operation.
func attempts(n *int) pgcheckpoint.Observer {
	return pgcheckpoint.ObserverFunc(func(_ context.Context, e pgcheckpoint.Event) { *n = e.Attempts })
}

func TestSqlmockPutOneStatement(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).
		WillReturnRows(stored(2, headA, 0))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id {
		t.Fatalf("Put = %q, %v; want the id sent (%q)", got, err, id)
	}
	if l := log.got(); len(l) != 0 {
		t.Errorf("a put on a thread with a head is one statement without a transaction; began %v", l)
	}
}

// An empty thread's first row goes in under the thread's advisory lock, in a READ COMMITTED transaction
// of its own; a put that finds the thread filled meanwhile runs again on the normal path.
func TestSqlmockPutFirstRow(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{})
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).
		WillReturnRows(emptyThread())
	mock.ExpectBegin()
	mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "first")).WithArgs("t1", sameArg{&id}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
	mock.ExpectCommit()
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id {
		t.Fatalf("first put = %q, %v; want %q", got, err, id)
	}
	if l := log.got(); !slices.Equal(l, []sql.IsolationLevel{sql.LevelReadCommitted}) {
		t.Errorf("first-row transaction began at %v, want READ COMMITTED whatever the database's default", l)
	}

	// Another first put got there first: no row from first, and the put runs again (same id), now
	// finding a head, which the fence "thread must be empty" rejects.
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t2", uuidArg{got: &id}, "", int64(100))...).
		WillReturnRows(emptyThread())
	mock.ExpectBegin()
	mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("t2").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "first")).WithArgs("t2", sameArg{&id}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}))
	mock.ExpectCommit()
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t2", sameArg{&id}, "", int64(100))...).
		WillReturnRows(notInserted(headA, 1))
	if _, err := cp.PutIfEmpty(context.Background(), "t2", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("expect-empty losing the first-row race: %v, want ErrConflict", err)
	}
}

// storedRows is the answer of the stored look-up: one row when the id is there, none when it is not.
func storedRows(found bool) *sqlmock.Rows {
	rows := sqlmock.NewRows([]string{"?column?"})
	if found {
		rows.AddRow(int64(1))
	}
	return rows
}

// A connection that broke under a put (here the server terminated the backend) leaves the outcome
// unknown: the put looks its id up once (stored) and never sends the insert again. Found: the attempt
// committed and the put returns the id. Not found: ErrOutcomeUnknown naming the id, because the attempt
// may have committed and been deleted since, or may still commit (issue 10: a re-run of the insert
// brought deleted checkpoints back).
func TestSqlmockPutConnectionLost(t *testing.T) {
	t.Parallel()
	var n int
	cp, mock := newMock(t, pgcheckpoint.Options{Observer: attempts(&n)})
	put, lookup := pgSQL(t, "put"), pgSQL(t, "stored")
	var id string
	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnError(pgErr("08006"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnRows(storedRows(true))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id || n != 1 {
		t.Fatalf("Put whose commit landed before the connection broke = %q, %v after %d attempts; want %q after 1", got, err, n, id)
	}

	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnError(pgErr("57P01"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnRows(storedRows(false))
	_, err = cp.Put(context.Background(), "t1", []byte(snap1))
	if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || pgcheckpoint.SQLState(err) != "57P01" || !strings.Contains(err.Error(), id) {
		t.Fatalf("Put whose id is not found after a lost connection = %v; want ErrOutcomeUnknown wrapping 57P01, naming %s", err, id)
	}
}

// A look-up that fails is repeated after a backoff, within MaxAttempts; when the server stays away the
// put ends with ErrOutcomeUnknown and ErrRetriesExhausted, naming the id.
func TestSqlmockPutOutcomeUnknown(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxAttempts: 2})
	put, lookup := pgSQL(t, "put"), pgSQL(t, "stored")
	var id string
	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnError(pgErr("08006"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnError(pgErr("57P03"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnError(pgErr("57P03"))
	_, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) ||
		pgcheckpoint.SQLState(err) != "57P03" || !strings.Contains(err.Error(), id) {
		t.Fatalf("Put while the server is down = %v; want ErrOutcomeUnknown and ErrRetriesExhausted wrapping 57P03, naming %s", err, id)
	}

	// The look-up fails for good (not a connection error): ErrOutcomeUnknown at once.
	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnError(pgErr("08006"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnError(pgErr("42P01"))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || !strings.Contains(err.Error(), id) {
		t.Fatalf("Put whose look-up failed = %v; want ErrOutcomeUnknown naming %s", err, id)
	}
}

// A deadline that ends while the statement runs leaves the outcome unknown (pgx answers at once and
// cancels on the server asynchronously): ErrOutcomeUnknown with the context's error, no second attempt.
func TestSqlmockPutDeadlineIsUnknownOutcome(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).
		WillDelayFor(5 * time.Second).WillReturnRows(stored(2, headA, 0))
	_, err := cp.Put(ctx, "t1", []byte(snap1))
	if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put past its deadline = %v; want ErrOutcomeUnknown and context.DeadlineExceeded", err)
	}
}

// The head changed between the statement's snapshot and its lock (deleted, trimmed or renumbered):
// nothing was inserted, and the put runs again with the same id at once.
func TestSqlmockPutHeadMovedMeanwhile(t *testing.T) {
	t.Parallel()
	for name, moved := range map[string]*sqlmock.Rows{
		"deleted":    report(nil, headA, int64(4), false, nil, false, false, int64(0)),
		"renumbered": report(nil, headA, int64(4), true, int64(9), false, false, int64(0)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n int
			cp, mock := newMock(t, pgcheckpoint.Options{Observer: attempts(&n)})
			var id string
			mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnRows(moved)
			mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", sameArg{&id}, nil, int64(100))...).WillReturnRows(stored(10, headA, 1))
			if got, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil || got != id || n != 2 {
				t.Fatalf("Put = %q, %v after %d attempts; want %q after 2", got, err, n, id)
			}
		})
	}
}

func TestSqlmockPutFencedAndNoRetention(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, headA, nil)...).WillReturnRows(stored(8, headA, 0))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	// An upper-case head names the same checkpoint: it is sent in canonical form.
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, headA, nil)...).WillReturnRows(stored(9, headA, 0))
	if _, err := cp.PutAfter(context.Background(), "t1", strings.ToUpper(headA), []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, "", nil)...).WillReturnRows(notInserted(headA, 8))
	if _, err := cp.PutIfEmpty(context.Background(), "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("expect-empty on a non-empty thread: %v, want ErrConflict", err)
	}
}

// A fence that does not name the head writes nothing more: no second attempt, no first-row path.
func TestSqlmockPutFenceMismatchWritesNothingMore(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	other := "01900000-0000-7000-8000-000000000002"
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, headA, int64(100))...).WillReturnRows(notInserted(other, 3))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) || !strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v, want ErrConflict naming the head %s", err, other)
	}
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, headA, int64(100))...).WillReturnRows(emptyThread())
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("fenced put on an empty thread: %v, want ErrConflict", err)
	}
}

// Rows without a number (written by the TypeScript package): the put renumbers the thread in a
// transaction that first holds every row's lock (the newest row's first, again while a newer row
// appeared, then all of them), then runs again with the same id.
func TestSqlmockPutRenumbersThreadWrittenByTypeScript(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{})
	headB := "01900000-0000-7000-8000-000000000003"
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).
		WillReturnRows(report(nil, headA, int64(4), true, int64(4), true, false, int64(0)))
	mock.ExpectBegin()
	mock.ExpectExec(pgSQL(t, "savepoint")).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "lockNewest")).WithArgs("t1").WillReturnRows(sqlmock.NewRows([]string{"checkpoint_id"}).AddRow(headA))
	// A put committed headB meanwhile: give the lock back and take the new newest row's.
	mock.ExpectQuery(pgSQL(t, "newest")).WithArgs("t1").WillReturnRows(sqlmock.NewRows([]string{"max"}).AddRow(headB))
	mock.ExpectExec(pgSQL(t, "rollbackToSavepoint")).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "lockNewest")).WithArgs("t1").WillReturnRows(sqlmock.NewRows([]string{"checkpoint_id"}).AddRow(headB))
	mock.ExpectQuery(pgSQL(t, "newest")).WithArgs("t1").WillReturnRows(sqlmock.NewRows([]string{"max"}).AddRow(headB))
	mock.ExpectQuery(pgSQL(t, "lockRows")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows([]string{"checkpoint_id"}).AddRow(headB).AddRow(headA).AddRow("01900000-0000-7000-8000-000000000000"))
	mock.ExpectQuery(pgSQL(t, "newest")).WithArgs("t1").WillReturnRows(sqlmock.NewRows([]string{"max"}).AddRow(headB))
	mock.ExpectExec(pgSQL(t, "releaseSavepoint")).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(pgSQL(t, "renumber")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectCommit()
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", sameArg{&id}, nil, int64(100))...).WillReturnRows(stored(7, headB, 0))
	if got, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil || got != id {
		t.Fatalf("Put = %q, %v; want %q", got, err, id)
	}
	if l := log.got(); !slices.Equal(l, []sql.IsolationLevel{sql.LevelReadCommitted}) {
		t.Errorf("renumbering began %v, want one READ COMMITTED transaction", l)
	}
}

// A head id above the new id (a clock behind the other writers'): the next id follows the head.
func TestSqlmockPutClockLagGetsIDAboveHead(t *testing.T) {
	t.Parallel()
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	cp, mock := newMock(t, pgcheckpoint.Options{Clock: func() time.Time { return past }})
	future := "01f00000-0000-7000-8000-000000000000" // far after 2020
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnRows(notInserted(future, 1))
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{after: future, got: &id}, nil, int64(100))...).
		WillReturnRows(stored(2, future, 0))
	got, err := cp.Put(context.Background(), "t1", []byte(snap1))
	if err != nil || got != id || got <= future {
		t.Fatalf("Put = %q, %v; want an id above %s", got, err, future)
	}
}

// 23505: another writer took the thread's next number first. The put runs again at once with a fresh
// id; a fenced put is ErrConflict at once.
func TestSqlmockPutSameSeqTakenRetries(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	var first string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &first}, nil, int64(100))...).WillReturnError(pgErr("23505"))
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{after: first}, nil, int64(100))...).WillReturnRows(stored(3, headA, 1))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, headA, int64(100))...).WillReturnError(pgErr("23505"))
	if _, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) || pgcheckpoint.SQLState(err) != "23505" {
		t.Fatalf("fenced put losing the race: %v, want ErrConflict wrapping 23505", err)
	}
}

// 40001 or 40P01 on PostgreSQL: nothing was written; the put runs again after a backoff with a fresh id,
// within MaxAttempts.
func TestSqlmockPutSerializationFailureRetries(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxAttempts: 3})
	var first string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &first}, nil, int64(100))...).WillReturnError(pgErr("40P01"))
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{after: first}, nil, int64(100))...).WillReturnRows(stored(3, headA, 0))
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnError(pgErr("40001"))
	}
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || !pgcheckpoint.Retryable(err) {
		t.Fatalf("err = %v, want ErrRetriesExhausted wrapping the 40001", err)
	}
}

func TestSqlmockPutBadInputSendsNothing(t *testing.T) {
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
	if _, err := cp.PutAfter(context.Background(), "t", "nonsense", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Errorf("PutAfter with a malformed head = %v, want ErrInvalidCheckpointID", err)
	}
}

func TestSqlmockGet(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cols := []string{"checkpoint_id", "created_at", "version", "size_bytes", "snapshot"}
	mock.ExpectQuery(pgSQL(t, "getLatest")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows(cols).AddRow(headA, at, int64(2), int64(30), []byte(snap1)))
	got, err := cp.Latest(context.Background(), "t1")
	if err != nil || got.ID != headA || got.Version != 2 || got.SizeBytes != 30 || string(got.Snapshot) != snap1 || !got.CreatedAt.Equal(at) {
		t.Fatalf("Get latest = %+v, %v", got, err)
	}
	// An upper-case id names the same checkpoint.
	mock.ExpectQuery(pgSQL(t, "getByID")).WithArgs("t1", headA).WillReturnRows(sqlmock.NewRows(cols))
	if _, err := cp.Get(context.Background(), "t1", strings.ToUpper(headA)); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Fatalf("Get of a missing id = %v, want ErrNotFound", err)
	}
	// A malformed id never reaches the server.
	if _, err := cp.Get(context.Background(), "t1", "x"); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Fatalf("Get of a malformed id = %v, want ErrInvalidCheckpointID", err)
	}
	mock.ExpectQuery(pgSQL(t, "getLatest")).WithArgs("t1").WillReturnError(pgErr("42P01"))
	if _, err := cp.Latest(context.Background(), "t1"); !errors.Is(err, pgcheckpoint.ErrSchemaMissing) || pgcheckpoint.SQLState(err) != "42P01" {
		t.Fatalf("missing table: %v, want ErrSchemaMissing wrapping 42P01", err)
	}
}

func TestSqlmockList(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 7})
	cols := []string{"checkpoint_id", "created_at", "version", "size_bytes"}
	at := time.Now()
	mock.ExpectQuery(pgSQL(t, "list")).WithArgs("t1", int64(100)).
		WillReturnRows(sqlmock.NewRows(cols).AddRow(headA, at, int64(1), int64(10)))
	if l, err := cp.List(context.Background(), "t1", pgcheckpoint.ListOptions{}); err != nil || len(l) != 1 || l[0].ID != headA {
		t.Fatalf("List = %+v, %v", l, err)
	}
	mock.ExpectQuery(pgSQL(t, "listBefore")).WithArgs("t1", headA, int64(10000)).WillReturnRows(sqlmock.NewRows(cols))
	if l, err := cp.List(context.Background(), "t1", pgcheckpoint.ListOptions{Limit: -1, Before: headA}); err != nil || len(l) != 0 {
		t.Fatalf("List before = %+v, %v", l, err)
	}
	if _, err := cp.List(context.Background(), "t1", pgcheckpoint.ListOptions{Before: "x"}); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Fatalf("List before a malformed cursor = %v, want ErrInvalidCheckpointID", err)
	}
}

// expectLockThread expects the row locks a renumbering or a thread's delete takes when no other writer
// moves the thread meanwhile: a savepoint, the newest row (ids[0]) locked, the newest id in a fresh
// snapshot, every row (ids, newest first) locked, the newest id again, the savepoint released.
func expectLockThread(t *testing.T, mock sqlmock.Sqlmock, sqlOf func(testing.TB, string) string, thread string, ids ...string) {
	t.Helper()
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
	mock.ExpectExec(sqlOf(t, "savepoint")).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(sqlOf(t, "lockNewest")).WithArgs(thread).WillReturnRows(head)
	mock.ExpectQuery(sqlOf(t, "newest")).WithArgs(thread).WillReturnRows(newest())
	mock.ExpectQuery(sqlOf(t, "lockRows")).WithArgs(thread).WillReturnRows(all)
	mock.ExpectQuery(sqlOf(t, "newest")).WithArgs(thread).WillReturnRows(newest())
	mock.ExpectExec(sqlOf(t, "releaseSavepoint")).WillReturnResult(sqlmock.NewResult(0, 0))
}

// Deleting one checkpoint holds every row lock of the thread, deletes and renumbers (only when a row was
// deleted), in one transaction; a 23505 (a put took a number the renumbering wanted) runs it again.
func TestSqlmockDelete(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	older := "01900000-0000-7000-8000-000000000000"
	// A whole thread: its rows locked first, newest first, then deleted, in one transaction.
	mock.ExpectBegin()
	expectLockThread(t, mock, pgSQL, "t1", headA, older)
	mock.ExpectExec(pgSQL(t, "deleteAll")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	if err := cp.DeleteThread(context.Background(), "t1"); err != nil {
		t.Fatal(err)
	}
	for _, renumberErr := range []error{pgErr("23505"), nil} {
		mock.ExpectBegin()
		expectLockThread(t, mock, pgSQL, "t1", headA, older)
		mock.ExpectExec(pgSQL(t, "deleteOne")).WithArgs("t1", older).WillReturnResult(sqlmock.NewResult(0, 1))
		if renumberErr != nil {
			mock.ExpectExec(pgSQL(t, "renumber")).WithArgs("t1").WillReturnError(renumberErr)
			mock.ExpectRollback()
			continue
		}
		mock.ExpectExec(pgSQL(t, "renumber")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectCommit()
	}
	if err := cp.Delete(context.Background(), "t1", strings.ToUpper(older)); err != nil {
		t.Fatal(err)
	}
	mock.ExpectBegin()
	expectLockThread(t, mock, pgSQL, "t1")
	mock.ExpectExec(pgSQL(t, "deleteOne")).WithArgs("t1", headA).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := cp.Delete(context.Background(), "t1", headA); err != nil {
		t.Fatal(err)
	}
	if err := cp.Delete(context.Background(), "t1", "not-an-id"); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Fatalf("Delete of a malformed id = %v, want ErrInvalidCheckpointID and no statement", err)
	}
}

func TestSqlmockThreadsAndPrune(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	at := time.Now()
	mock.ExpectQuery(pgSQL(t, "threads")).WithArgs("a", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id", "count", "max", "max", "sum"}).AddRow("b", int64(3), headA, at, int64(99)))
	th, err := cp.Threads(context.Background(), pgcheckpoint.ThreadsOptions{After: "a", Limit: 2})
	if err != nil || len(th) != 1 || th[0].Checkpoints != 3 || th[0].TotalBytes != 99 {
		t.Fatalf("Threads = %+v, %v", th, err)
	}

	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	mock.ExpectQuery(pgSQL(t, "now")).WillReturnRows(sqlmock.NewRows([]string{"now"}).AddRow(now))
	mock.ExpectQuery(pgSQL(t, "pruneThreads")).WithArgs("", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("a").AddRow("b"))
	// Each batch is a transaction of its own, run again on a retryable error (a deadlock with a put).
	// Each thread's newest row is locked first, so the delete's fresh snapshot knows the real newest.
	mock.ExpectBegin()
	mock.ExpectQuery(pgSQL(t, "pruneLock")).WithArgs("a", "b").WillReturnRows(sqlmock.NewRows([]string{"thread_id", "checkpoint_id"}).AddRow("a", headA).AddRow("b", headB))
	mock.ExpectQuery(pgSQL(t, "pruneOlder")).WithArgs(`[["a","`+headA+`"],["b","`+headB+`"]]`, "a", "b", now.Add(-time.Hour)).WillReturnError(pgErr("40P01"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectQuery(pgSQL(t, "pruneLock")).WithArgs("a", "b").WillReturnRows(sqlmock.NewRows([]string{"thread_id", "checkpoint_id"}).AddRow("a", headA).AddRow("b", headB))
	mock.ExpectQuery(pgSQL(t, "pruneOlder")).WithArgs(`[["a","`+headA+`"],["b","`+headB+`"]]`, "a", "b", now.Add(-time.Hour)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("a").AddRow("a"))
	mock.ExpectCommit()
	mock.ExpectQuery(pgSQL(t, "pruneThreads")).WithArgs("b", int64(2)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("c"))
	mock.ExpectBegin()
	// The newest row of c is deleted while the lock waits for it: the lock finds no row and runs again,
	// then holds c's new newest row.
	mock.ExpectQuery(pgSQL(t, "pruneLock")).WithArgs("c", "c").WillReturnRows(sqlmock.NewRows([]string{"thread_id", "checkpoint_id"}))
	mock.ExpectQuery(pgSQL(t, "pruneLock")).WithArgs("c", "c").WillReturnRows(sqlmock.NewRows([]string{"thread_id", "checkpoint_id"}).AddRow("c", headA))
	mock.ExpectQuery(pgSQL(t, "pruneOlder")).WithArgs(`[["c","`+headA+`"]]`, "c", "c", now.Add(-time.Hour)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("c"))
	mock.ExpectCommit()
	res, err := cp.Prune(context.Background(), pgcheckpoint.PruneOptions{OlderThan: time.Hour, BatchThreads: 2})
	if err != nil || res.Deleted != 3 || res.Threads != 2 {
		t.Fatalf("Prune = %+v, %v; want 3 deleted in 2 threads", res, err)
	}
}

func TestSqlmockDetectDialect(t *testing.T) {
	t.Parallel()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for answer, want := range map[string]pgcheckpoint.Dialect{
		"PostgreSQL 17.2 on x86_64-pc-linux-gnu":        pgcheckpoint.PostgreSQL,
		"CockroachDB CCL v24.1.0 (x86_64-pc-linux-gnu)": pgcheckpoint.CockroachDB,
	} {
		mock.ExpectQuery(pgSQL(t, "version")).WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(answer))
		if d, err := pgcheckpoint.DetectDialect(context.Background(), db); err != nil || d != want {
			t.Errorf("DetectDialect(%q) = %v, %v; want %s", answer, d, err, want.Name())
		}
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}

// catalogRow is the catalog's answer: schema, table, seq column, seq index, unnumbered index, policy
// table, total_bytes column, the policy's max_bytes_per_thread column exist.
func catalogRow(have ...bool) *sqlmock.Rows {
	row := make([]driver.Value, len(have))
	for i, h := range have {
		row[i] = h
	}
	return sqlmock.NewRows([]string{"schema", "table", "seq", "seq_index", "unnumbered_index", "policy_table", "total_bytes", "policy_bytes"}).AddRow(row...)
}

// EnsureSchema reads the catalog first: with everything there it runs nothing else; otherwise the DDL
// runs in one transaction behind the schema's advisory lock, without CREATE SCHEMA when the schema
// exists (it would demand CREATE on the database).
func TestSqlmockEnsureSchema(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{Schema: "agents", Table: "Checkpoints"})
	const dir = "postgres/agents.Checkpoints"
	ddl := goldenDDL(t, dir)
	if !strings.HasPrefix(ddl[0], "CREATE SCHEMA") {
		t.Fatalf("the first DDL statement is not CREATE SCHEMA: %s", ddl[0])
	}
	catalog := func() *sqlmock.ExpectedQuery {
		return mock.ExpectQuery(goldenSQL(t, dir+"/catalog")).
			WithArgs("agents", "Checkpoints", "Checkpoints_thread_seq_key", "Checkpoints_unnumbered", "Checkpoints_policy")
	}
	for _, tc := range []struct {
		have []bool
		ddl  []string
	}{
		{[]bool{false, false, false, false, false, false, false, false}, ddl},
		{[]bool{true, true, true, true, true, true, true, true}, nil},
		{[]bool{true, true, false, false, false, false, false, false}, ddl[1:]}, // a table created by the TypeScript package
		{[]bool{true, true, true, true, false, true, true, true}, ddl[1:]},
		{[]bool{true, true, true, true, true, false, false, false}, ddl[1:]}, // made by pgcheckpoint before the policy
		{[]bool{true, true, true, true, true, true, false, false}, ddl[1:]},  // before the byte budget
	} {
		catalog().WillReturnRows(catalogRow(tc.have...))
		if tc.ddl != nil {
			mock.ExpectBegin()
			mock.ExpectExec(goldenSQL(t, dir+"/lockSchema")).WillReturnResult(sqlmock.NewResult(0, 0))
			for _, s := range tc.ddl {
				mock.ExpectExec(s).WillReturnResult(sqlmock.NewResult(0, 0))
			}
			mock.ExpectCommit()
		}
		// Then the retention policy: recorded (the default, 100) where the table records none.
		mock.ExpectQuery(goldenSQL(t, dir+"/policyTable")).WithArgs("agents", "Checkpoints_policy").
			WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(true))
		policy := sqlmock.NewRows([]string{"max_checkpoints_per_thread", "max_bytes_per_thread"})
		if tc.have[5] {
			policy.AddRow(int64(100), int64(0))
		}
		mock.ExpectQuery(goldenSQL(t, dir+"/readPolicy")).WillReturnRows(policy)
		if !tc.have[5] {
			mock.ExpectExec(goldenSQL(t, dir+"/recordPolicy")).WithArgs(int64(100), int64(0)).WillReturnResult(sqlmock.NewResult(0, 1))
		}
		if err := cp.EnsureSchema(context.Background()); err != nil {
			t.Fatalf("EnsureSchema with %v: %v", tc.have, err)
		}
	}
	catalog().WillReturnError(pgErr("42501"))
	if err := cp.EnsureSchema(context.Background()); !errors.Is(err, pgcheckpoint.ErrPermission) {
		t.Fatalf("catalog read without privilege: %v, want ErrPermission", err)
	}
}

func TestSqlmockInCallerTransaction(t *testing.T) {
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
	testhooks.AssumeRetention(base, pgcheckpoint.DefaultMaxCheckpointsPerThread)
	ctx := context.Background()
	begin := func(level string) *sql.Tx {
		t.Helper()
		mock.ExpectBegin()
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if level != "" {
			mock.ExpectQuery(pgSQL(t, "isolation")).WillReturnRows(sqlmock.NewRows([]string{"transaction_isolation"}).AddRow(level))
		}
		return tx
	}
	rollback := func(tx *sql.Tx) {
		t.Helper()
		mock.ExpectRollback()
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}

	// A 40001 surfaces (no retry: the caller's loop runs the whole transaction again).
	tx := begin("read committed")
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnError(pgErr("40001"))
	if _, err := base.WithTx(tx).Put(ctx, "t1", []byte(snap1)); !pgcheckpoint.Retryable(err) {
		t.Fatalf("inside a caller's transaction a 40001 must surface (no retry): %v", err)
	}
	rollback(tx)

	// A unique violation is a conflict; the isolation level is checked once per transaction.
	tx = begin("read committed")
	in := base.WithTx(tx)
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnRows(stored(2, headA, 0))
	if _, err := in.Put(ctx, "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnError(pgErr("23505"))
	if _, err := in.Put(ctx, "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("unique violation in a caller's transaction: %v, want ErrConflict", err)
	}
	rollback(tx)

	// A broken connection is returned as it is: the caller's transaction is gone, and nothing of it
	// committed, so the outcome is not unknown.
	tx = begin("read committed")
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{}, nil, int64(100))...).WillReturnError(pgErr("08006"))
	if _, err := base.WithTx(tx).Put(ctx, "t1", []byte(snap1)); errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || pgcheckpoint.SQLState(err) != "08006" {
		t.Fatalf("connection lost in a caller's transaction: %v, want the 08006 as it is, not ErrOutcomeUnknown", err)
	}
	rollback(tx)

	// An empty thread: the first row goes in inside the caller's transaction, under the same lock.
	tx = begin("read committed")
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnRows(emptyThread())
	mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "first")).WithArgs("t1", sameArg{&id}, []byte(snap1), int64(2), int64(len(snap1))).
		WillReturnRows(sqlmock.NewRows([]string{"seq"}).AddRow(int64(1)))
	if got, err := base.WithTx(tx).Put(ctx, "t1", []byte(snap1)); err != nil || got != id {
		t.Fatalf("first row in a caller's transaction = %q, %v; want %q", got, err, id)
	}
	rollback(tx)

	// Another isolation level is refused before anything is written.
	tx = begin("repeatable read")
	if _, err := base.WithTx(tx).Put(ctx, "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
		t.Fatalf("put at REPEATABLE READ: %v, want ErrInvalidOptions", err)
	}
	rollback(tx)
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}

// A fenced put whose attempt's outcome is unknown (the connection broke) is settled by the look-up like
// any put: found, it returns its id; not found, ErrOutcomeUnknown, never ErrConflict (ErrConflict says
// nothing was written, and the attempt may have committed).
func TestSqlmockPutFencedUnknownOutcomeIsNotAConflict(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	put, lookup := pgSQL(t, "put"), pgSQL(t, "stored")
	var id string
	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, headA, int64(100))...).WillReturnError(pgErr("08006"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnRows(storedRows(true))
	if got, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1)); err != nil || got != id {
		t.Fatalf("PutAfter whose attempt committed before the connection broke = %q, %v; want %q", got, err, id)
	}

	mock.ExpectQuery(put).WithArgs(putArgs("t1", uuidArg{got: &id}, headA, int64(100))...).WillReturnError(pgErr("08006"))
	mock.ExpectQuery(lookup).WithArgs("t1", sameArg{&id}).WillReturnRows(storedRows(false))
	_, err := cp.PutAfter(context.Background(), "t1", headA, []byte(snap1))
	if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("PutAfter whose id is not found after a lost connection: %v, want ErrOutcomeUnknown and not ErrConflict", err)
	}
}

// A thread that keeps getting rows without a number (a TypeScript writer racing each renumbering) does
// not keep a put going round for ever: every renumbering counts as a lost round, and the put ends with
// ErrRetriesExhausted once they are used up.
func TestSqlmockPutRenumberingIsBounded(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	var id string
	expectRound := func(first bool) {
		arg := driver.Value(sameArg{&id})
		if first {
			arg = uuidArg{got: &id}
		}
		mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", arg, nil, int64(100))...).
			WillReturnRows(report(nil, headA, int64(4), true, int64(4), true, false, int64(0)))
	}
	const maxLosses = 100 // put.go
	for i := range maxLosses + 1 {
		expectRound(i == 0)
		mock.ExpectBegin()
		expectLockThread(t, mock, pgSQL, "t1", headA)
		mock.ExpectExec(pgSQL(t, "renumber")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 5))
		mock.ExpectCommit()
	}
	if _, err := cp.Put(context.Background(), "t1", []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
		t.Fatalf("Put on a thread that never stays numbered = %v, want ErrRetriesExhausted", err)
	}
}
