package pgcheckpoint

import (
	"context"
	"fmt"
	"math"
	"time"
)

// ForkOptions choose what Fork copies.
type ForkOptions struct {
	// History also copies the checkpoints older than the one forked, as many as the table's retention
	// policy keeps (the newest up to and including it, at most the cap, and under a byte budget only
	// those whose sizes fit in it, the forked one always). By default only that checkpoint is copied.
	History bool
}

// Fork starts thread toThread from checkpoint checkpointID of thread fromThread ("time travel, then try
// another branch"): the new thread's newest checkpoint is a copy of that one, and with opts.History its
// older ones are copies of the older ones, at most the retention cap in all. It returns the new thread's
// newest id, which is checkpointID: a copy keeps its id, created_at, version and size (the key is
// (thread_id, checkpoint_id), so the same id in two threads is two checkpoints), and the new thread's
// later puts get ids that sort after it. From then on the two threads live apart: a put, delete or prune
// of one never touches the other.
//
// The copy runs on the server in one statement, so the snapshot never travels through the client (on a
// delta table it copies the heads and the items they hold: as on a full table, the cost grows with the
// snapshot; docs/storage.md, Fork), and is atomic: the new thread has all of its copies or none. Forking into a thread that has a checkpoint
// is ErrThreadExists, also when a put into it races with the fork (the fork takes the lock a thread's
// first put takes, or runs at SERIALIZABLE where there are no advisory locks); a checkpoint that does not
// exist is ErrNotFound; both write nothing. An id that is not a UUID is ErrInvalidCheckpointID.
func (c *Checkpointer) Fork(ctx context.Context, fromThread, checkpointID, toThread string, opts ForkOptions) (string, error) {
	defer c.hold()()
	start := time.Now()
	id, n, err := c.fork(ctx, fromThread, checkpointID, toThread, opts)
	err = fail(OpFork, toThread, checkpointID, err)
	c.observe(ctx, Event{Op: OpFork, ThreadID: toThread, Start: start, Rows: int(n), Err: err})
	return id, err
}

// forkRequest is a Fork's validated input.
type forkRequest struct {
	from, id, to string
	limit        int64 // how many checkpoints, the forked one and older, are copied
}

// newForkRequest checks Fork's inputs before anything is sent. cap is the retention cap (0: none).
func newForkRequest(fromThread, checkpointID, toThread string, opts ForkOptions, cap int) (forkRequest, error) {
	if err := checkThread(fromThread); err != nil {
		return forkRequest{}, fmt.Errorf("source: %w", err)
	}
	if err := checkThread(toThread); err != nil {
		return forkRequest{}, err
	}
	id, err := checkID("checkpoint id", checkpointID)
	if err != nil {
		return forkRequest{}, err
	}
	r := forkRequest{from: fromThread, id: id, to: toThread, limit: 1}
	switch {
	case opts.History && cap > 0:
		r.limit = int64(cap)
	case opts.History:
		r.limit = math.MaxInt64
	}
	return r, nil
}

// errForkSource and errForkTarget are the errors of a fork from a checkpoint that does not exist and
// into a thread that has checkpoints, alike for every store.
func errForkSource(r forkRequest) error {
	return fmt.Errorf("source thread %q has no checkpoint %s: %w", r.from, r.id, ErrNotFound)
}

func errForkTarget(r forkRequest) error {
	return fmt.Errorf("the thread has checkpoints already: %w", ErrThreadExists)
}

func (c *Checkpointer) fork(ctx context.Context, fromThread, checkpointID, toThread string, opts ForkOptions) (string, int64, error) {
	if err := checkThread(fromThread); err != nil {
		return "", 0, fmt.Errorf("source: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	forkQuery := c.q.fork
	if c.delta != nil {
		// A delta table's heads hold items keyed by their thread: the statement copies both.
		if err := c.checkStorage(ctx, "fork"); err != nil {
			return "", 0, err
		}
		forkQuery = c.delta.q.fork
	}
	// The cap and byte budget the new thread keeps are the table's, as for a put (History copies at
	// most what they keep).
	var l limits
	if opts.History {
		var err error
		if l, err = c.limits(ctx); err != nil {
			return "", 0, err
		}
	}
	var budgetArg any
	if l.budget > 0 {
		budgetArg = l.budget
	}
	r, err := newForkRequest(fromThread, checkpointID, toThread, opts, l.cap)
	if err != nil {
		return "", 0, err
	}
	if err := c.checkCallerIsolation(ctx); err != nil {
		return "", 0, err
	}
	var sourceFound, targetFound bool
	var copied int64
	for attempt := 1; ; attempt++ {
		err = c.txAt(ctx, c.facts.firstRowIsolation, func(q DBTX) error {
			if c.facts.advisoryLocks {
				if _, err := q.ExecContext(ctx, c.q.lockFirst, r.to); err != nil {
					return err
				}
			}
			// While the table is migrating the server refuses a plaintext copy: seal the source's first.
			if err := c.sealThreadRows(ctx, q, r.from); err != nil { // rekey.go
				return err
			}
			err := q.QueryRowContext(ctx, forkQuery, r.from, r.id, r.to, r.limit, budgetArg).Scan(&sourceFound, &targetFound, &copied)
			if err != nil || copied == 0 {
				return err
			}
			return c.rebindFork(ctx, q, r)
		})
		if err == nil || c.inTx {
			break
		}
		switch classify(err, ctx.Err() != nil) {
		case failureUnknown:
			// The fork may have committed: running it again would find the thread and say
			// ErrThreadExists about the fork's own copy.
			return "", 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctxOr(ctx, err))
		case failureTransient, failureTaken:
			// 40001, 40P01, or 23505 from a first put into the target at SERIALIZABLE: nothing was
			// written; the next attempt sees who won.
			if attempt >= c.attempts {
				return "", 0, fmt.Errorf("%d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
			}
			if err := backoff(ctx, attempt+1); err != nil {
				return "", 0, err
			}
			continue
		}
		return "", 0, ctxOr(ctx, err)
	}
	if err != nil {
		return "", 0, err
	}
	switch {
	case !sourceFound:
		return "", 0, errForkSource(r)
	case targetFound:
		return "", 0, errForkTarget(r)
	}
	if c.delta != nil {
		c.delta.cache.forget(r.to) // a state cached for the target (empty, say) is stale now
	}
	return r.id, copied, nil
}
