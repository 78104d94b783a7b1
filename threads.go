package pgcheckpoint

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ThreadInfo summarises one thread.
type ThreadInfo struct {
	ThreadID    string
	Checkpoints int
	NewestID    string
	NewestAt    time.Time // the latest created_at of the thread
	TotalBytes  int64     // sum of size_bytes
}

// ThreadsOptions page through threads in byte order of their ids.
type ThreadsOptions struct {
	// After returns only threads whose id sorts after it: pass the last id of the previous page. It is
	// "" (from the first thread) or a valid thread id; anything else is ErrInvalidThreadID, before
	// anything is sent.
	After string
	// Limit is the most threads returned, at most MaxListLimit: 0 means 100. A negative limit or one
	// above MaxListLimit is ErrInvalidOptions.
	Limit int
	// Prefix, when set, returns only threads whose id starts with it (byte for byte: "tenant-42/"), by
	// a range scan of the primary key, so a page costs the same whatever the other threads. It is "" or
	// a valid thread id (ErrInvalidThreadID); %, _ and \ have no special meaning.
	Prefix string
}

// Threads lists threads with their checkpoint counts. It walks the primary key in order and stops after
// Limit threads, so a page costs O(Limit x checkpoints per thread), whatever the table's size.
func (c *Checkpointer) Threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error) {
	defer c.hold()()
	start := time.Now()
	out, err := c.threads(ctx, opts)
	err = fail(OpThreads, "", "", err)
	c.observe(ctx, Event{Op: OpThreads, Start: start, Rows: len(out), Err: err})
	return out, err
}

// threadsLimit turns ThreadsOptions.Limit into a LIMIT: 0 means 100.
func threadsLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return 100, nil
	case limit < 0 || limit > MaxListLimit:
		return 0, fmt.Errorf("threads limit %d is not within 0..%d (page with After): %w", limit, MaxListLimit, ErrInvalidOptions)
	}
	return limit, nil
}

// checkCursor validates ThreadsOptions.After: "" or a thread id, so that Memory and the database agree
// (PostgreSQL refuses invalid UTF-8 and NUL in a text parameter with SQLSTATE 22021).
func checkCursor(after string) error {
	if after == "" {
		return nil
	}
	if err := checkThread(after); err != nil {
		return fmt.Errorf("cursor: %w", err)
	}
	return nil
}

func (c *Checkpointer) threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error) {
	if err := checkCursor(opts.After); err != nil {
		return nil, err
	}
	limit, err := threadsLimit(opts.Limit)
	if err != nil {
		return nil, err
	}
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, interpret(err)
	}
	var rows *sql.Rows
	if opts.Prefix == "" {
		rows, err = c.db.QueryContext(ctx, c.q.threads, opts.After, limit)
	} else {
		rows, err = c.db.QueryContext(ctx, c.q.threadsPrefix, opts.After, limit, opts.Prefix, prefixEnd(opts.Prefix))
	}
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var out []ThreadInfo
	for rows.Next() {
		var t ThreadInfo
		if err := rows.Scan(&t.ThreadID, &t.Checkpoints, &t.NewestID, &t.NewestAt, &t.TotalBytes); err != nil {
			return nil, interpret(err)
		}
		out = append(out, t)
	}
	return out, interpret(rows.Err())
}

// PruneOptions select what Prune deletes.
type PruneOptions struct {
	// OlderThan: checkpoints whose created_at is older than the server's now minus this are deleted.
	// It must be positive.
	OlderThan time.Duration
	// IncludeNewest also deletes a thread's newest checkpoint when it is old enough; by default every
	// thread keeps its newest.
	IncludeNewest bool
	// BatchThreads is how many threads one short DELETE covers: 0 means 100.
	BatchThreads int
	// Progress, when set, is called after every batch with the totals so far.
	Progress func(PruneResult)
	// Prefix, when set, limits the prune to threads whose id starts with it, as ThreadsOptions.Prefix
	// does: the other threads are neither read nor locked.
	Prefix string
}

// PruneResult counts what Prune did.
type PruneResult struct {
	Deleted  int64         // checkpoints deleted
	Threads  int64         // threads that lost at least one checkpoint
	Duration time.Duration // wall time
}

// Prune deletes old checkpoints of every thread in bounded batches: each batch reads the next
// BatchThreads thread ids through the primary key, then deletes their old rows in one short statement,
// so no lock is held for long and the work is index-backed. It can be stopped (ctx) and rerun at any
// time.
func (c *Checkpointer) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	defer c.hold()()
	start := time.Now()
	res, err := c.prune(ctx, opts)
	res.Duration = time.Since(start)
	err = fail(OpPrune, "", "", err)
	c.observe(ctx, Event{Op: OpPrune, Start: start, Rows: int(res.Deleted), Err: err})
	return res, err
}

func (c *Checkpointer) prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	var res PruneResult
	if opts.OlderThan <= 0 {
		return res, fmt.Errorf("older-than must be positive, got %v: %w", opts.OlderThan, ErrInvalidOptions)
	}
	if err := checkPrefix(opts.Prefix); err != nil {
		return res, err
	}
	if err := c.checkCallerIsolation(ctx); err != nil {
		return res, interpret(err)
	}
	batch := opts.BatchThreads
	if batch <= 0 {
		batch = 100
	}
	var now time.Time
	if err := c.db.QueryRowContext(ctx, c.q.now).Scan(&now); err != nil {
		return res, interpret(err)
	}
	cutoff := now.Add(-opts.OlderThan)
	after := ""
	for {
		ids, err := c.pruneBatch(ctx, after, opts.Prefix, batch)
		if err != nil || len(ids) == 0 {
			return res, err
		}
		first, last := ids[0], ids[len(ids)-1]
		deleted, threads, err := c.pruneRun(ctx, first, last, cutoff, opts.IncludeNewest, opts.Prefix != "")
		if err != nil {
			return res, interpret(err)
		}
		res.Deleted += deleted
		res.Threads += threads
		if opts.Progress != nil {
			opts.Progress(res)
		}
		if len(ids) < batch {
			return res, nil
		}
		after = last
	}
}

// pruneRun deletes one batch's old rows in a transaction of its own, run again on a retryable error (a
// deadlock with a put of one of its threads, 40001): a batch is idempotent. Unless the newest rows go
// too, it first locks each thread's newest row, so the delete, in a snapshot taken after those locks,
// cannot remove a row that a concurrent delete made the newest (the linearizability checker found that).
// It returns the rows deleted and the threads they were in. prefixed: the batch came from a prefixed
// listing, whose range is compared in byte order (pruneRunPrefix).
func (c *Checkpointer) pruneRun(ctx context.Context, first, last string, cutoff time.Time, includeNewest, prefixed bool) (deleted, threads int64, err error) {
	lock, run := c.q.pruneLock, c.q.pruneRun
	if prefixed {
		lock, run = c.q.pruneLockPrefix, c.q.pruneRunPrefix
	}
	err = c.runTx(ctx, func(q DBTX) error {
		deleted, threads = 0, 0
		if !includeNewest {
			if err := drain(q.QueryContext(ctx, lock, first, last)); err != nil {
				return err
			}
		}
		rows, err := q.QueryContext(ctx, run, first, last, cutoff, includeNewest)
		if err != nil {
			return err
		}
		defer rows.Close()
		touched := map[string]bool{}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				return err
			}
			touched[t] = true
			deleted++
		}
		threads = int64(len(touched))
		return rows.Err()
	})
	return deleted, threads, err
}

// drain reads and closes rows a statement returned only for its locks.
func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func (c *Checkpointer) pruneBatch(ctx context.Context, after, prefix string, limit int) ([]string, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if prefix == "" {
		rows, err = c.db.QueryContext(ctx, c.q.pruneThreads, after, limit)
	} else {
		rows, err = c.db.QueryContext(ctx, c.q.pruneThreadsPrefix, after, limit, prefix, prefixEnd(prefix))
	}
	if err != nil {
		return nil, interpret(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return nil, interpret(err)
		}
		ids = append(ids, s.String)
	}
	return ids, interpret(rows.Err())
}
