package pgcheckpoint

import (
	"context"
	"database/sql"
	"sync"
)

// PreparedDB is a DBTX over a *sql.DB that prepares each distinct statement once and reuses it
// (database/sql prepares it again on each connection that runs it). Pass it to New in place of the
// *sql.DB: the Checkpointer then skips the parse and plan of every call, and the server switches to a
// cached generic plan after a few executions.
//
// It pays off with lib/pq, which prepares an unnamed statement for every parameterised call (two round
// trips and a fresh plan each time); pgx's stdlib driver caches prepared statements by itself, so there
// it changes little. Named prepared statements do not survive a transaction-pooling proxy such as
// PgBouncer in transaction mode (before its max_prepared_statements support): keep the plain *sql.DB
// there.
//
// Statements run inside a caller's transaction (WithTx) and the Checkpointer's own transactions are not
// prepared. Close releases the prepared statements; it does not close the *sql.DB.
//
// database/sql sends a prepared statement again on another connection when the driver answers
// driver.ErrBadConn, which lib/pq does after the statement was sent; a put's statement is still sent at
// most once, because its checkpoint id refuses to be sent twice (sendOnce in put.go), on a PreparedDB as on
// a *sql.DB.
type PreparedDB struct {
	db    *sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// Prepared returns a PreparedDB over db.
func Prepared(db *sql.DB) *PreparedDB {
	return &PreparedDB{db: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement for query, preparing it on first use. A failed prepare is not
// kept: the caller runs the query unprepared and gets the server's error from that.
func (p *PreparedDB) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.RLock()
	s := p.stmts[query]
	p.mu.RUnlock()
	if s != nil {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s = p.stmts[query]; s != nil {
		return s
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.stmts[query] = s
	return s
}

// ExecContext runs query as a prepared statement.
func (p *PreparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, query, args...)
}

// QueryContext runs query as a prepared statement.
func (p *PreparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query as a prepared statement.
func (p *PreparedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// BeginTx starts a transaction on the underlying *sql.DB, so the Checkpointer can still run its own.
func (p *PreparedDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return p.db.BeginTx(ctx, opts)
}

// Close releases every prepared statement. The PreparedDB stays usable and prepares again on demand.
func (p *PreparedDB) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for q, s := range p.stmts {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
		delete(p.stmts, q)
	}
	return first
}
