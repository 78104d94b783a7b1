package pgcheckpoint

import (
	"context"
	"time"
)

// Observer hears about every operation of a Checkpointer once it ends: a place for logs, metrics and
// traces without a dependency in the core. Observe runs on the caller's goroutine: keep it fast.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Event describes one finished operation.
type Event struct {
	Op       Op        // which call: OpPut, OpGet, OpLatest, ...
	ThreadID string    // empty for OpThreads and OpPrune; OpFork: the new thread
	Start    time.Time // when the call began
	Duration time.Duration
	Bytes    int   // snapshot bytes sent (put) or received (get)
	Rows     int   // rows trimmed (put), listed (list, threads), deleted (delete, prune) or copied (fork)
	Attempts int   // statements or transactions tried (put); more than 1 means retries
	Err      error // nil on success
}

func (c *Checkpointer) observe(ctx context.Context, e Event) {
	if c.observer != nil {
		e.Duration = time.Since(e.Start)
		c.observer.Observe(ctx, e)
	}
}
