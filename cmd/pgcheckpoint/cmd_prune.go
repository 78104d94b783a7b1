package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// pruneResult is the `prune --json` object.
type pruneResult struct {
	Deleted int64   `json:"deleted"`
	Threads int64   `json:"threads"`
	Seconds float64 `json:"seconds"`
}

// cmdPrune deletes old checkpoints of every thread in bounded batches.
func cmdPrune(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "prune")
	olderThan := f.String("older-than", "", "delete checkpoints older than `DURATION` (36h, 7d, 1d12h)")
	includeNewest := f.Bool("include-newest", false, "also delete a thread's newest checkpoint when it is old enough")
	asJSON := f.Bool("json", false, `print {"deleted": N, "threads": N, "seconds": S}`)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *olderThan == "" {
		return usageErrorf("prune: --older-than is required (e.g. --older-than 7d)")
	}
	d, err := parseAge(*olderThan)
	if err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	opts := pgcheckpoint.PruneOptions{OlderThan: d, IncludeNewest: *includeNewest}
	tty := isTerminal(e.stderr)
	if tty {
		opts.Progress = func(r pgcheckpoint.PruneResult) {
			fmt.Fprintf(e.stderr, "\rprune: %d checkpoints deleted in %d threads...", r.Deleted, r.Threads)
		}
	}
	res, err := s.cp.Prune(ctx, opts)
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(pruneResult{res.Deleted, res.Threads, res.Duration.Seconds()})
	}
	_, err = fmt.Fprintf(e.stdout, "deleted %d checkpoints in %d threads in %s\n", res.Deleted, res.Threads, res.Duration.Round(time.Millisecond))
	return err
}

var daysPrefix = regexp.MustCompile(`^(\d+(?:\.\d+)?)d(.*)$`)

// parseAge parses a Go duration with an optional leading number of days: 36h, 7d, 1d12h, 1.5d.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, _ := strconv.ParseFloat(m[1], 64)
		d = time.Duration(days * float64(24*time.Hour))
		rest = m[2]
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, usageErrorf("prune: --older-than %q is not a duration (36h, 7d, 1d12h)", s)
		}
		d += r
	}
	if d <= 0 {
		return 0, usageErrorf("prune: --older-than must be positive, got %q", s)
	}
	return d, nil
}
