package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// threadEntry is one line of `threads --json`.
type threadEntry struct {
	ThreadID    string `json:"thread_id"`
	Checkpoints int    `json:"checkpoints"`
	NewestID    string `json:"newest_id"`
	NewestAt    string `json:"newest_at"`
	TotalBytes  int64  `json:"total_bytes"`
}

// cmdThreads lists threads in byte order of their ids, one page at a time.
func cmdThreads(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "threads")
	limit := f.Int("limit", 100, "most threads shown")
	after := f.String("after", "", "only threads whose id sorts after `THREAD` (the last of the previous page)")
	prefix := f.String("prefix", "", "only threads whose id starts with `P` (byte for byte; % and _ are plain characters)")
	asJSON := f.Bool("json", false, "one JSON object per line")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit <= 0 {
		return usageErrorf("threads: --limit must be positive, got %d", *limit)
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	// One more than the page tells whether a next page exists, so the last page has no hint.
	ts, err := s.cp.Threads(ctx, pgcheckpoint.ThreadsOptions{After: *after, Prefix: *prefix, Limit: *limit + 1})
	if err != nil {
		return err
	}
	more := len(ts) > *limit
	if more {
		ts = ts[:*limit]
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, t := range ts {
			if err := enc.Encode(threadEntry{t.ThreadID, t.Checkpoints, t.NewestID, rfc3339(t.NewestAt), t.TotalBytes}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(ts) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no threads")
		return err
	}
	now := time.Now()
	t := newTable(e.stdout, "THREAD", "CHECKPOINTS", "SIZE", "NEWEST", "NEWEST ID")
	for _, th := range ts {
		t.row(th.ThreadID, fmt.Sprint(th.Checkpoints), size(th.TotalBytes), age(now, th.NewestAt), th.NewestID)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(e.stdout, "next page: %s\n", f.hint([][2]string{{"after", ts[len(ts)-1].ThreadID}}))
	}
	return nil
}
