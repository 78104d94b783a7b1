package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
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
//   - the head's id is not below the new id (this host's clock lags): a new id above the head, then again;
//   - the head was trimmed after the statement's snapshot, or the empty thread got its first row from
//     another writer: again.
//
// Another writer taking the same row number (unique violation) means the thread moved: again, or
// ErrConflict for a fenced put. Rounds lost to other writers' progress are retried at once and bounded
// by maxLosses; only errors (40001, a renumbering that failed) use up MaxAttempts, with backoff.
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
	// ambiguous: an earlier attempt ended with SQLSTATE 40003 (commit outcome unknown) and the check
	// that followed did not find the row. Until the put succeeds it keeps the same id, so a late commit
	// of that attempt shows up as "the head is our own id" instead of becoming a second checkpoint.
	ambiguous := false
	// renew, when set, gives the next attempt a new id. It runs after the backoff: an id taken before
	// the sleep would often be older than what other writers stored during it.
	var renew func() uuid.UUID
	var last error // the error that made the previous attempt run again
	// lost counts attempts that lost the thread's next position to another writer (unique violation).
	// Each loss means another put committed, so the thread makes progress: losses are retried at once
	// and do not use up MaxAttempts, up to maxLosses.
	lost, quick := 0, false
	for attempt := 1; ; attempt++ {
		ev.Attempts = attempt
		if attempt > 1 && !quick {
			if err := backoff(ctx, attempt-lost); err != nil {
				return "", fmt.Errorf("pgcheckpoint: put: gave up after %d attempts (last: %v): %w", attempt-1, last, err)
			}
		}
		if renew != nil {
			id, renew = renew(), nil
		}
		res, err := c.putOnce(ctx, threadID, id.String(), snapshot, facts, fence)
		if err != nil {
			code := SQLState(err)
			switch {
			case (code == stateAmbiguousCommit || connLost(err)) && !c.inTx && ctx.Err() == nil:
				// The commit may or may not have happened: SQLSTATE 40003, or the connection broke (a
				// pooled connection the server or a firewall closed during a long pause, say). Look for
				// the id; when even that fails (the server is down) give up at once.
				stored, cerr := c.stored(ctx, threadID, id.String())
				if cerr != nil {
					return "", fmt.Errorf("pgcheckpoint: put: %w (checking whether checkpoint %s was stored failed too: %v)", err, id, cerr)
				}
				if stored {
					return id.String(), nil
				}
				ambiguous = true
			case code == stateUniqueViolation && (fence != nil || c.inTx):
				return "", fmt.Errorf("pgcheckpoint: put: another writer stored a checkpoint in thread %q first: %w: %w", threadID, ErrConflict, err)
			case (code == stateUniqueViolation || Retryable(err)) && !c.inTx:
			default:
				// Inside the caller's transaction a retryable error is returned as it is (wrapped), so
				// the caller's loop runs the whole transaction again.
				return "", interpret("put", err)
			}
			quick = code == stateUniqueViolation
			if quick {
				if lost++; lost > maxLosses {
					return "", fmt.Errorf("pgcheckpoint: put: lost the thread's next position %d times: %w: %w", lost, ErrRetriesExhausted, err)
				}
			} else if attempt-lost >= c.attempts {
				return "", fmt.Errorf("pgcheckpoint: put: %d attempts: %w: %w", attempt-lost, ErrRetriesExhausted, err)
			}
			if !ambiguous {
				// Nothing was stored. The writer that won has most likely taken a newer id than ours:
				// a fresh id (above every id this Checkpointer made) spares an attempt that would only
				// find the head ahead of us.
				renew = c.ids.next
			}
			last = err
			continue
		}
		ev.Rows = int(res.trimmed)
		if res.seq.Valid {
			return id.String(), nil
		}
		head := res.headID.String
		if ambiguous && head != "" {
			// The attempt whose commit was ambiguous did commit after all, now or before the thread moved on.
			if head == id.String() {
				return id.String(), nil
			}
			stored, cerr := c.stored(ctx, threadID, id.String())
			if cerr != nil {
				return "", fmt.Errorf("pgcheckpoint: put: checking for checkpoint %s after an unknown commit outcome: %w", id, interpret("put", cerr))
			}
			if stored {
				return id.String(), nil
			}
		}
		switch {
		case !res.headSeqKnown.Valid && (fence == nil || *fence == head):
			// The thread changed under the statement: the head in its snapshot was trimmed, or another
			// first put filled the empty thread. Nothing was written; run again at once.
			last = fmt.Errorf("thread %q moved during the put", threadID)
			if lost++; lost > maxLosses {
				return "", fmt.Errorf("pgcheckpoint: put: %v %d times: %w", last, lost, ErrRetriesExhausted)
			}
			quick = true
			continue
		case fence != nil && *fence != head:
			if head == "" {
				return "", fmt.Errorf("pgcheckpoint: put: thread %q is empty, not at %s: %w", threadID, *fence, ErrConflict)
			}
			return "", fmt.Errorf("pgcheckpoint: put: thread %q is at %s, not at %q: %w", threadID, head, *fence, ErrConflict)
		case res.headID.Valid && !res.headSeqKnown.Bool:
			last = fmt.Errorf("thread %q has rows without a sequence number", threadID)
			if _, err := c.db.ExecContext(ctx, c.q.renumber, threadID); err != nil {
				// 23505: a put took a number the renumbering wanted; both see the new state next time.
				if !(Retryable(err) || SQLState(err) == stateUniqueViolation) || c.inTx {
					return "", interpret("put", err)
				}
				last = err
			}
		case res.headID.Valid && head >= id.String():
			floor, ok := parseID(head)
			if !ok {
				return "", fmt.Errorf("pgcheckpoint: put: thread %q has a newest id %q that is not a UUID, so no id can follow it", threadID, head)
			}
			last = fmt.Errorf("thread %q has a newer checkpoint %s than the new id %s", threadID, head, id)
			renew = func() uuid.UUID { return c.ids.nextAfter(floor) }
			ambiguous = false
			// Another writer's id is ahead of ours (its clock, or its place in the millisecond): the
			// next attempt follows it at once, and only further progress of others can stop it again.
			if lost++; lost > maxLosses {
				return "", fmt.Errorf("pgcheckpoint: put: %v %d times: %w", last, lost, ErrRetriesExhausted)
			}
			quick = true
			continue
		}
		quick = false
		if attempt-lost >= c.attempts {
			return "", fmt.Errorf("pgcheckpoint: put: thread %q kept moving for %d attempts (last: %v): %w", threadID, attempt-lost, last, ErrRetriesExhausted)
		}
	}
}

// maxLosses bounds how often one put may lose the thread's next position to other writers.
const maxLosses = 100

// putOnce makes one attempt and never retries: one statement, or (dialects that split the put, with
// retention) one transaction holding the insert and its trim.
func (c *Checkpointer) putOnce(ctx context.Context, threadID, id string, snapshot []byte, f snapshotFacts, fence *string) (putResult, error) {
	var fenceArg, capArg any
	if fence != nil {
		fenceArg = *fence
	}
	if c.cap > 0 {
		capArg = int64(c.cap)
	}
	// As json.RawMessage, not []byte: pgx's exec and simple-protocol modes (the ones that work through
	// PgBouncer's transaction pooling) send a []byte as bytea, which $3::text would turn into hex.
	doc := json.RawMessage(snapshot)
	r, err := c.putNext(ctx, threadID, id, doc, f, fenceArg, capArg)
	if err == nil && !r.seq.Valid && !r.headID.Valid && (fence == nil || *fence == "") {
		err = c.putFirst(ctx, threadID, id, doc, f, &r)
	}
	return r, err
}

// putNext appends to a thread that has rows: one statement, or (dialects that split the put, with
// retention) one transaction holding the insert and its trim.
func (c *Checkpointer) putNext(ctx context.Context, threadID, id string, doc json.RawMessage, f snapshotFacts, fenceArg, capArg any) (putResult, error) {
	var r putResult
	if !c.dialect.splitPut() {
		err := c.db.QueryRowContext(ctx, c.q.put, threadID, id, doc, f.version, f.size, fenceArg, capArg).
			Scan(&r.seq, &r.headID, &r.headSeqKnown, &r.trimmed)
		return r, err
	}
	insert := func(q DBTX) error {
		return q.QueryRowContext(ctx, c.q.insert, threadID, id, doc, f.version, f.size, fenceArg).
			Scan(&r.seq, &r.headID, &r.headSeqKnown)
	}
	if c.cap == 0 {
		// Without retention the insert is the whole put: one statement, which CockroachDB retries on the
		// server by itself, so it gets no transaction of its own.
		return r, insert(c.db)
	}
	err := c.txOnce(ctx, nil, func(q DBTX) error {
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
	return r, err
}

// putFirst stores the first row of a thread that was empty, numbered 1, if it is still empty. Two
// first puts must not both succeed, and a put whose snapshot still shows the thread empty after
// others filled and trimmed it must not reuse number 1, so the check and the insert run under a
// transaction-level lock on the thread (PostgreSQL) or at SERIALIZABLE (CockroachDB). The first row
// never needs a trim. r.seq stays NULL when the thread is no longer empty.
func (c *Checkpointer) putFirst(ctx context.Context, threadID, id string, doc json.RawMessage, f snapshotFacts, r *putResult) error {
	opts := &sql.TxOptions{}
	if c.q.lockThread == "" {
		opts.Isolation = sql.LevelSerializable
	}
	return c.txOnce(ctx, opts, func(q DBTX) error {
		if c.q.lockThread != "" {
			if _, err := q.ExecContext(ctx, c.q.lockThread, threadID); err != nil {
				return err
			}
		}
		err := q.QueryRowContext(ctx, c.q.first, threadID, id, doc, f.version, f.size).Scan(&r.seq)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
}

// stored reports whether checkpoint id of the thread is in the table. It resolves an unknown commit
// outcome (SQLSTATE 40003): the id was generated here, so the row is there only if that commit happened,
// and with it the trim of the same transaction.
func (c *Checkpointer) stored(ctx context.Context, threadID, id string) (bool, error) {
	var found bool
	err := c.db.QueryRowContext(ctx, c.q.exists, threadID, id).Scan(&found)
	return found, err
}
