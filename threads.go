package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
	if err := c.checkStorage(ctx, "threads"); err != nil {
		return nil, err
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
	if err := c.checkStorage(ctx, "prune"); err != nil {
		return res, err
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
		deleted, threads, err := c.pruneRun(ctx, ids, cutoff, opts.IncludeNewest, opts.Prefix != "")
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
		after = ids[len(ids)-1]
	}
}

// pruneRun deletes one batch's old rows in a transaction of its own, run again on a retryable error (a
// deadlock with a put of one of its threads, 40001): a batch is idempotent. Unless the newest rows go
// too, it first locks a row of each thread (lockNewest) and deletes only rows older than the one it
// holds, so the thread keeps that row whatever commits meanwhile. It returns the rows deleted and the
// threads they were in. prefixed: the batch came from a prefixed listing, whose range is compared in
// byte order (the prefix statements).
func (c *Checkpointer) pruneRun(ctx context.Context, batch []string, cutoff time.Time, includeNewest, prefixed bool) (deleted, threads int64, err error) {
	first, last := batch[0], batch[len(batch)-1]
	lock, older, run := c.q.pruneLock, c.q.pruneOlder, c.q.pruneRun
	if prefixed {
		lock, older, run = c.q.pruneLockPrefix, c.q.pruneOlderPrefix, c.q.pruneRunPrefix
	}
	err = c.runTx(ctx, func(q DBTX) error {
		var rows *sql.Rows
		var err error
		if includeNewest {
			rows, err = q.QueryContext(ctx, run, first, last, cutoff)
		} else {
			var bounds []byte
			bounds, err = c.lockNewest(ctx, q, lock, batch)
			if err != nil || bounds == nil {
				deleted, threads = 0, 0
				return err
			}
			rows, err = q.QueryContext(ctx, older, string(bounds), first, last, cutoff)
		}
		if err != nil {
			return err
		}
		var order []string
		deleted, order, err = countByThread(rows)
		threads = int64(len(order))
		if err != nil {
			return err
		}
		return c.deltaGC(ctx, q, order)
	})
	return deleted, threads, err
}

// pruneLockRounds bounds how often lockNewest locks again for threads whose newest row vanished.
const pruneLockRounds = 3

// lockNewest locks the newest row of each thread of the batch and returns the JSON pairs [thread_id,
// id of the row it holds] that pruneOlder deletes below (nil: it holds none). The newest row a lock
// aims at can be deleted while the lock waits for it; the lock then finds no row, so it runs again, in
// a newer snapshot, for at most pruneLockRounds rounds: a thread it still holds no row of is left to the
// next prune. Where it holds several rows of a thread (a newer one came), the newest is the bound: every
// row it holds stays until the transaction ends.
func (c *Checkpointer) lockNewest(ctx context.Context, q DBTX, lock string, batch []string) ([]byte, error) {
	held := map[string]string{}
	for range pruneLockRounds {
		rows, err := q.QueryContext(ctx, lock, batch[0], batch[len(batch)-1])
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var thread, id string
			if err := rows.Scan(&thread, &id); err != nil {
				rows.Close()
				return nil, err
			}
			if id > held[thread] {
				held[thread] = id
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(batch, func(t string) bool { return held[t] == "" }) {
			break
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, 0, len(held))
	for _, t := range slices.Sorted(maps.Keys(held)) {
		pairs = append(pairs, [2]string{t, held[t]})
	}
	return json.Marshal(pairs)
}

// countByThread reads the thread_id of every row a delete returned: how many, and the threads in the
// order they first came.
func countByThread(rows *sql.Rows) (int64, []string, error) {
	defer rows.Close()
	var n int64
	var order []string
	seen := map[string]bool{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return n, order, err
		}
		if !seen[t] {
			seen[t] = true
			order = append(order, t)
		}
		n++
	}
	return n, order, rows.Err()
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
