package pgcheckpoint

import (
	"context"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
)

// Issue 10, defect 10: a panic inside the Checkpointer's own transaction (recovered by the caller) must
// not leave the transaction open, holding its locks and its connection: txOnce rolls back on the way out.
func TestTxOnceRollsBackOnPanic(t *testing.T) {
	t.Parallel()
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mock.ExpectBegin()
	mock.ExpectRollback()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_ = c.txOnce(context.Background(), func(DBTX) error { panic("boom") })
	}()
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatalf("after a panic inside the transaction: %v", err)
	}
}
