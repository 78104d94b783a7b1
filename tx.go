package pgcheckpoint

import (
	"context"
	"math/rand/v2"
	"time"
)

// runTx runs fn in a transaction of its own, or directly on the caller's transaction (no retry there).
// A retryable error (SQLSTATE 40001, 40P01) from fn or from COMMIT runs the whole transaction again, up to
// the attempt limit, with jittered exponential backoff that gives up when ctx ends. committed reports
// that COMMIT returned without error.
func (c *Checkpointer) runTx(ctx context.Context, fn func(q DBTX) error) (committed bool, err error) {
	b, ok := c.db.(txBeginner)
	if c.inTx || !ok {
		return false, fn(c.db)
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return false, err
			}
		}
		tx, err := b.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
		if err = fn(tx); err == nil {
			if err = tx.Commit(); err == nil {
				return true, nil
			}
		} else {
			_ = tx.Rollback()
		}
		if !Retryable(err) || attempt >= c.attempts {
			return false, err
		}
	}
}

// backoff sleeps before attempt (2, 3, ...): a random duration up to 2ms * 2^(attempt-2), capped at
// 250ms, so competing writers spread out. It returns early with ctx's error.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(2*time.Millisecond<<(attempt-2), 250*time.Millisecond)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceiling)) + 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
