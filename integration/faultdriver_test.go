package integration

// A fault-injecting database/sql driver: it wraps pgx's stdlib driver or lib/pq, talks to the real
// PostgreSQL, and answers chosen statements (by the start of their SQL text and by occurrence) or COMMIT
// with an error of the wrapped driver's own type carrying a chosen SQLSTATE, so that pgcheckpoint's retry
// loops run end to end against a real server. Like the sqlmock tests, it replays OUR READING of
// CockroachDB's documentation (docs/cockroachdb.md): where and with which SQLSTATE a cluster reports
// a conflict (40001) or an unknown commit outcome (40003). Whether a real cluster raises them exactly
// there is what integration.TestRealCockroach, on a real cluster, is for.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
)

// faultRule makes statements that start with prefix ("COMMIT" for the commit) fail: it lets the first
// skip matching ones through, then fails the next times ones with SQLSTATE code.
type faultRule struct {
	prefix      string
	skip, times int
	code        string
	// commitFirst, for COMMIT only: commit for real, then report the error (a commit that happened but
	// whose outcome the client was not told). Without it an injected COMMIT error rolls back.
	commitFirst bool
	seen        int
}

// faultPlan holds the rules of one pool and the log of what the pool sent: "BEGIN", "COMMIT",
// "ROLLBACK" and the first words of each statement, "!" marking the injected failures.
type faultPlan struct {
	mu    sync.Mutex
	rules []*faultRule
	log   []string
}

// set replaces the rules and clears the log.
func (p *faultPlan) set(rules ...faultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for i := range rules {
		p.rules = append(p.rules, &rules[i])
	}
	p.log = nil
}

// fire logs a statement and returns the rule that fails it, if any.
func (p *faultPlan) fire(stmt string) *faultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	text := strings.TrimSpace(stmt)
	entry := strings.Join(strings.Fields(text), " ")
	if len(entry) > 24 {
		entry = entry[:24]
	}
	for _, r := range p.rules {
		if !strings.HasPrefix(text, r.prefix) {
			continue
		}
		r.seen++
		if r.seen > r.skip && r.seen <= r.skip+r.times {
			p.log = append(p.log, "!"+entry)
			return r
		}
	}
	p.log = append(p.log, entry)
	return nil
}

// sent returns the log so far.
func (p *faultPlan) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// countSent counts log entries that start with prefix.
func (p *faultPlan) countSent(prefix string) int {
	n := 0
	for _, e := range p.sent() {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// shape returns the log with pgcheckpoint's statements named by what they do: INSERT (the put's
// insert), DELETE, UPDATE, EXISTS (the existence check), DDL; "!" marks an injected failure.
func (p *faultPlan) shape() string {
	var out []string
	for _, e := range p.sent() {
		mark := ""
		if strings.HasPrefix(e, "!") {
			mark, e = "!", e[1:]
		}
		switch {
		case strings.HasPrefix(e, "WITH head AS"):
			e = "INSERT"
		case strings.HasPrefix(e, "DELETE FROM"):
			e = "DELETE"
		case strings.HasPrefix(e, "UPDATE"):
			e = "UPDATE"
		case strings.HasPrefix(e, "SAVEPOINT"), strings.HasPrefix(e, "RELEASE SAVEPOINT"), strings.HasPrefix(e, "ROLLBACK TO SAVEPOINT"):
			e = strings.SplitN(e, " pgch", 2)[0] // the recorded text is cut at 25 bytes
		case strings.HasPrefix(e, "SELECT EXISTS"):
			e = "CATALOG"
		case strings.HasPrefix(e, "SELECT 1 FROM"):
			e = "STORED" // a put's look-up of its id after an unknown outcome
		case strings.HasPrefix(e, "SELECT checkpoint_id FRO"):
			e = "LOCK" // lockRows: every row of the thread, FOR UPDATE
		case strings.HasPrefix(e, "SELECT max(checkpoint_id"):
			e = "NEWEST"
		case strings.HasPrefix(e, "SELECT max_checkpoints_p"):
			e = "POLICY"
		case strings.HasPrefix(e, "CREATE"), strings.HasPrefix(e, "ALTER"):
			e = "DDL"
		}
		out = append(out, mark+e)
	}
	return strings.Join(out, " ")
}

// faultDriver is one wrapped driver: its name in the test matrix, a connector for a DSN, and how it
// builds an error of its own type.
type faultDriver struct {
	name    string
	connect func(dsn string) (driver.Connector, error)
	state   func(code string) error
}

var faultDrivers = []faultDriver{
	{
		name: "pgx",
		connect: func(dsn string) (driver.Connector, error) {
			return stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
		},
		state: func(code string) error {
			return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "restart transaction: injected by the fault driver"}
		},
	},
	{
		name:    "pq",
		connect: func(dsn string) (driver.Connector, error) { return pq.NewConnector(dsn) },
		state: func(code string) error {
			return &pq.Error{Severity: "ERROR", Code: pq.ErrorCode(code), Message: "restart transaction: injected by the fault driver"}
		},
	},
}

// openFaulty returns a bounded pool on dsn through the wrapped driver, and the plan that steers it.
func (fd faultDriver) openFaulty(t testing.TB, dsn string) (*sql.DB, *faultPlan) {
	t.Helper()
	base, err := fd.connect(dsn)
	if err != nil {
		t.Fatalf("%s connector: %v", fd.name, err)
	}
	plan := &faultPlan{}
	db := sql.OpenDB(&faultConnector{base: base, plan: plan, state: fd.state})
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	t.Cleanup(func() { db.Close() })
	return db, plan
}

type faultConnector struct {
	base  driver.Connector
	plan  *faultPlan
	state func(code string) error
}

func (c *faultConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: conn, c: c}, nil
}

func (c *faultConnector) Driver() driver.Driver { return c.base.Driver() }

// faultConn forwards everything to the wrapped connection; ExecContext, QueryContext and COMMIT may be
// answered by an injected error instead. Prepared statements are passed through untouched (pgcheckpoint
// sends none through database/sql's Prepare).
type faultConn struct {
	driver.Conn
	c *faultConnector
}

func (fc *faultConn) injected(stmt string) error {
	if r := fc.c.plan.fire(stmt); r != nil {
		return fc.c.state(r.code)
	}
	return nil
}

func (fc *faultConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := fc.injected(query); err != nil {
		return nil, err
	}
	if e, ok := fc.Conn.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (fc *faultConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := fc.injected(query); err != nil {
		return nil, err
	}
	if q, ok := fc.Conn.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (fc *faultConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if p, ok := fc.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return fc.Conn.Prepare(query)
}

func (fc *faultConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	fc.c.plan.fire("BEGIN")
	b, ok := fc.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, fmt.Errorf("fault driver: %T cannot BeginTx", fc.Conn)
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &faultTx{Tx: tx, fc: fc}, nil
}

func (fc *faultConn) Ping(ctx context.Context) error {
	if p, ok := fc.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (fc *faultConn) ResetSession(ctx context.Context) error {
	if r, ok := fc.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (fc *faultConn) IsValid() bool {
	if v, ok := fc.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (fc *faultConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := fc.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type faultTx struct {
	driver.Tx
	fc *faultConn
}

func (tx *faultTx) Commit() error {
	r := tx.fc.c.plan.fire("COMMIT")
	if r == nil {
		return tx.Tx.Commit()
	}
	if r.commitFirst {
		if err := tx.Tx.Commit(); err != nil {
			return err
		}
	} else {
		_ = tx.Tx.Rollback()
	}
	return tx.fc.c.state(r.code)
}

func (tx *faultTx) Rollback() error {
	tx.fc.c.plan.fire("ROLLBACK")
	return tx.Tx.Rollback()
}
