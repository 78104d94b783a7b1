package pgcheckpoint_test

// database/sql sends a statement a second time, on another connection, when the driver answers
// driver.ErrBadConn, and lib/pq answers so after the statement was sent (an EOF, a FATAL from the
// server): the first copy may have committed. These tests run a put against an in-process driver that
// answers the put's statement with driver.ErrBadConn, on a *sql.DB and on a PreparedDB (whose *sql.Stmt
// database/sql re-sends the same way), and check that the statement reached the driver once: the put
// looks its id up instead.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// badConnDriver answers the put's statement with driver.ErrBadConn and the stored look-up with found; it
// counts what reached it. With failConnects > 0, that many connection attempts fail first.
type badConnDriver struct {
	mu           sync.Mutex
	puts, looks  int
	failConnects int
}

func (d *badConnDriver) Connect(context.Context) (driver.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failConnects > 0 {
		d.failConnects--
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	return badConn{d}, nil
}

func (d *badConnDriver) Driver() driver.Driver { return fakeDriver{} }

func (d *badConnDriver) counts() (puts, looks int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.puts, d.looks
}

type badConn struct{ d *badConnDriver }

func (c badConn) Prepare(query string) (driver.Stmt, error) { return badStmt{c, query}, nil }
func (badConn) Close() error                                { return nil }
func (badConn) Begin() (driver.Tx, error)                   { return fakeTx{}, nil }

func (c badConn) QueryContext(_ context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	switch {
	case strings.HasPrefix(query, "WITH head"):
		c.d.puts++
		return nil, driver.ErrBadConn
	case strings.HasPrefix(query, "SELECT EXISTS (SELECT 1 FROM pg_tables"):
		return &fakeRows{cols: []string{"exists"}, row: []driver.Value{false}}, nil // no retention policy recorded
	case strings.HasPrefix(query, "SELECT 1 FROM"):
		c.d.looks++
		return &fakeRows{cols: []string{"?column?"}, row: []driver.Value{int64(1)}}, nil
	}
	return nil, errors.New("unexpected statement: " + query)
}

// badStmt is a prepared statement of badConn: it answers as the connection does.
type badStmt struct {
	c     badConn
	query string
}

func (badStmt) Close() error  { return nil }
func (badStmt) NumInput() int { return -1 }
func (badStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("not used")
}
func (badStmt) Query([]driver.Value) (driver.Rows, error) { return nil, errors.New("not used") }
func (s badStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, args)
}

// TestPutNeverResent: on a *sql.DB and on a PreparedDB, a put whose statement the driver answers with
// driver.ErrBadConn is not sent again by database/sql (it would have been, twice more, before the fix):
// the put sees an unknown outcome, looks its id up, and, found, returns it.
func TestPutNeverResent(t *testing.T) {
	for _, prepared := range []bool{false, true} {
		name := map[bool]string{false: "sql.DB", true: "PreparedDB"}[prepared]
		t.Run(name, func(t *testing.T) {
			d := &badConnDriver{}
			db := sql.OpenDB(d)
			defer db.Close()
			var q pgcheckpoint.DBTX = db
			if prepared {
				p := pgcheckpoint.Prepared(db)
				defer p.Close()
				q = p
			}
			cp, err := pgcheckpoint.New(q, pgcheckpoint.Options{})
			if err != nil {
				t.Fatal(err)
			}
			id, err := cp.Put(context.Background(), "thread", []byte(resendSnap))
			puts, looks := d.counts()
			if err != nil || id == "" {
				t.Fatalf("Put = %q, %v; want the id the look-up found", id, err)
			}
			if puts != 1 || looks != 1 {
				t.Fatalf("the put's statement reached the driver %d times and the look-up %d times; want 1 and 1", puts, looks)
			}
		})
	}
}

// TestPutNotSentIsNotUnknown: an error before the put's statement reached the driver (no connection could
// be had) wrote nothing: the put runs again after a backoff, and is no unknown outcome.
func TestPutNotSentIsNotUnknown(t *testing.T) {
	d := &badConnDriver{}
	db := sql.OpenDB(d)
	defer db.Close()
	db.SetMaxIdleConns(0) // every statement connects anew
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A first put reads the table's retention policy; after it, only the put's own statements are sent.
	if _, err := cp.Put(context.Background(), "thread", []byte(resendSnap)); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.puts, d.looks, d.failConnects = 0, 0, 1
	d.mu.Unlock()
	// The first connection attempt fails; the second attempt connects, and the put statement then
	// answers ErrBadConn: that one is unknown and looked up.
	if _, err := cp.Put(context.Background(), "thread", []byte(resendSnap)); err != nil {
		t.Fatalf("Put after one failed connection attempt: %v", err)
	}
	if puts, looks := d.counts(); puts != 1 || looks != 1 {
		t.Fatalf("sent the put %d times and the look-up %d times; want 1 and 1", puts, looks)
	}

	// Every connection attempt fails (none is kept idle): nothing was ever sent, so the error is not
	// ErrOutcomeUnknown.
	d.mu.Lock()
	d.failConnects = 100
	d.mu.Unlock()
	_, err = cp.Put(context.Background(), "thread", []byte(resendSnap))
	if !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) {
		t.Fatalf("Put that never reached the server = %v; want ErrRetriesExhausted, not ErrOutcomeUnknown", err)
	}
}

// resendSnap is the snapshot these tests put.
const resendSnap = `{"version": 2, "messages": []}`
