package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdGet prints a stored snapshot.
func cmdGet(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "get")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	id := ""
	if len(pos) == 2 {
		id = pos[1]
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	cp, err := s.cp.Get(ctx, pos[0], id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", cp.Snapshot)
	return err
}

// listEntry is one line of `ls --json`.
type listEntry struct {
	ID        string `json:"id"`
	ThreadID  string `json:"thread_id"`
	CreatedAt string `json:"created_at"`
	Version   int32  `json:"version"`
	SizeBytes int32  `json:"size_bytes"`
}

// cmdLs lists a thread's checkpoints, newest first.
func cmdLs(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "ls")
	limit := f.Int("limit", 0, "most checkpoints shown (default: the retention cap)")
	before := f.String("before", "", "only checkpoints older than `ID` (the last id of the previous page)")
	asJSON := f.Bool("json", false, "one JSON object per line")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usageErrorf("ls: --limit must be positive, got %d", *limit)
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	cps, err := s.cp.List(ctx, pos[0], pgcheckpoint.ListOptions{Limit: *limit, Before: *before})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, c := range cps {
			if err := enc.Encode(listEntry{c.ID, c.ThreadID, rfc3339(c.CreatedAt), c.Version, c.SizeBytes}); err != nil {
				return err
			}
		}
		return nil
	}
	return printCheckpoints(e, cps, time.Now())
}

// printCheckpoints writes checkpoints as an aligned table (ls, demo).
func printCheckpoints(e env, cps []pgcheckpoint.Checkpoint, now time.Time) error {
	if len(cps) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no checkpoints")
		return err
	}
	t := newTable(e.stdout, "ID", "CREATED", "VERSION", "SIZE")
	for _, c := range cps {
		t.row(c.ID, age(now, c.CreatedAt), fmt.Sprint(c.Version), size(int64(c.SizeBytes)))
	}
	return t.flush()
}
