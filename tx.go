package pgcheckpoint

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"
)

// txOnce runs fn once in a transaction of its own: BEGIN at the dialect's isolation level (READ
// COMMITTED on PostgreSQL, whatever the database's default; the server's default on CockroachDB), fn,
// COMMIT, or
// ROLLBACK when fn fails or panics. On the caller's transaction it runs fn directly and the caller
// commits. It never retries: the caller decides, because whether a failed attempt may simply run again
// depends on the work.
func (c *Checkpointer) txOnce(ctx context.Context, fn func(q DBTX) error) (err error) {
	return c.txAt(ctx, c.facts.ownIsolation, fn)
}

// txAt is txOnce at an explicit isolation level.
func (c *Checkpointer) txAt(ctx context.Context, level sql.IsolationLevel, fn func(q DBTX) error) (err error) {
	b, ok := c.db.(txBeginner)
	if c.inTx || !ok {
		return fn(c.db)
	}
	tx, err := b.BeginTx(ctx, &sql.TxOptions{Isolation: level})
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	return tx.Commit()
}

// runTx runs idempotent work (fn) in a transaction of its own, running the whole transaction again,
// up to Options.MaxAttempts times with jittered backoff, when it fails with a retryable error (see
// Retryable) or with SQLSTATE 40003: an unknown commit outcome is harmless to repeat for idempotent
// work, and only that may use runTx (a put has its own loop). Inside the caller's transaction it runs
// fn once and returns its error as it is, so the caller's loop can retry the whole transaction.
func (c *Checkpointer) runTx(ctx context.Context, fn func(q DBTX) error) error {
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		err := c.txOnce(ctx, fn)
		// 23505: a concurrent put took a number that a renumbering (delete of one checkpoint) wanted.
		code := SQLState(err)
		if err == nil || c.inTx || !(Retryable(err) || code == stateAmbiguousCommit || code == stateUniqueViolation) {
			return err
		}
		if attempt >= c.attempts {
			return fmt.Errorf("%d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
		}
	}
}

// Backoff bounds: the first retry waits up to backoffBase, each later one up to twice as long, never
// more than backoffMax.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
)

// backoff sleeps before attempt (2, 3, ...): a random duration in (0, ceiling] with ceiling
// backoffBase * 2^(attempt-2), at most backoffMax ("full jitter", so competing writers spread out
// instead of colliding again in step). It returns ctx's error as soon as ctx ends.
func backoff(ctx context.Context, attempt int) error {
	ceiling := backoffMax
	if shift := attempt - 2; shift < 8 {
		ceiling = min(backoffBase<<max(shift, 0), backoffMax)
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceiling))) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
