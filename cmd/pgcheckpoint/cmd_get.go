package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// getEntry is the `get --json` object.
type getEntry struct {
	ID        string          `json:"id"`
	ThreadID  string          `json:"thread_id"`
	CreatedAt string          `json:"created_at"`
	Version   int32           `json:"version"`
	SizeBytes int32           `json:"size_bytes"`
	Snapshot  json.RawMessage `json:"snapshot"`
}

// cmdGet prints a stored snapshot, or with --json the snapshot and its metadata.
func cmdGet(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "get")
	asJSON := f.Bool("json", false, "print one JSON object: id, thread_id, created_at, version, size_bytes, snapshot")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	id := ""
	if len(pos) == 2 {
		if pos[1] == "" {
			return usageErrorf("get: the checkpoint id is empty; to read the newest, name only the thread")
		}
		id = pos[1]
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	var cp pgcheckpoint.Checkpoint
	if id == "" {
		cp, err = s.cp.Latest(ctx, pos[0])
	} else {
		cp, err = s.cp.Get(ctx, pos[0], id)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(getEntry{cp.ID, cp.ThreadID, rfc3339(cp.CreatedAt), cp.Version, cp.SizeBytes, cp.Snapshot})
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", cp.Snapshot)
	return err
}

// cmdHead prints the id of the thread's newest checkpoint: what --expect-head wants.
func cmdHead(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "head")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	cps, err := s.cp.List(ctx, pos[0], pgcheckpoint.ListOptions{Limit: 1})
	if err != nil {
		return err
	}
	if len(cps) == 0 {
		return fmt.Errorf("head: thread %s has no checkpoint in %s (for a first fenced put use --expect-empty): %w",
			display(pos[0]), s.table, pgcheckpoint.ErrNotFound)
	}
	_, err = fmt.Fprintln(e.stdout, cps[0].ID)
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
	limit := f.Int("limit", 0, "most checkpoints shown (default: the retention cap; 100 when it is off)")
	before := f.String("before", "", "only checkpoints older than `ID` (the last id of the previous page)")
	asJSON := f.Bool("json", false, "one JSON object per line")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usageErrorf("ls: --limit must be positive, got %d", *limit)
	}
	page := *limit
	if page == 0 {
		page = pgcheckpoint.DefaultListLimit
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	// One more than the page tells whether a next page exists, so the last page has no hint.
	cps, err := s.cp.List(ctx, pos[0], pgcheckpoint.ListOptions{Limit: page + 1, Before: *before})
	if err != nil {
		return err
	}
	more := len(cps) > page
	if more {
		cps = cps[:page]
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
	if err := printCheckpoints(e, cps, time.Now()); err != nil {
		return err
	}
	if more {
		_, err = fmt.Fprintf(e.stdout, "showing the newest %d; next page: %s\n", len(cps),
			f.hint([][2]string{{"before", cps[len(cps)-1].ID}}, pos[0]))
	}
	return err
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
