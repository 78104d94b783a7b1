package sqlmocktest_test

// Statement sequences of the issue-15 operations (thread id prefix, fork), pinned with go-sqlmock from
// the golden files like the rest (sqlmock_test.go).

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
)

// A prefix sends the prefixed statements with the prefix and the end of its range: the prefix with its
// last character replaced by the next code point.
func TestSqlmockPrefix(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{})
	at := time.Now()
	mock.ExpectQuery(pgSQL(t, "threadsPrefix")).WithArgs("", int64(100), "acme/¿", "acme/À").
		WillReturnRows(sqlmock.NewRows([]string{"thread_id", "count", "max", "max", "sum"}).AddRow("acme/¿1", int64(1), headA, at, int64(9)))
	if th, err := cp.Threads(context.Background(), pgcheckpoint.ThreadsOptions{Prefix: "acme/¿"}); err != nil || len(th) != 1 {
		t.Fatalf("Threads = %+v, %v", th, err)
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	mock.ExpectQuery(pgSQL(t, "now")).WillReturnRows(sqlmock.NewRows([]string{"now"}).AddRow(now))
	mock.ExpectQuery(pgSQL(t, "pruneThreadsPrefix")).WithArgs("", int64(2), "t/", "t0").
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("t/a").AddRow("t/b"))
	mock.ExpectBegin()
	mock.ExpectQuery(pgSQL(t, "pruneLockPrefix")).WithArgs("t/a", "t/b").
		WillReturnRows(sqlmock.NewRows([]string{"thread_id", "checkpoint_id"}).AddRow("t/a", headA).AddRow("t/b", headB))
	mock.ExpectQuery(pgSQL(t, "pruneOlderPrefix")).WithArgs(`[["t/a","`+headA+`"],["t/b","`+headB+`"]]`, "t/a", "t/b", now.Add(-time.Hour)).
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}).AddRow("t/a"))
	mock.ExpectCommit()
	mock.ExpectQuery(pgSQL(t, "pruneThreadsPrefix")).WithArgs("t/b", int64(2), "t/", "t0").
		WillReturnRows(sqlmock.NewRows([]string{"thread_id"}))
	res, err := cp.Prune(context.Background(), pgcheckpoint.PruneOptions{OlderThan: time.Hour, BatchThreads: 2, Prefix: "t/"})
	if err != nil || res.Deleted != 1 || res.Threads != 1 {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	// A bad prefix sends nothing.
	if _, err := cp.Threads(context.Background(), pgcheckpoint.ThreadsOptions{Prefix: "bad\xff"}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
		t.Fatalf("Threads with a bad prefix: %v", err)
	}
	if _, err := cp.Prune(context.Background(), pgcheckpoint.PruneOptions{OlderThan: time.Hour, Prefix: "nul\x00"}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
		t.Fatalf("Prune with a bad prefix: %v", err)
	}
}

var forkColumns = []string{"source", "target", "copied"}

// forkRebindSQL is the look for sealed copies a fork makes in its transaction after copying (a sealed
// copy is re-bound to the new thread; a keyless client refuses one): none here, so nothing follows.
const forkRebindSQL = `SELECT checkpoint_id, snapshot::text FROM "public"."ziro_checkpoints"
WHERE thread_id = $1 AND snapshot->>'$' = 'enc1'`

// expectForkRebind expects forkRebindSQL finding no sealed copy in thread "to".
func expectForkRebind(mock sqlmock.Sqlmock) {
	mock.ExpectQuery(forkRebindSQL).WithArgs("to").WillReturnRows(sqlmock.NewRows([]string{"checkpoint_id", "snapshot"}))
}

// On PostgreSQL a fork is one statement in a READ COMMITTED transaction after the target thread's
// advisory lock, the lock a thread's first put takes, then the look for sealed copies; no snapshot is
// sent.
func TestSqlmockForkPostgres(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 7})
	mock.ExpectBegin()
	mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("to").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "fork")).WithArgs("from", headA, "to", int64(7), nil).
		WillReturnRows(sqlmock.NewRows(forkColumns).AddRow(true, false, int64(5)))
	expectForkRebind(mock)
	mock.ExpectCommit()
	id, err := cp.Fork(context.Background(), "from", headA, "to", pgcheckpoint.ForkOptions{History: true})
	if err != nil || id != headA {
		t.Fatalf("Fork = %q, %v", id, err)
	}
	if got := log.got(); !slices.Equal(got, []sql.IsolationLevel{sql.LevelReadCommitted}) {
		t.Errorf("isolation levels %v, want [READ COMMITTED]", got)
	}
	// The report decides the error: source missing, target taken.
	for _, c := range []struct {
		source, target bool
		want           error
	}{{false, false, pgcheckpoint.ErrNotFound}, {true, true, pgcheckpoint.ErrThreadExists}} {
		mock.ExpectBegin()
		mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("to").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectQuery(pgSQL(t, "fork")).WithArgs("from", headA, "to", int64(1), nil).
			WillReturnRows(sqlmock.NewRows(forkColumns).AddRow(c.source, c.target, int64(0)))
		mock.ExpectCommit()
		if _, err := cp.Fork(context.Background(), "from", headA, "to", pgcheckpoint.ForkOptions{}); !errors.Is(err, c.want) {
			t.Errorf("Fork with source %v, target %v: err = %v, want %v", c.source, c.target, err, c.want)
		}
	}
	// An unknown commit outcome is reported, not run again (a rerun would call the fork's own copy an
	// existing thread).
	mock.ExpectBegin()
	mock.ExpectExec(pgSQL(t, "lockFirst")).WithArgs("to").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(pgSQL(t, "fork")).WithArgs("from", headA, "to", int64(1), nil).
		WillReturnRows(sqlmock.NewRows(forkColumns).AddRow(true, false, int64(1)))
	expectForkRebind(mock)
	mock.ExpectCommit().WillReturnError(pgErr("40003"))
	if _, err := cp.Fork(context.Background(), "from", headA, "to", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) {
		t.Errorf("Fork whose commit outcome is unknown: err = %v, want ErrOutcomeUnknown", err)
	}
}

// On CockroachDB a fork runs at SERIALIZABLE without advisory locks, again as a whole on 40001.
func TestSqlmockForkCockroach(t *testing.T) {
	t.Parallel()
	cp, mock, log := newCockroachMock(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	mock.ExpectBegin()
	mock.ExpectQuery(crdbSQL(t, "fork")).WithArgs("from", headA, "to", int64(1<<63-1), nil).WillReturnError(pgErr("40001"))
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectQuery(crdbSQL(t, "fork")).WithArgs("from", headA, "to", int64(1<<63-1), nil).
		WillReturnRows(sqlmock.NewRows(forkColumns).AddRow(true, false, int64(3)))
	expectForkRebind(mock)
	mock.ExpectCommit()
	id, err := cp.Fork(context.Background(), "from", headA, "to", pgcheckpoint.ForkOptions{History: true})
	if err != nil || id != headA {
		t.Fatalf("Fork = %q, %v", id, err)
	}
	if got := log.got(); !slices.Equal(got, []sql.IsolationLevel{sql.LevelSerializable, sql.LevelSerializable}) {
		t.Errorf("isolation levels %v, want SERIALIZABLE twice", got)
	}
}

// A lease put is one READ COMMITTED transaction: the locking lease check, the put, COMMIT (the
// transaction is begun at the put's level, so the put does not ask for it); an expired or taken-over lease ends it before the put, with ErrLeaseLost.
func TestSqlmockLeasePut(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{})
	expires := time.Now().Add(time.Minute)
	mock.ExpectQuery(pgSQL(t, "leaseAcquire")).WithArgs("t1", "me", float64(60)).
		WillReturnRows(sqlmock.NewRows([]string{"token", "expires_at"}).AddRow(int64(7), expires))
	l, err := cp.Acquire(context.Background(), "t1", "me", time.Minute)
	if err != nil || l.Token != 7 || !l.Expires.Equal(expires) {
		t.Fatalf("Acquire = %+v, %v", l, err)
	}
	mock.ExpectBegin()
	mock.ExpectQuery(pgSQL(t, "leaseCheck")).WithArgs("t1", "me", int64(7)).WillReturnRows(sqlmock.NewRows([]string{"in_force"}).AddRow(true))
	var id string
	mock.ExpectQuery(pgSQL(t, "put")).WithArgs(putArgs("t1", uuidArg{got: &id}, nil, int64(100))...).WillReturnRows(stored(2, headA, 0))
	mock.ExpectCommit()
	if got, err := l.Put(context.Background(), []byte(snap1)); err != nil || got != id {
		t.Fatalf("lease Put = %q, %v; want %q", got, err, id)
	}
	for _, rows := range []*sqlmock.Rows{
		sqlmock.NewRows([]string{"in_force"}).AddRow(false), // expired
		sqlmock.NewRows([]string{"in_force"}),               // taken over
	} {
		mock.ExpectBegin()
		mock.ExpectQuery(pgSQL(t, "leaseCheck")).WithArgs("t1", "me", int64(7)).WillReturnRows(rows)
		mock.ExpectRollback()
		if _, err := l.Put(context.Background(), []byte(snap1)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
			t.Fatalf("lease Put: %v, want ErrLeaseLost", err)
		}
	}
	if got := log.got(); !slices.Equal(got, []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelReadCommitted, sql.LevelReadCommitted}) {
		t.Errorf("isolation levels %v, want READ COMMITTED for each lease put", got)
	}
	mock.ExpectQuery(pgSQL(t, "leaseAcquire")).WithArgs("t1", "you", float64(60)).WillReturnRows(sqlmock.NewRows([]string{"token", "expires_at"}))
	if _, err := cp.Acquire(context.Background(), "t1", "you", time.Minute); !errors.Is(err, pgcheckpoint.ErrLeaseHeld) {
		t.Fatalf("Acquire of a held thread: %v, want ErrLeaseHeld", err)
	}
	mock.ExpectQuery(pgSQL(t, "leaseRenew")).WithArgs("t1", "me", int64(7), float64(30)).WillReturnRows(sqlmock.NewRows([]string{"expires_at"}))
	if err := l.Renew(context.Background(), 30*time.Second); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Renew of a lost lease: %v, want ErrLeaseLost", err)
	}
	mock.ExpectExec(pgSQL(t, "leaseRelease")).WithArgs("t1", "me", int64(7)).WillReturnResult(sqlmock.NewResult(0, 0))
	if err := l.Release(context.Background()); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
