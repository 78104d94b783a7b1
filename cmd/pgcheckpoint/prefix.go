package main

import (
	"context"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ziroagent/pgcheckpoint"
)

// checkPrefixFlag checks --prefix as the library checks a thread id prefix (valid UTF-8, at most 1024
// bytes; a command line holds no NUL), before anything is sent: the dry run's own SQL would otherwise
// meet the server's invalid-UTF-8 error.
func checkPrefixFlag(cmd, prefix string) error {
	if !utf8.ValidString(prefix) || len(prefix) > 1024 {
		return usageErrorf("%s: --prefix must be valid UTF-8 of at most 1024 bytes, like a thread id", cmd)
	}
	return nil
}

// prefixNote says which threads a command covered: nothing for all of them.
func prefixNote(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " (threads starting with " + strconv.Quote(prefix) + ")"
}

// statsPrefix fills the per-thread figures of r (rows, threads, snapshot bytes, the top largest threads)
// for the threads whose id starts with prefix, by paging through Threads with the prefix: a range scan
// of the primary key over those threads only, where the whole-table figures read the whole heap.
func statsPrefix(ctx context.Context, cp *pgcheckpoint.Checkpointer, prefix string, top int, r *statsResult) error {
	after := ""
	var all []statsThread
	for {
		page, err := cp.Threads(ctx, pgcheckpoint.ThreadsOptions{Prefix: prefix, After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, t := range page {
			r.Rows += int64(t.Checkpoints)
			r.Threads++
			r.SnapshotSize += t.TotalBytes
			all = append(all, statsThread{ThreadID: t.ThreadID, Checkpoints: int64(t.Checkpoints), Bytes: t.TotalBytes})
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ThreadID
	}
	// The order of the whole-table listing: bytes descending, then thread id.
	slices.SortStableFunc(all, func(a, b statsThread) int {
		if a.Bytes != b.Bytes {
			if a.Bytes > b.Bytes {
				return -1
			}
			return 1
		}
		return 0 // Threads returned them in byte order of their ids
	})
	r.Largest = all[:min(top, len(all))]
	if r.Largest == nil {
		r.Largest = []statsThread{}
	}
	return nil
}
