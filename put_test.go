package pgcheckpoint

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// The put loop's decisions are two pure functions: judge (what a report means) and classify (what an
// error means). These tables name every verdict and every failure, and the order of the rules where two
// could apply.

const (
	idOld  = "01900000-0000-7000-8000-000000000001" // the head
	idMine = "01900000-0000-7000-8000-000000000005" // the put's id, after the head
	idNew  = "01900000-0000-7000-8000-000000000009" // a head newer than the put's id
)

func seqOf(n int64) sql.NullInt64  { return sql.NullInt64{Int64: n, Valid: true} }
func idOf(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

// headAt is the report of an attempt that found head at number seq, locked it unchanged and inserted
// nothing: the starting point the cases below change one field of.
func headAt(head string, seq int64) putReport {
	return putReport{headID: idOf(head), headSeq: seqOf(seq), locked: true, lockedSeq: seqOf(seq)}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	fence := func(s string) *string { return &s }
	with := func(r putReport, f func(*putReport)) putReport { f(&r); return r }
	stored := with(headAt(idOld, 4), func(r *putReport) { r.newSeq = seqOf(5) })
	for _, tc := range []struct {
		name  string
		r     putReport
		fence *string
		want  verdict
	}{
		{"inserted", stored, nil, verdictStored},
		{"inserted after the named head", stored, fence(idOld), verdictStored},
		{"first row inserted (first-row path)", putReport{newSeq: seqOf(1)}, nil, verdictStored},
		{"first row inserted, fence empty", putReport{newSeq: seqOf(1)}, fence(""), verdictStored},
		// An earlier attempt whose outcome was unknown committed: done, whatever else the report says.
		{"mine: own id is the head", with(headAt(idMine, 5), func(r *putReport) { r.mine = true }), nil, verdictStored},
		{"mine beats a moved fence", with(headAt(idMine, 5), func(r *putReport) { r.mine = true }), fence(idOld), verdictStored},
		{"mine beats a newer head", with(headAt(idNew, 6), func(r *putReport) { r.mine = true }), nil, verdictStored},
		{"mine beats a lost lock", with(headAt(idNew, 6), func(r *putReport) { r.mine, r.locked = true, false }), nil, verdictStored},

		{"fence names another head", headAt(idNew, 4), fence(idOld), verdictConflict},
		{"fence empty, thread has a head", headAt(idOld, 4), fence(""), verdictConflict},
		{"fence names a head, thread empty", putReport{}, fence(idOld), verdictConflict},
		{"conflict beats renumber", with(headAt(idNew, 4), func(r *putReport) { r.unnumbered = true }), fence(idOld), verdictConflict},
		{"conflict beats a lost lock", with(headAt(idNew, 4), func(r *putReport) { r.locked = false }), fence(idOld), verdictConflict},

		{"empty thread", putReport{}, nil, verdictEmpty},
		{"empty thread, fence empty", putReport{}, fence(""), verdictEmpty},

		{"rows without a number", with(headAt(idOld, 4), func(r *putReport) { r.unnumbered = true }), nil, verdictRenumber},
		{"rows without a number, head unnumbered too", putReport{headID: idOf(idOld), locked: true, unnumbered: true}, nil, verdictRenumber},
		{"renumber beats a lost lock", with(headAt(idOld, 4), func(r *putReport) { r.unnumbered, r.locked = true, false }), nil, verdictRenumber},

		{"head deleted since the snapshot", with(headAt(idOld, 4), func(r *putReport) { r.locked, r.lockedSeq = false, sql.NullInt64{} }), nil, verdictLost},
		{"head renumbered since the snapshot", with(headAt(idOld, 4), func(r *putReport) { r.lockedSeq = seqOf(9) }), nil, verdictLost},
		{"lost beats follow-head", with(headAt(idNew, 4), func(r *putReport) { r.locked = false }), nil, verdictLost},
		{"every condition held yet nothing inserted", headAt(idOld, 4), nil, verdictLost},
		{"nothing inserted after the named head", headAt(idOld, 4), fence(idOld), verdictLost},

		{"head newer than the id", headAt(idNew, 4), nil, verdictFollowHead},
		{"head newer than the id, fence names it", headAt(idNew, 4), fence(idNew), verdictFollowHead},
	} {
		if got := judge(tc.r, idMine, tc.fence); got != tc.want {
			t.Errorf("%s: judge(%+v) = %d, want %d", tc.name, tc.r, got, tc.want)
		}
	}
}

// netErr is a network error without a SQLSTATE, as a broken TCP connection gives.
type netErr struct{}

func (netErr) Error() string   { return "read tcp: connection reset by peer" }
func (netErr) Timeout() bool   { return false }
func (netErr) Temporary() bool { return false }

var _ net.Error = netErr{}

// pgError and pqError stand for the drivers' error types (*pgconn.PgError, *pq.Error): both report their
// code through SQLState, the one method the library reads. That the real types do is tested with the
// drivers in internal/sqlmocktest.
type (
	pgError struct{ code string }
	pqError struct{ code string }
)

func (e *pgError) Error() string    { return "ERROR: injected (SQLSTATE " + e.code + ")" }
func (e *pgError) SQLState() string { return e.code }
func (e *pqError) Error() string    { return "pq: injected" }
func (e *pqError) SQLState() string { return e.code }

func TestClassify(t *testing.T) {
	t.Parallel()
	pgx := func(code string) error { return &pgError{code} }
	for _, tc := range []struct {
		name    string
		err     error
		ctxDone bool
		want    failure
	}{
		{"40003 ambiguous commit", pgx("40003"), false, failureUnknown},
		{"40003 wrapped", fmt.Errorf("commit: %w", pgx("40003")), false, failureUnknown},
		{"40003 with the context ended", pgx("40003"), true, failureUnknown},
		{"08006 connection failure", pgx("08006"), false, failureUnknown},
		{"08003 lib/pq", &pqError{"08003"}, false, failureUnknown},
		{"57P01 admin shutdown", pgx("57P01"), false, failureUnknown},
		{"57P02 crash shutdown", pgx("57P02"), false, failureUnknown},
		{"57P03 cannot connect now", pgx("57P03"), false, failureUnknown},
		{"driver.ErrBadConn", driver.ErrBadConn, false, failureUnknown},
		{"io.EOF", io.EOF, false, failureUnknown},
		{"io.ErrUnexpectedEOF wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), false, failureUnknown},
		{"network error", netErr{}, false, failureUnknown},
		{"deadline without a SQLSTATE (pgx)", context.DeadlineExceeded, true, failureUnknown},
		{"cancel without a SQLSTATE", errors.New("canceling query due to user request"), true, failureUnknown},

		{"57014 with the context ended (lib/pq)", &pqError{"57014"}, true, failureFinal},
		{"40001 with the context ended", pgx("40001"), true, failureFinal},
		{"23505 with the context ended", pgx("23505"), true, failureFinal},

		{"23505 unique violation", pgx("23505"), false, failureTaken},
		{"23505 lib/pq, wrapped", fmt.Errorf("x: %w", &pqError{"23505"}), false, failureTaken},

		{"40001 serialization failure", pgx("40001"), false, failureTransient},
		{"40P01 deadlock", pgx("40P01"), false, failureTransient},
		{"40001 lib/pq", &pqError{"40001"}, false, failureTransient},

		// database/sql's re-send after driver.ErrBadConn, refused by sendOnce: the first copy was sent.
		{"re-send refused", fmt.Errorf("sql: converting argument $2 type: %w", errResent), false, failureUnknown},
		// Errors that provably wrote nothing: never unknown, whatever they say.
		{"not written: connection lost before COMMIT", notWritten{pgx("08006")}, false, failureTransient},
		{"not written: network error before sending", notWritten{netErr{}}, false, failureTransient},
		{"not written: 40003 inside the transaction", notWritten{pgx("40003")}, false, failureTransient},
		{"not written: 40001", notWritten{pgx("40001")}, false, failureTransient},
		{"not written: 23505", notWritten{pgx("23505")}, false, failureTaken},
		{"not written: deadline", notWritten{context.DeadlineExceeded}, true, failureFinal},
		{"not written, wrapped", fmt.Errorf("x: %w", notWritten{driver.ErrBadConn}), false, failureTransient},

		{"42P01 undefined table", pgx("42P01"), false, failureFinal},
		{"57014 without the context ended (statement_timeout)", pgx("57014"), false, failureFinal},
		{"22P05 untranslatable", pgx("22P05"), false, failureFinal},
		{"plain error", errors.New("boom"), false, failureFinal},
		{"sql.ErrNoRows", sql.ErrNoRows, false, failureFinal},
	} {
		if got := classify(tc.err, tc.ctxDone); got != tc.want {
			t.Errorf("%s: classify(%v, ctxDone=%v) = %d, want %d", tc.name, tc.err, tc.ctxDone, got, tc.want)
		}
	}
}
