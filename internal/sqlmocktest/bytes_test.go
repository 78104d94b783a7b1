package sqlmocktest_test

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
)

// Under a byte budget a put sends the statements that trim by bytes; a head without a running total
// (rows of an older version) is reported like rows without a number, and the put renumbers the thread
// (which computes every total) in a transaction holding every row's lock, then runs again with the same
// id. PostgreSQL: putBytes, the renumbering, putBytes again.
func TestSqlmockByteBudgetRenumbersHeadWithoutTotal(t *testing.T) {
	t.Parallel()
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const budget = int64(4096)
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, 0, pgcheckpointmock.Budget(budget))
	var id string
	args := func(id any) []any {
		return []any{"t1", id, []byte(snap1), int64(2), int64(len(snap1)), nil, nil, budget}
	}
	mock.ExpectQuery(pgSQL(t, "putBytes")).WithArgs(toValues(args(uuidArg{got: &id}))...).
		WillReturnRows(report(nil, headA, int64(4), true, int64(4), true, false, int64(0)))
	mock.ExpectBegin()
	expectLockThread(t, mock, pgSQL, "t1", headA)
	mock.ExpectExec(pgSQL(t, "renumber")).WithArgs("t1").WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	mock.ExpectQuery(pgSQL(t, "putBytes")).WithArgs(toValues(args(sameArg{&id}))...).WillReturnRows(stored(9, headA, 2))
	if got, err := cp.Put(context.Background(), "t1", []byte(snap1)); err != nil || got != id {
		t.Fatalf("Put = %q, %v; want %q", got, err, id)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}

// CockroachDB: insertBytes in the put's transaction (nothing inserted: it commits nothing), the
// renumbering, then insertBytes and trimBytes (thread, the new seq, no cap, the budget) in one
// transaction.
func TestSqlmockCockroachByteBudget(t *testing.T) {
	t.Parallel()
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB})
	if err != nil {
		t.Fatal(err)
	}
	const budget = int64(4096)
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.CockroachDB, 0, pgcheckpointmock.Budget(budget))
	var id string
	insert := func(id any) *sqlmock.ExpectedQuery {
		return mock.ExpectQuery(crdbSQL(t, "insertBytes")).WithArgs(crdbThread, id, []byte(crdbSnap), int64(3), int64(len(crdbSnap)), nil)
	}
	mock.ExpectBegin()
	insert(crdbID{got: &id}).WillReturnRows(report(nil, crdbHead, int64(4), true, int64(4), true, false, int64(0)))
	mock.ExpectCommit()
	mock.ExpectBegin()
	expectLockThread(t, mock, crdbSQL, crdbThread, crdbHead)
	mock.ExpectExec(crdbSQL(t, "renumber")).WithArgs(crdbThread).WillReturnResult(sqlmock.NewResult(0, 4))
	mock.ExpectCommit()
	mock.ExpectBegin()
	insert(sameArg{&id}).WillReturnRows(inserted(9))
	mock.ExpectExec(crdbSQL(t, "trimBytes")).WithArgs(crdbThread, int64(9), nil, budget).WillReturnResult(sqlmock.NewResult(0, 2))
	mock.ExpectCommit()
	mustPutOK(t, cp, &id)
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}

// toValues converts statement arguments for sqlmock's WithArgs.
func toValues(args []any) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}
