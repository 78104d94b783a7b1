package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A put runs attempts until one stores the checkpoint or a verdict ends it. Each attempt is one statement
// on PostgreSQL (insert and trim together) or one transaction on CockroachDB (insert, then trim); either
// way the trim is atomic with the insert. What an attempt reports is judged by judge, what its error
// means by classify (both pure, table-tested), and budget bounds how often the loop may go round.

// putRequest is one call of Put or PutAfter, validated.
type putRequest struct {
	threadID string
	doc      json.RawMessage
	facts    snapshotFacts
	fence    *string // nil: none; "": the thread must be empty; else the head the new row must follow
	cap      int     // the retention cap to trim to; 0: none
}

// putReport is what one attempt's statement returned (see putReport in statements.go).
type putReport struct {
	newSeq     sql.NullInt64  // the new row's number; NULL when nothing was inserted
	headID     sql.NullString // the newest id in the statement's snapshot; NULL for an empty thread
	headSeq    sql.NullInt64  // the snapshot's number of that row
	locked     bool           // the row could be locked: nothing deleted it since the snapshot
	lockedSeq  sql.NullInt64  // its committed number when locked
	unnumbered bool           // the thread has rows without a number (written by TypeScript)
	mine       bool           // this put's id is stored already: an earlier attempt committed
	trimmed    int64          // rows the trim deleted
}

// verdict is what an attempt that returned without error means for the put.
type verdict int

const (
	verdictStored     verdict = iota // the checkpoint is in the table: done
	verdictConflict                  // the fence does not name the head: ErrConflict
	verdictEmpty                     // the thread is empty: its first row takes the first-row path
	verdictRenumber                  // rows without numbers: renumber the thread, then again
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
	failureTransient                // 40001, 40P01: nothing was written; again after a backoff
	failureTaken                    // 23505: another writer took the thread's next number first
	failureUnknown                  // the attempt may have committed: 40003, a broken connection, ctx ended
)

// classify decides what an attempt's error means. ctxDone reports that the put's context has ended: an
// error then, without the server's word (a SQLSTATE) that the statement failed, leaves the outcome
// unknown, because the statement may have been sent and may still commit.
func classify(err error, ctxDone bool) failure {
	code := SQLState(err)
	switch {
	case code == stateAmbiguousCommit || connLost(err):
		return failureUnknown
	case ctxDone && code == "":
		// pgx answers a deadline at once and cancels on the server asynchronously: the statement may
		// still commit.
		return failureUnknown
	case ctxDone:
		return failureFinal // the server cancelled the statement (57014): nothing was written
	case code == stateUniqueViolation:
		return failureTaken
	case Retryable(err):
		return failureTransient
	}
	return failureFinal
}

// budget bounds a put's attempts. Rounds lost to other writers' progress (losses) run again at once and
// are bounded by maxLosses: each means another put committed, so the thread moves on; a renumbering of
// rows without a number counts as one too. Failures (40001, an unknown outcome, a failed renumbering)
// wait a jittered backoff and are bounded by Options.MaxAttempts.
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
	err = fail(op, threadID, checkpointID, err)
	ev.Err = err
	c.observe(ctx, ev)
	return id, err
}

// putLoop validates the request, then runs attempts until one stores the checkpoint or a verdict or
// error ends the put.
func (c *Checkpointer) putLoop(ctx context.Context, threadID string, snapshot []byte, fence *string, ev *Event) (_ string, err error) {
	// resent: an earlier attempt with this id may have committed. Its id is kept, so a late commit
	// shows up as "mine" instead of as a second checkpoint; and whatever error ends the put after
	// that, the checkpoint may be stored, so the error says so.
	resent := false
	defer func() {
		if err != nil && resent && !errors.Is(err, ErrOutcomeUnknown) {
			err = fmt.Errorf("%w after an attempt whose outcome is unknown: %w", ErrOutcomeUnknown, err)
		}
	}()
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
	b := budget{maxFailures: c.attempts}
	id := c.ids.next()
	for {
		ev.Attempts++
		r, first, err := c.attempt(ctx, req, id.String())
		if err != nil {
			switch classify(err, ctx.Err() != nil) {
			case failureUnknown:
				if c.inTx {
					// The caller's transaction has not committed: whatever this attempt did goes with it.
					return "", ctxOr(ctx, err)
				}
				if ctx.Err() != nil {
					return "", fmt.Errorf("checkpoint %s: %w: %w", id, ErrOutcomeUnknown, ctxOr(ctx, err))
				}
				if err := b.fail(ctx, err); err != nil {
					return "", fmt.Errorf("checkpoint %s: %w: %w", id, ErrOutcomeUnknown, err)
				}
				resent = true
				continue
			case failureTaken:
				// After an unknown outcome the unique violation may be this put's own earlier attempt,
				// committed late: run again with the same id, whose report settles it (mine, or a head
				// that moved, which a fence then rejects).
				if (fence != nil || c.inTx) && !resent {
					return "", &headMoved{cause: fmt.Errorf("another writer stored a checkpoint in the thread first: %w: %w", ErrConflict, err)}
				}
				if err := b.lose(ctx, err, false); err != nil {
					return "", err
				}
			case failureTransient:
				if c.inTx {
					return "", err // the caller's loop runs its whole transaction again
				}
				if first {
					// A first put at SERIALIZABLE lost to another transaction: progress elsewhere.
					err = b.lose(ctx, err, true)
				} else {
					err = b.fail(ctx, err)
				}
				if err != nil {
					return "", err
				}
			default:
				return "", ctxOr(ctx, err)
			}
			if !resent {
				id = c.ids.next() // the winner most likely took a newer id than ours
			}
			continue
		}
		ev.Rows = int(r.trimmed)
		switch judge(r, id.String(), fence) {
		case verdictStored:
			return id.String(), nil
		case verdictConflict:
			return "", conflict(r.headID.String, *fence)
		case verdictEmpty:
			// The first-row attempt found the thread filled by another writer: again.
			if err := b.lose(ctx, errors.New("another writer stored the thread's first checkpoint"), false); err != nil {
				return "", err
			}
		case verdictRenumber:
			if err := c.renumber(ctx, threadID); err != nil {
				if c.inTx || !(Retryable(err) || SQLState(err) == stateUniqueViolation) {
					return "", ctxOr(ctx, err)
				}
				if err := b.fail(ctx, err); err != nil {
					return "", err
				}
			} else if err := b.lose(ctx, errors.New("the thread kept getting rows without a number"), false); err != nil {
				// A renumbering that worked is a round too: a writer that keeps adding rows without a
				// number must not keep the put going round for ever.
				return "", err
			}
		case verdictLost:
			if err := b.lose(ctx, errors.New("the thread moved during the put"), false); err != nil {
				return "", err
			}
		case verdictFollowHead:
			if resent {
				// Our earlier attempt may have committed and been trimmed since, behind newer rows:
				// storing the snapshot again could store it twice.
				return "", fmt.Errorf("checkpoint %s: the thread moved past it after an attempt whose outcome is unknown: %w", id, ErrOutcomeUnknown)
			}
			if err := b.lose(ctx, fmt.Errorf("the thread's newest id %s is not below the new id %s", r.headID.String, id), false); err != nil {
				return "", err
			}
			floor, ok := parseID(r.headID.String)
			if !ok {
				return "", fmt.Errorf("the thread's newest id %q is not a UUID, so no id can follow it: %w", r.headID.String, ErrInvalidCheckpointID)
			}
			if id, err = c.ids.nextAfter(floor); err != nil {
				return "", err
			}
		}
	}
}

// newPutRequest checks the inputs of a put before anything is sent, then learns the cap to trim to (the
// table's policy, read at most once a minute).
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
	cap, err := c.retention(ctx)
	if err != nil {
		return putRequest{}, err
	}
	// As json.RawMessage, not []byte: pgx's exec and simple-protocol modes (the ones that work through
	// PgBouncer's transaction pooling) send a []byte as bytea, which $3::text would turn into hex.
	return putRequest{threadID: threadID, doc: json.RawMessage(snapshot), facts: facts, fence: fence, cap: cap}, nil
}

// attempt makes one attempt and never retries. first reports that it took the first-row path.
func (c *Checkpointer) attempt(ctx context.Context, req putRequest, id string) (r putReport, first bool, err error) {
	r, err = c.appendRow(ctx, req, id)
	if err != nil || r.headID.Valid || r.mine || (req.fence != nil && *req.fence != "") {
		return r, false, err
	}
	seq, err := c.firstRow(ctx, req, id)
	r.newSeq = seq
	return r, true, err
}

// appendRow appends to a thread that has rows: one statement, or (dialects without oneStatementPut, with
// retention) one transaction holding the insert and its trim.
func (c *Checkpointer) appendRow(ctx context.Context, req putRequest, id string) (putReport, error) {
	var r putReport
	var fenceArg, capArg any
	if req.fence != nil {
		fenceArg = *req.fence
	}
	if req.cap > 0 {
		capArg = int64(req.cap)
	}
	scan := func(row *sql.Row) error {
		return row.Scan(&r.newSeq, &r.headID, &r.headSeq, &r.locked, &r.lockedSeq, &r.unnumbered, &r.mine, &r.trimmed)
	}
	f := req.facts
	if c.facts.oneStatementPut {
		err := c.noResend(ctx, func(q DBTX) error {
			return scan(q.QueryRowContext(ctx, c.q.put, req.threadID, id, req.doc, f.version, f.size, fenceArg, capArg))
		})
		return r, err
	}
	insert := func(q DBTX) error {
		return scan(q.QueryRowContext(ctx, c.q.insert, req.threadID, id, req.doc, f.version, f.size, fenceArg))
	}
	if req.cap == 0 {
		// Without retention the insert is the whole put: one statement, which CockroachDB retries on the
		// server by itself, so it gets no transaction of its own.
		return r, c.noResend(ctx, insert)
	}
	err := c.txOnce(ctx, func(q DBTX) error {
		if err := insert(q); err != nil || !r.newSeq.Valid {
			return err
		}
		bound := r.newSeq.Int64 - int64(req.cap)
		if bound < 1 {
			return nil
		}
		res, err := q.ExecContext(ctx, c.q.trim, req.threadID, bound)
		if err == nil {
			r.trimmed, _ = res.RowsAffected()
		}
		return err
	})
	return r, err
}

// noResend runs fn, a put's single statement, where database/sql cannot send it a second time behind
// the put's back. On a *sql.DB, database/sql runs a statement again on another connection when the
// driver answers driver.ErrBadConn, and lib/pq does so after the statement was sent: the first copy could
// commit, others could trim it, and the second copy, seeing neither, would store the checkpoint again
// under a new id (the checker's longer run saw it). A connection of its own (*sql.Conn) is never retried
// by database/sql: the broken connection reaches the put loop as an unknown outcome.
func (c *Checkpointer) noResend(ctx context.Context, fn func(q DBTX) error) error {
	db, ok := c.db.(*sql.DB)
	if !ok {
		return fn(c.db)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// firstRow stores the first row of a thread that was empty, numbered 1, if it is still empty. Two first
// puts must not both succeed, and a put whose snapshot still shows the thread empty after others filled
// and trimmed it must not reuse number 1, so the check and the insert run under a transaction-level lock
// on the thread (advisory locks) or at SERIALIZABLE. The first row never needs a trim. The number is
// NULL when the thread is no longer empty.
func (c *Checkpointer) firstRow(ctx context.Context, req putRequest, id string) (sql.NullInt64, error) {
	var seq sql.NullInt64
	f := req.facts
	err := c.txAt(ctx, c.facts.firstRowIsolation, func(q DBTX) error {
		if c.facts.advisoryLocks {
			if _, err := q.ExecContext(ctx, c.q.lockFirst, req.threadID); err != nil {
				return err
			}
		}
		err := q.QueryRowContext(ctx, c.q.first, req.threadID, id, req.doc, f.version, f.size).Scan(&seq)
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
