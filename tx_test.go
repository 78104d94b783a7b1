package pgcheckpoint

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"testing"
)

// txLog is a database/sql connector whose connections only begin, commit and roll back transactions,
// and record which: the transaction handling of txOnce with nothing else around it.
type txLog struct {
	mu     sync.Mutex
	events []string
}

func (l *txLog) record(e string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *txLog) Connect(context.Context) (driver.Conn, error) { return txLogConn{l}, nil }
func (l *txLog) Driver() driver.Driver                        { return nil }

type txLogConn struct{ l *txLog }

func (c txLogConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("txLog: no statements")
}
func (c txLogConn) Close() error              { return nil }
func (c txLogConn) Begin() (driver.Tx, error) { return c, c.l.record("begin") }
func (c txLogConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return c, c.l.record("begin")
}
func (c txLogConn) Commit() error   { return c.l.record("commit") }
func (c txLogConn) Rollback() error { return c.l.record("rollback") }

// Issue 10, defect 10: a panic inside the Checkpointer's own transaction (recovered by the caller) must
// not leave the transaction open, holding its locks and its connection: txOnce rolls back on the way out.
func TestTxOnceRollsBackOnPanic(t *testing.T) {
	t.Parallel()
	log := &txLog{}
	db := sql.OpenDB(log)
	defer db.Close()
	c, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_ = c.txOnce(context.Background(), func(DBTX) error { panic("boom") })
	}()
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.events) != 2 || log.events[0] != "begin" || log.events[1] != "rollback" {
		t.Fatalf("after a panic inside the transaction: %v, want [begin rollback]", log.events)
	}
}
