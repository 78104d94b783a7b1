package sqlmocktest_test

// Statement sequences of a delta table (docs/storage.md), pinned with go-sqlmock against the golden
// files under testdata/sql/<dialect>/delta: the catalog check once, the cold writer's one read of the
// thread's head, the first row under the advisory lock, a warm put that sends only the new element, and
// a get that splices the rows it reads, and a lease put that runs the delta put inside its transaction.

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

func deltaSQL(t testing.TB, dialect, name string) string {
	t.Helper()
	return goldenSQL(t, dialect+"/delta/"+name)
}

var deltaReportColumns = []string{"new_seq", "head_id", "head_seq", "locked", "locked_seq", "mine", "arrays", "alloc", "items", "no_total", "trimmed", "gone"}

func TestSqlmockDeltaPutAndGet(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{Storage: pgcheckpoint.StorageDelta})
	ctx := context.Background()
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_catalog")).
		WithArgs("public", "ziro_checkpoints", "ziro_checkpoints_heads", "ziro_checkpoints_items", "ziro_checkpoints_heads_thread_seq_key", "ziro_checkpoints_policy").
		WillReturnRows(sqlmock.NewRows([]string{"s", "t", "h", "i", "x", "total", "policy_bytes"}).AddRow(true, "VIEW", true, true, true, true, true))
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_peek")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows([]string{"id", "arrays", "alloc"}))
	mock.ExpectBegin()
	mock.ExpectExec(deltaSQL(t, "postgres", "heads_lockFirst")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 0))
	var id1 string
	snap1 := `{"m": [1, 2], "x": 1}`
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_first")).
		WithArgs("t1", uuidArg{got: &id1}, []byte(`{"x":1}`), int64(0), int64(len(snap1)), sqlmock.AnyArg(),
			[]byte(`{"m":[0,2]}`), []byte(`[1,2]`), "{0}", "{2}", "{0,1}").
		WillReturnRows(sqlmock.NewRows([]string{"seq", "items"}).AddRow(int64(1), int64(2)))
	mock.ExpectCommit()
	if _, err := cp.Put(ctx, "t1", []byte(snap1)); err != nil {
		t.Fatal(err)
	}
	// Warm: one statement, only the new element, planned on the head this process wrote.
	var id2 string
	snap2 := `{"m": [1, 2, 3], "x": 2}`
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_put")).
		WithArgs("t1", uuidArg{after: "", got: &id2}, []byte(`{"x":2}`), int64(0), int64(len(snap2)), nil, sqlmock.AnyArg(),
			[]byte(`{"m":[0,3]}`), sameArg{&id1}, []byte(`[3]`), "{2}", "{0}", "{3}", int64(100)).
		WillReturnRows(sqlmock.NewRows(deltaReportColumns).AddRow(int64(2), "h", int64(1), true, int64(1), false, nil, nil, int64(1), false, int64(0), int64(0)))
	got, err := cp.Put(ctx, "t1", []byte(snap2))
	if err != nil || got != id2 {
		t.Fatalf("Put = %q, %v; want %q", got, err, id2)
	}
	if l := log.got(); len(l) != 1 || l[0] != sql.LevelReadCommitted {
		t.Errorf("transactions begun: %v, want only the first row's READ COMMITTED one", l)
	}
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_getLatest")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows([]string{"id", "created", "version", "size", "snapshot", "arrays", "pos", "item"}).
			AddRow(id2, at, int64(0), int64(len(snap2)), `{"x": 2}`, `{"m": {"h": "00", "n": 3, "r": [[0, 3]], "s": 0}}`, nil, nil).
			AddRow(nil, nil, nil, nil, nil, nil, int64(1), "2").
			AddRow(nil, nil, nil, nil, nil, nil, int64(0), "1").
			AddRow(nil, nil, nil, nil, nil, nil, int64(2), "3"))
	cpGot, err := cp.Latest(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"x": 2, "m": [1, 2, 3]}`; string(cpGot.Snapshot) != want || cpGot.ID != id2 || !cpGot.CreatedAt.Equal(at) {
		t.Errorf("Get = %s %s %v, want %s (rows out of order are sorted by position)", cpGot.ID, cpGot.Snapshot, cpGot.CreatedAt, want)
	}
}

// On CockroachDB a put with retention is the insert (heads and items) and the trim (heads and the
// items only they held) in one transaction; a stale basis is answered with the newest head's state,
// and the next attempt plans on it without another read.
func TestSqlmockDeltaCockroachStaleBasis(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB, Storage: pgcheckpoint.StorageDelta, MaxCheckpointsPerThread: 1})
	ctx := context.Background()
	mock.ExpectQuery(deltaSQL(t, "cockroach", "delta_catalog")).WithArgs(sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg()).
		WillReturnRows(sqlmock.NewRows([]string{"s", "t", "h", "i", "x", "total", "policy_bytes"}).AddRow(true, "VIEW", true, true, true, true, true))
	// A cold writer reads the head: H1 holds m = [1] at position 0 (the hash does not match this
	// snapshot's, so m is written again).
	mock.ExpectQuery(deltaSQL(t, "cockroach", "delta_peek")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows([]string{"id", "arrays", "alloc"}).
			AddRow(headA, `{"m": {"h": "00000000000000000000000000000000", "n": 1, "r": [[0, 1]], "s": 0}}`, `{"m": [0, 1]}`))
	snap := `{"m": [7, 8]}`
	mock.ExpectBegin()
	mock.ExpectQuery(deltaSQL(t, "cockroach", "delta_insert")).
		WithArgs("t1", uuidArg{}, []byte(`{}`), int64(0), int64(len(snap)), nil, sqlmock.AnyArg(),
			[]byte(`{"m":[0,3]}`), headA, []byte(`[7,8]`), "{1,2}", "{1}", "{3}").
		WillReturnRows(sqlmock.NewRows(deltaReportColumns).AddRow(nil, farFuture[:8]+headA[8:], int64(5), true, int64(5), false,
			`{"m": {"h": "00000000000000000000000000000000", "n": 1, "r": [[0, 1]], "s": 0}}`, `{"m": [0, 4]}`, int64(0), false, int64(0), int64(0)))
	mock.ExpectCommit() // nothing was written: the transaction ends
	// The thread moved (another writer): plan again on the reported head, whose slot is at 4.
	mock.ExpectBegin()
	var id string
	mock.ExpectQuery(deltaSQL(t, "cockroach", "delta_insert")).
		WithArgs("t1", uuidArg{got: &id}, []byte(`{}`), int64(0), int64(len(snap)), nil, sqlmock.AnyArg(),
			[]byte(`{"m":[0,6]}`), farFuture[:8]+headA[8:], []byte(`[7,8]`), "{4,5}", "{4}", "{6}").
		WillReturnRows(sqlmock.NewRows(deltaReportColumns).AddRow(int64(6), "x", int64(5), true, int64(5), false, nil, nil, int64(2), false, int64(0), int64(0)))
	mock.ExpectQuery(deltaSQL(t, "cockroach", "delta_trim")).WithArgs("t1", int64(5)).
		WillReturnRows(sqlmock.NewRows([]string{"del", "gone"}).AddRow(int64(1), int64(1)))
	mock.ExpectCommit()
	if _, err := cp.Put(ctx, "t1", []byte(snap)); err != nil {
		t.Fatal(err)
	}
}

// A fork of a delta table checks the catalog once, then runs the delta fork statement (heads and their
// items) in a READ COMMITTED transaction after the target thread's first-put lock, as the full layout's
// fork does, then looks for sealed copies to re-bind.
func TestSqlmockDeltaFork(t *testing.T) {
	t.Parallel()
	cp, mock := newMock(t, pgcheckpoint.Options{Storage: pgcheckpoint.StorageDelta})
	ctx := context.Background()
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_catalog")).WithArgs(sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg()).
		WillReturnRows(sqlmock.NewRows([]string{"s", "t", "h", "i", "x", "total", "policy_bytes"}).AddRow(true, "VIEW", true, true, true, true, true))
	mock.ExpectBegin()
	mock.ExpectExec(deltaSQL(t, "postgres", "heads_lockFirst")).WithArgs("to").WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_fork")).WithArgs("from", headA, "to", int64(1), nil).
		WillReturnRows(sqlmock.NewRows([]string{"source", "target", "copied"}).AddRow(true, false, int64(1)))
	// The look for sealed copies, heads then the items they hold (none: nothing to re-bind).
	mock.ExpectQuery(`SELECT checkpoint_id, snapshot::text, arrays::text FROM "public"."ziro_checkpoints_heads"
WHERE thread_id = $1 AND snapshot->>'$' = 'enc1'`).WithArgs("to").WillReturnRows(sqlmock.NewRows([]string{"checkpoint_id", "snapshot", "arrays"}))
	mock.ExpectQuery(`SELECT i.pos, i.item::text FROM "public"."ziro_checkpoints_items" AS i
WHERE i.thread_id = $1 AND i.item->>'$' = 'enc1'
  AND EXISTS (SELECT 1 FROM "public"."ziro_checkpoints_heads" AS h, unnest(h.lo, h.hi) AS s(lo, hi)
              WHERE h.thread_id = $1 AND i.pos >= s.lo AND i.pos < s.hi)`).WithArgs("to").WillReturnRows(sqlmock.NewRows([]string{"pos", "item"}))
	mock.ExpectCommit()
	if got, err := cp.Fork(ctx, "from", headA, "to", pgcheckpoint.ForkOptions{}); err != nil || got != headA {
		t.Fatalf("Fork = %q, %v", got, err)
	}
}

// A lease put on a delta table is one READ COMMITTED transaction holding the locking lease check and
// then the delta put of a caller's transaction (the catalog check, the cold read of the head, the first
// row under the advisory lock; later the warm one-statement put), COMMIT; an expired lease ends it
// before anything is put. The lease statements name <table>_leases, the view's name.
func TestSqlmockDeltaLeasePut(t *testing.T) {
	t.Parallel()
	cp, mock, log := newLoggedMock(t, pgcheckpoint.Options{Storage: pgcheckpoint.StorageDelta})
	ctx := context.Background()
	expires := time.Now().Add(time.Minute)
	mock.ExpectQuery(deltaSQL(t, "postgres", "view_leaseAcquire")).WithArgs("t1", "me", float64(60)).
		WillReturnRows(sqlmock.NewRows([]string{"token", "expires_at"}).AddRow(int64(7), expires))
	l, err := cp.Acquire(ctx, "t1", "me", time.Minute)
	if err != nil || l.Token != 7 {
		t.Fatalf("Acquire = %+v, %v", l, err)
	}
	check := func(inForce bool) {
		mock.ExpectQuery(deltaSQL(t, "postgres", "view_leaseCheck")).WithArgs("t1", "me", int64(7)).
			WillReturnRows(sqlmock.NewRows([]string{"in_force"}).AddRow(inForce))
	}
	mock.ExpectBegin()
	check(true)
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_catalog")).
		WithArgs("public", "ziro_checkpoints", "ziro_checkpoints_heads", "ziro_checkpoints_items", "ziro_checkpoints_heads_thread_seq_key", "ziro_checkpoints_policy").
		WillReturnRows(sqlmock.NewRows([]string{"s", "t", "h", "i", "x", "total", "policy_bytes"}).AddRow(true, "VIEW", true, true, true, true, true))
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_peek")).WithArgs("t1").
		WillReturnRows(sqlmock.NewRows([]string{"id", "arrays", "alloc"}))
	mock.ExpectExec(deltaSQL(t, "postgres", "heads_lockFirst")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 0))
	var id1 string
	snap1 := `{"m": [1, 2], "x": 1}`
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_first")).
		WithArgs("t1", uuidArg{got: &id1}, []byte(`{"x":1}`), int64(0), int64(len(snap1)), sqlmock.AnyArg(),
			[]byte(`{"m":[0,2]}`), []byte(`[1,2]`), "{0}", "{2}", "{0,1}").
		WillReturnRows(sqlmock.NewRows([]string{"seq", "items"}).AddRow(int64(1), int64(2)))
	mock.ExpectCommit()
	if got, err := l.Put(ctx, []byte(snap1)); err != nil || got != id1 {
		t.Fatalf("lease Put = %q, %v; want %q", got, err, id1)
	}
	var id2 string
	snap2 := `{"m": [1, 2, 3], "x": 2}`
	mock.ExpectBegin()
	check(true)
	mock.ExpectQuery(deltaSQL(t, "postgres", "delta_put")).
		WithArgs("t1", uuidArg{after: "", got: &id2}, []byte(`{"x":2}`), int64(0), int64(len(snap2)), nil, sqlmock.AnyArg(),
			[]byte(`{"m":[0,3]}`), sameArg{&id1}, []byte(`[3]`), "{2}", "{0}", "{3}", int64(100)).
		WillReturnRows(sqlmock.NewRows(deltaReportColumns).AddRow(int64(2), "h", int64(1), true, int64(1), false, nil, nil, int64(1), false, int64(0), int64(0)))
	mock.ExpectCommit()
	if got, err := l.Put(ctx, []byte(snap2)); err != nil || got != id2 {
		t.Fatalf("warm lease Put = %q, %v; want %q", got, err, id2)
	}
	mock.ExpectBegin()
	check(false)
	mock.ExpectRollback()
	if _, err := l.Put(ctx, []byte(snap2)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("lease Put through an expired lease: %v, want ErrLeaseLost", err)
	}
	if got := log.got(); !slices.Equal(got, []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelReadCommitted, sql.LevelReadCommitted}) {
		t.Errorf("isolation levels %v, want READ COMMITTED for each lease put and no other transaction", got)
	}
}
