package pgcheckpoint

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// putResult is what one insert attempt reports back.
type putResult struct {
	seq          sql.NullInt64  // the new row's number; NULL when nothing was inserted
	headID       sql.NullString // the thread's newest id before the attempt; NULL for an empty thread
	headSeqKnown sql.NullBool   // false when the newest row was written without a number (TypeScript)
	trimmed      int64
}

// put runs the put path. A put is one statement on PostgreSQL (insert and trim together) and one
// transaction on CockroachDB; either way the trim is atomic with the insert. An attempt inserts nothing,
// and reports why, when the thread's head is not what the put needs:
//   - the fence does not match: ErrConflict;
//   - the head was written without a row number (by the TypeScript package): renumber, then again;
//   - the head's id is not below the new id (this host's clock lags): a new id above the head, then again.
//
// Another writer taking the same row number (unique violation) means the thread moved: again, or
// ErrConflict for a fenced put.
func (c *Checkpointer) put(ctx context.Context, op, threadID string, snapshot []byte, fence *string) (string, error) {
	start := time.Now()
	ev := Event{Op: op, ThreadID: threadID, Start: start, Bytes: len(snapshot)}
	id, err := c.putLoop(ctx, threadID, snapshot, fence, &ev)
	ev.Err = err
	c.observe(ctx, ev)
	return id, err
}

func (c *Checkpointer) putLoop(ctx context.Context, threadID string, snapshot []byte, fence *string, ev *Event) (string, error) {
	if err := checkThread(threadID); err != nil {
		return "", err
	}
	facts, err := inspectSnapshot(snapshot, c.maxBytes)
	if err != nil {
		return "", err
	}
	if fence != nil && *fence != "" {
		if _, ok := parseID(*fence); !ok {
			return "", fmt.Errorf("pgcheckpoint: put: expected head %q is not a checkpoint id: %w", *fence, ErrConflict)
		}
	}
	if err := ctx.Err(); err != nil {
		return "", interpret("put", err)
	}
	id := c.ids.next()
	for attempt := 1; ; attempt++ {
		ev.Attempts = attempt
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return "", interpret("put", err)
			}
		}
		res, err := c.putOnce(ctx, threadID, id.String(), snapshot, facts, fence)
		if err != nil {
			switch {
			case SQLState(err) == stateUniqueViolation && (fence != nil || c.inTx):
				return "", fmt.Errorf("pgcheckpoint: put: another writer stored a checkpoint in thread %q first: %w: %w", threadID, ErrConflict, err)
			case (SQLState(err) == stateUniqueViolation || Retryable(err)) && !c.inTx && attempt < c.attempts:
				continue
			case Retryable(err) && !c.inTx:
				return "", fmt.Errorf("pgcheckpoint: put: %d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
			default:
				return "", interpret("put", err)
			}
		}
		ev.Rows = int(res.trimmed)
		if res.seq.Valid {
			return id.String(), nil
		}
		head := res.headID.String
		switch {
		case fence != nil && *fence != head:
			if head == "" {
				return "", fmt.Errorf("pgcheckpoint: put: thread %q is empty, not at %s: %w", threadID, *fence, ErrConflict)
			}
			return "", fmt.Errorf("pgcheckpoint: put: thread %q is at %s, not at %q: %w", threadID, head, *fence, ErrConflict)
		case res.headID.Valid && !res.headSeqKnown.Bool:
			if _, err := c.db.ExecContext(ctx, c.q.renumber, threadID); err != nil {
				if Retryable(err) && !c.inTx && attempt < c.attempts {
					continue
				}
				return "", interpret("put", err)
			}
		case res.headID.Valid && head >= id.String():
			floor, ok := parseID(head)
			if !ok {
				return "", fmt.Errorf("pgcheckpoint: put: thread %q has a newest id %q that is not a UUID, so no id can follow it", threadID, head)
			}
			id = c.ids.nextAfter(floor)
		}
		if attempt >= c.attempts {
			return "", fmt.Errorf("pgcheckpoint: put: thread %q kept moving for %d attempts: %w", threadID, attempt, ErrRetriesExhausted)
		}
	}
}

// putOnce makes one attempt: one statement, or (split dialects with retention) one transaction.
func (c *Checkpointer) putOnce(ctx context.Context, threadID, id string, snapshot []byte, f snapshotFacts, fence *string) (putResult, error) {
	var fenceArg, capArg any
	if fence != nil {
		fenceArg = *fence
	}
	if c.cap > 0 {
		capArg = int64(c.cap)
	}
	var r putResult
	if !c.dialect.splitPut() {
		err := c.db.QueryRowContext(ctx, c.q.put, threadID, id, snapshot, f.version, f.size, fenceArg, capArg).
			Scan(&r.seq, &r.headID, &r.headSeqKnown, &r.trimmed)
		return r, err
	}
	insert := func(q DBTX) error {
		return q.QueryRowContext(ctx, c.q.insert, threadID, id, snapshot, f.version, f.size, fenceArg).
			Scan(&r.seq, &r.headID, &r.headSeqKnown)
	}
	if c.cap == 0 {
		return r, insert(c.db) // one statement: the server retries it by itself
	}
	committed, err := c.runTx(ctx, func(q DBTX) error {
		r = putResult{}
		if err := insert(q); err != nil || !r.seq.Valid {
			return err
		}
		bound := r.seq.Int64 - int64(c.cap)
		if bound < 1 {
			return nil
		}
		res, err := q.ExecContext(ctx, c.q.trim, threadID, bound)
		if err == nil {
			r.trimmed, _ = res.RowsAffected()
		}
		return err
	})
	if SQLState(err) == stateAmbiguousCommit && !committed {
		// The commit may or may not have happened. The id is ours alone: if the row is there, the
		// transaction (insert and trim) committed.
		var found bool
		if qerr := c.db.QueryRowContext(ctx, c.q.exists, threadID, id).Scan(&found); qerr != nil {
			return r, fmt.Errorf("pgcheckpoint: put: commit outcome unknown and the check failed (%v): %w", qerr, err)
		}
		if found {
			return r, nil
		}
		return putResult{}, &retryableError{err}
	}
	return r, err
}

// retryableError marks an error after which the whole attempt may run again.
type retryableError struct{ err error }

func (e *retryableError) Error() string    { return e.err.Error() }
func (e *retryableError) Unwrap() error    { return e.err }
func (e *retryableError) SQLState() string { return "40001" }
