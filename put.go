package pgcheckpoint

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// A put runs attempts until one stores the checkpoint or a verdict ends it. Each attempt is one statement
// on PostgreSQL (insert and trim together) or one transaction on CockroachDB (insert, then trim); either
// way the trim is atomic with the insert. What an attempt reports is judged by judge, what its error
// means by classify (both pure, table-tested), budget bounds how often the loop may go round, and an
// attempt whose outcome is unknown is settled by settle, which looks the id up and never stores it again.

// putRequest is one call of Put or PutAfter, validated.
type putRequest struct {
	threadID string
	doc      json.RawMessage
	facts    snapshotFacts
	fence    *string // nil: none; "": the thread must be empty; else the head the new row must follow
	cap      int     // the retention cap to trim to; 0: none
	budget   int64   // the byte budget to trim to; 0: none
	// key seals what each attempt stores (its id is in the binding, so each attempt seals anew); its
	// aead is nil without encryption.
	key  Key
	aead cipher.AEAD
	// chainKey keys a delta put's chain hashes under key (chainKeyOf).
	chainKey []byte
}

// stored is what an attempt of req with checkpoint id stores in a full table's row: the snapshot, or
// its envelope bound to the row.
func (c *Checkpointer) stored(req putRequest, id string) json.RawMessage {
	if req.aead == nil {
		return req.doc
	}
	return sealWith(req.key, req.aead, c.bind(bindRow, req.threadID, id, ""), req.doc)
}

// putReport is what one attempt's statement returned (see putReport in statements.go).
type putReport struct {
	newSeq     sql.NullInt64  // the new row's number; NULL when nothing was inserted
	headID     sql.NullString // the newest id in the statement's snapshot; NULL for an empty thread
	headSeq    sql.NullInt64  // the snapshot's number of that row
	locked     bool           // the row could be locked: nothing deleted it since the snapshot
	lockedSeq  sql.NullInt64  // its committed number when locked
	unnumbered bool           // the thread has rows without a number (written by TypeScript), or (byte budget) its head has no total
	mine       bool           // this put's id is stored already (see headCTE's ON CONFLICT)
	trimmed    int64          // rows the trim deleted
}

// verdict is what an attempt that returned without error means for the put.
type verdict int

const (
	verdictStored     verdict = iota // the checkpoint is in the table: done
	verdictConflict                  // the fence does not name the head: ErrConflict
	verdictEmpty                     // the thread is empty: its first row takes the first-row path
	verdictRenumber                  // rows without numbers (or, with a byte budget, a head without a total): renumber the thread, then again
	verdictLost                      // another writer moved the thread since the snapshot: again
	verdictFollowHead                // the head's id is not below the new id: again with an id after it
)

// judge decides what an attempt's report means for a put of id with the given fence.
func judge(r putReport, id string, fence *string) verdict {
	head := r.headID.String
	switch {
	case r.newSeq.Valid || r.mine:
		return verdictStored
	case fence != nil && *fence != head:
		return verdictConflict
	case !r.headID.Valid:
		return verdictEmpty
	case r.unnumbered:
		return verdictRenumber
	case !r.locked || r.lockedSeq != r.headSeq:
		return verdictLost
	case head >= id:
		return verdictFollowHead
	}
	// Every condition of the insert held, yet nothing was inserted: only a change after the snapshot
	// can explain it, so it counts as a lost round.
	return verdictLost
}

// failure is what an attempt's error means for the put.
type failure int

const (
	failureFinal     failure = iota // return the error
	failureTransient                // nothing was written (40001, 40P01, or see notWritten): again after a backoff
	failureTaken                    // 23505: another writer took the thread's next number first
	failureUnknown                  // the attempt may have committed, or may still: settle looks the id up
)

// classify decides what an attempt's error means. ctxDone reports that the put's context has ended: an
// error then, without the server's word (a SQLSTATE) that the statement failed, leaves the outcome
// unknown, because the statement may have been sent and may still commit (pgx answers a deadline at once
// and cancels on the server asynchronously). An error marked notWritten is never unknown: nothing of that
// attempt can commit.
func classify(err error, ctxDone bool) failure {
	code := SQLState(err)
	unknown := code == stateAmbiguousCommit || connLost(err) || errors.Is(err, errResent) || (ctxDone && code == "")
	switch {
	case unknown && !errors.As(err, new(notWritten)):
		return failureUnknown
	case ctxDone:
		return failureFinal // the server cancelled the statement (57014), or nothing was sent: nothing was written
	case unknown, Retryable(err):
		return failureTransient
	case code == stateUniqueViolation:
		return failureTaken
	}
	return failureFinal
}

// notWritten marks an attempt's error that provably wrote nothing, whatever the error says: it came
// before the statement was handed to the driver (see sendOnce.check), from BEGIN, or from a statement of
// the attempt's own transaction before COMMIT was sent; a transaction never asked to commit cannot
// commit, even if its backend runs on after the connection broke. Only a COMMIT's error, or a lone
// statement's (which commits by itself), can leave the outcome unknown.
type notWritten struct{ err error }

func (e notWritten) Error() string { return e.err.Error() }
func (e notWritten) Unwrap() error { return e.err }

// errResent is what sendOnce answers when asked for its value a second time.
var errResent = errors.New("database/sql was about to send the put's statement a second time after driver.ErrBadConn; refused")

// sendOnce is the new checkpoint id as a statement argument that can be sent once. database/sql sends a
// statement again, on another connection and behind the caller's back, when the driver answers
// driver.ErrBadConn, and lib/pq does so after the statement was sent (an EOF, a FATAL from the server):
// the first copy may have committed, been read and deleted (or trimmed) by others, and the second copy
// would store it again. database/sql (lib/pq) or the driver (pgx) calls Value once for each send, right
// before it, whatever the DBTX (a *sql.DB, a PreparedDB's *sql.Stmt, a caller's wrapper), so a second
// call means a re-send, and failing it stops that send before anything goes out: the put loop sees an
// unknown outcome instead (errResent) and settles it. Value never called means nothing was sent.
type sendOnce struct {
	id   string
	sent atomic.Bool
}

// Value implements driver.Valuer.
func (a *sendOnce) Value() (driver.Value, error) {
	if a.sent.Swap(true) {
		return nil, errResent
	}
	return a.id, nil
}

// String is the id, for a wrapper that logs or records a put's arguments: it must not call Value,
// which would use up the one send.
func (a *sendOnce) String() string { return a.id }

// check marks err notWritten when the statement never reached the driver (Value was never called).
func (a *sendOnce) check(err error) error {
	if err != nil && !a.sent.Load() {
		return notWritten{err}
	}
	return err
}

// budget bounds a put's attempts. Rounds lost to other writers' progress (losses) run again at once and
// are bounded by maxLosses: each means another put committed, so the thread moves on; a renumbering of
// rows without a number counts as one too. Failures (40001, a broken connection before anything could
// commit, a failed renumbering, a failed look-up of an unknown outcome) wait a jittered backoff and are
// bounded by Options.MaxAttempts.
type budget struct {
	failures, maxFailures int
	losses                int
}

// maxLosses bounds how often one put may lose the thread's next position to other writers.
const maxLosses = 100

// fail counts a failed attempt and waits before the next; it returns ErrRetriesExhausted (or ctx's
// error) when no attempt is left.
func (b *budget) fail(ctx context.Context, cause error) error {
	b.failures++
	if b.failures >= b.maxFailures {
		return fmt.Errorf("%d failed attempts: %w: %w", b.failures, ErrRetriesExhausted, cause)
	}
	if err := backoff(ctx, b.failures+1); err != nil {
		return fmt.Errorf("%w (while waiting to retry after: %v)", err, cause)
	}
	return nil
}

// lose counts a lost round; it returns ErrRetriesExhausted when the thread kept moving too often.
// contended rounds (serialisation failures of a first put, where another writer won) also wait.
func (b *budget) lose(ctx context.Context, cause error, wait bool) error {
	b.losses++
	if b.losses > maxLosses {
		return fmt.Errorf("lost the thread's next position %d times: %w: %w", b.losses, ErrRetriesExhausted, cause)
	}
	if wait {
		if err := backoff(ctx, min(b.losses+1, 6)); err != nil {
			return fmt.Errorf("%w (while waiting to retry after: %v)", err, cause)
		}
	}
	return nil
}

// put runs the put path and tells the Observer.
func (c *Checkpointer) put(ctx context.Context, op Op, threadID string, snapshot []byte, fence *string) (string, error) {
	defer c.hold()()
	ev := Event{Op: op, ThreadID: threadID, Start: time.Now(), Bytes: len(snapshot)}
	id, err := c.putLoop(ctx, threadID, snapshot, fence, &ev)
	checkpointID := ""
	if fence != nil {
		checkpointID = *fence
	}
	err = fail(op, threadID, checkpointID, c.fullMismatch(ctx, string(op), err))
	ev.Err = err
	c.observe(ctx, ev)
	return id, err
}

// putLoop validates the request, then runs attempts until one stores the checkpoint or a verdict or
// error ends the put.
func (c *Checkpointer) putLoop(ctx context.Context, threadID string, snapshot []byte, fence *string, ev *Event) (string, error) {
	req, err := c.newPutRequest(ctx, threadID, snapshot, fence)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := c.checkCallerIsolation(ctx); err != nil {
		return "", err
	}
	if err := c.checkStorage(ctx, "put"); err != nil {
		return "", err
	}
	b := budget{maxFailures: c.attempts}
	id := c.ids.next()
	for {
		ev.Attempts++
		r, first, err := c.attempt(ctx, req, id.String())
		var done bool
		if err != nil {
			done, err = c.afterError(ctx, &b, req, &id, first, err)
		} else {
			ev.Rows = int(r.trimmed)
			done, err = c.afterReport(ctx, &b, req, &id, r)
		}
		switch {
		case err != nil:
			return "", err
		case done:
			return id.String(), nil
		}
	}
}

// afterError decides what the put does after an attempt that failed with err: done (its checkpoint is
// stored after all), an error that ends the put, or neither: again, with a new *id.
func (c *Checkpointer) afterError(ctx context.Context, b *budget, req putRequest, id *uuid.UUID, first bool, err error) (bool, error) {
	switch classify(err, ctx.Err() != nil) {
	case failureUnknown:
		if c.inTx {
			// The caller's transaction has not committed: whatever this attempt did goes with it.
			return false, ctxOr(ctx, err)
		}
		return c.settle(ctx, b, req.threadID, id.String(), err)
	case failureTaken:
		if req.fence != nil || c.inTx {
			return false, &headMoved{cause: fmt.Errorf("another writer stored a checkpoint in the thread first: %w: %w", ErrConflict, err)}
		}
		err = b.lose(ctx, err, false)
	case failureTransient:
		if c.inTx {
			return false, err // the caller's loop runs its whole transaction again
		}
		if first && Retryable(err) {
			// A first put at SERIALIZABLE lost to another transaction: progress elsewhere.
			err = b.lose(ctx, err, true)
		} else {
			err = b.fail(ctx, err)
		}
	default:
		return false, ctxOr(ctx, err)
	}
	*id = c.ids.next() // the winner most likely took a newer id than ours
	return false, err
}

// afterReport decides what the put does after an attempt that returned r: done, an error that ends the
// put, or neither: again (with *id moved past the head when the head is not below it).
func (c *Checkpointer) afterReport(ctx context.Context, b *budget, req putRequest, id *uuid.UUID, r putReport) (bool, error) {
	switch judge(r, id.String(), req.fence) {
	case verdictStored:
		return true, nil
	case verdictConflict:
		return false, conflict(r.headID.String, *req.fence)
	case verdictEmpty:
		// The first-row attempt found the thread filled by another writer: again.
		return false, b.lose(ctx, errors.New("another writer stored the thread's first checkpoint"), false)
	case verdictRenumber:
		if err := c.renumber(ctx, req.threadID); err != nil {
			if c.inTx || !(Retryable(err) || SQLState(err) == stateUniqueViolation) {
				return false, ctxOr(ctx, err)
			}
			return false, b.fail(ctx, err)
		}
		// A renumbering that worked is a round too: a writer that keeps adding rows without a number must
		// not keep the put going round for ever.
		return false, b.lose(ctx, errors.New("the thread kept getting rows without a number"), false)
	case verdictLost:
		return false, b.lose(ctx, errors.New("the thread moved during the put"), false)
	}
	// verdictFollowHead: again, with an id after the head.
	if err := b.lose(ctx, fmt.Errorf("the thread's newest id %s is not below the new id %s", r.headID.String, id), false); err != nil {
		return false, err
	}
	floor, ok := parseID(r.headID.String)
	if !ok {
		return false, fmt.Errorf("the thread's newest id %q is not a UUID, so no id can follow it: %w", r.headID.String, ErrInvalidCheckpointID)
	}
	next, err := c.ids.nextAfter(floor)
	if err == nil {
		*id = next
	}
	return false, err
}

// settle finds out whether the attempt that ended in cause, whose outcome is unknown, stored id. It looks
// the id up once (again, after a backoff and within the budget, only while the look-up itself fails):
// found, that attempt committed and the put is done. Not found, the put ends with ErrOutcomeUnknown; it
// never runs the insert again, because "not found" cannot tell an attempt that never committed from one
// that committed and was deleted, trimmed or pruned since (another client may have read it and deleted
// it: a second insert would bring a deleted checkpoint back, or store the snapshot twice under a newer
// id), nor from one that still runs on the server and commits later (a lost connection does not stop its
// backend until the backend writes to the socket). See docs/checker.md, "Unknown outcomes".
//
// It waits a short jittered backoff before the first look-up: a statement still running on the server
// when the connection broke mostly commits within it, and is then found.
func (c *Checkpointer) settle(ctx context.Context, b *budget, threadID, id string, cause error) (bool, error) {
	if err := backoff(ctx, 2); err != nil {
		return false, fmt.Errorf("checkpoint %s: %w: %w", id, ErrOutcomeUnknown, ctxOr(ctx, cause))
	}
	for {
		var one int
		err := c.db.QueryRowContext(ctx, c.q.stored, threadID, id).Scan(&one)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("checkpoint %s: %w: not stored after an attempt that may commit yet: %w", id, ErrOutcomeUnknown, cause)
		case classify(err, ctx.Err() != nil) == failureFinal:
			return false, fmt.Errorf("checkpoint %s: %w: %w (and looking it up: %w)", id, ErrOutcomeUnknown, cause, err)
		}
		if err := b.fail(ctx, err); err != nil {
			return false, fmt.Errorf("checkpoint %s: %w: %w (after an attempt that ended in: %v)", id, ErrOutcomeUnknown, err, cause)
		}
	}
}

// newPutRequest checks the inputs of a put before anything is sent, then learns the cap and byte budget
// to trim to (the table's policy, read at most once a minute).
func (c *Checkpointer) newPutRequest(ctx context.Context, threadID string, snapshot []byte, fence *string) (putRequest, error) {
	if err := checkThread(threadID); err != nil {
		return putRequest{}, err
	}
	facts, err := inspectSnapshot(snapshot, c.maxBytes)
	if err != nil {
		return putRequest{}, err
	}
	if fence != nil && *fence != "" {
		canon, err := checkID("expected head", *fence)
		if err != nil {
			return putRequest{}, err
		}
		fence = &canon
	}
	if err := ctx.Err(); err != nil {
		return putRequest{}, err
	}
	l, err := c.limits(ctx)
	if err != nil {
		return putRequest{}, err
	}
	// As json.RawMessage, not []byte: pgx's exec and simple-protocol modes (the ones that work through
	// PgBouncer's transaction pooling) send a []byte as bytea, which $3::text would turn into hex.
	req := putRequest{threadID: threadID, doc: json.RawMessage(snapshot), facts: facts, fence: fence, cap: l.cap, budget: l.budget}
	if c.seal != nil {
		if req.key, req.aead, err = c.seal.current(ctx); err != nil {
			return putRequest{}, err
		}
		req.chainKey = chainKeyOf(req.key)
	}
	return req, nil
}

// attempt makes one attempt and never retries. first reports that it took the first-row path.
func (c *Checkpointer) attempt(ctx context.Context, req putRequest, id string) (r putReport, first bool, err error) {
	if c.delta != nil {
		return c.deltaAttempt(ctx, req, id)
	}
	r, err = c.appendRow(ctx, req, id)
	if err != nil || r.headID.Valid || r.mine || (req.fence != nil && *req.fence != "") {
		return r, false, err
	}
	seq, err := c.firstRow(ctx, req, id)
	r.newSeq = seq
	return r, true, err
}

// appendRow appends to a thread that has rows: one statement, or (dialects without oneStatementPut, with
// retention) one transaction holding the insert and its trim. A byte budget takes the statements that
// trim by bytes (and by the cap, when there is one).
func (c *Checkpointer) appendRow(ctx context.Context, req putRequest, id string) (putReport, error) {
	var r putReport
	var fenceArg, capArg, budgetArg any
	if req.fence != nil {
		fenceArg = *req.fence
	}
	if req.cap > 0 {
		capArg = int64(req.cap)
	}
	if req.budget > 0 {
		budgetArg = req.budget
	}
	scan := func(row *sql.Row) error {
		return row.Scan(&r.newSeq, &r.headID, &r.headSeq, &r.locked, &r.lockedSeq, &r.unnumbered, &r.mine, &r.trimmed)
	}
	f := req.facts
	arg := &sendOnce{id: id}
	doc := c.stored(req, id)
	if c.facts.oneStatementPut {
		if req.budget > 0 {
			err := scan(c.db.QueryRowContext(ctx, c.q.putBytes, req.threadID, arg, doc, f.version, f.size, fenceArg, capArg, budgetArg))
			return r, arg.check(err)
		}
		err := scan(c.db.QueryRowContext(ctx, c.q.put, req.threadID, arg, doc, f.version, f.size, fenceArg, capArg))
		return r, arg.check(err)
	}
	insertSQL := c.q.insert
	if req.budget > 0 {
		insertSQL = c.q.insertBytes
	}
	insert := func(q DBTX) error {
		return scan(q.QueryRowContext(ctx, insertSQL, req.threadID, arg, doc, f.version, f.size, fenceArg))
	}
	if req.cap == 0 && req.budget == 0 {
		// Without retention the insert is the whole put: one statement, which CockroachDB retries on the
		// server by itself, so it gets no transaction of its own.
		return r, arg.check(insert(c.db))
	}
	err := c.ownTx(ctx, c.facts.ownIsolation, func(q DBTX) error {
		if err := insert(q); err != nil || !r.newSeq.Valid {
			return err
		}
		var res sql.Result
		var err error
		if req.budget > 0 {
			res, err = q.ExecContext(ctx, c.q.trimBytes, req.threadID, r.newSeq.Int64, capArg, budgetArg)
		} else {
			bound := r.newSeq.Int64 - int64(req.cap)
			if bound < 1 {
				return nil
			}
			res, err = q.ExecContext(ctx, c.q.trim, req.threadID, bound)
		}
		if err == nil {
			r.trimmed, _ = res.RowsAffected()
		}
		return err
	})
	return r, err
}

// ownTx runs fn in a transaction of the put's own at level (txAt) and marks notWritten every error that
// cannot come from a commit: BEGIN's, and fn's (the transaction was never asked to commit). Only the
// COMMIT's own error leaves the outcome unknown.
func (c *Checkpointer) ownTx(ctx context.Context, level sql.IsolationLevel, fn func(q DBTX) error) error {
	began := false
	err := c.txAt(ctx, level, func(q DBTX) error {
		began = true
		if err := fn(q); err != nil {
			return notWritten{err}
		}
		return nil
	})
	if err != nil && !began {
		return notWritten{err}
	}
	return err
}

// firstRow stores the first row of a thread that was empty, numbered 1, if it is still empty. Two first
// puts must not both succeed, and a put whose snapshot still shows the thread empty after others filled
// and trimmed it must not reuse number 1, so the check and the insert run under a transaction-level lock
// on the thread (advisory locks) or at SERIALIZABLE. The first row never needs a trim. The number is
// NULL when the thread is no longer empty.
func (c *Checkpointer) firstRow(ctx context.Context, req putRequest, id string) (sql.NullInt64, error) {
	var seq sql.NullInt64
	f := req.facts
	err := c.ownTx(ctx, c.facts.firstRowIsolation, func(q DBTX) error {
		if c.facts.advisoryLocks {
			if _, err := q.ExecContext(ctx, c.q.lockFirst, req.threadID); err != nil {
				return err
			}
		}
		err := q.QueryRowContext(ctx, c.q.first, req.threadID, id, c.stored(req, id), f.version, f.size).Scan(&seq)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
	return seq, err
}

// renumber gives the thread's rows fresh dense numbers (rows the TypeScript package wrote have none),
// holding every row's lock so that no put appends or trims meanwhile.
func (c *Checkpointer) renumber(ctx context.Context, threadID string) error {
	return c.txOnce(ctx, func(q DBTX) error {
		if err := c.lockThreadRows(ctx, q, threadID); err != nil {
			return err
		}
		if err := c.sealThreadRows(ctx, q, threadID); err != nil { // rekey.go
			return err
		}
		_, err := q.ExecContext(ctx, c.q.renumber, threadID)
		return err
	})
}

// lockThreadRows locks every row of the thread, including rows other puts commit while it waits. It
// first takes the lock of the newest row, until the row it holds is the newest in a fresh snapshot: a put
// needs that lock to append, so from then on no put can append or trim until this transaction ends. Only
// then does it lock the older rows. In the other order it could hold an old row that a put's trim waits
// for while itself waiting for the head that put holds. A round that finds it holds a row that is no
// longer the newest (a put committed a newer row while it waited) gives its locks back (ROLLBACK TO
// SAVEPOINT) before it tries again: holding on to it, it could wait for the newest row held by another
// renumbering that waits for the row this one holds (both deadlocks were seen with two writers and two
// deleters of one thread). A put that read the thread before waits, and then sees the numbers changed
// and runs again. Rows that appear anyway (written by the TypeScript package, which takes no head lock)
// make it look again.
func (c *Checkpointer) lockThreadRows(ctx context.Context, q DBTX, threadID string) error {
	if _, err := q.ExecContext(ctx, c.q.savepoint); err != nil {
		return err
	}
	for round := 1; ; round++ {
		if round > maxLosses {
			return fmt.Errorf("the thread kept growing while its rows were being locked: %w", ErrRetriesExhausted)
		}
		if round > 1 {
			if _, err := q.ExecContext(ctx, c.q.rollbackToSavepoint); err != nil {
				return err
			}
		}
		var head sql.NullString
		err := q.QueryRowContext(ctx, c.q.lockNewest, threadID).Scan(&head)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		newest, err := c.newestID(ctx, q, threadID)
		if err != nil {
			return err
		}
		if newest > head.String {
			continue // a put committed a newer row while this one waited for the lock
		}
		held, err := c.lockRowsOnce(ctx, q, threadID)
		if err != nil {
			return err
		}
		if newest, err = c.newestID(ctx, q, threadID); err != nil {
			return err
		}
		if newest <= max(held, head.String) {
			_, err := q.ExecContext(ctx, c.q.releaseSavepoint)
			return err
		}
	}
}

// newestID is the thread's newest id in a fresh snapshot ("" when it is empty).
func (c *Checkpointer) newestID(ctx context.Context, q DBTX, threadID string) (string, error) {
	var newest sql.NullString
	err := q.QueryRowContext(ctx, c.q.newest, threadID).Scan(&newest)
	return newest.String, err
}

// lockRowsOnce locks the rows of the thread that its snapshot holds and returns the newest id among them.
func (c *Checkpointer) lockRowsOnce(ctx context.Context, q DBTX, threadID string) (string, error) {
	rows, err := q.QueryContext(ctx, c.q.lockRows, threadID)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	newest := ""
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		newest = max(newest, id)
	}
	return newest, rows.Err()
}

// ctxOr returns ctx's error, with err kept in the chain, when ctx has ended (lib/pq reports a cancelled
// statement as SQLSTATE 57014); otherwise err.
func ctxOr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}
