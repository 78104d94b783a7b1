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
	olderThan := f.String("older-than", "", "delete checkpoints older than `DURATION` (36h, 7d, 1w, 1d12h)")
	includeNewest := f.Bool("include-newest", false, "also delete a thread's newest checkpoint when it is old enough")
	dryRun := f.Bool("dry-run", false, "count what would be deleted (one read of the table, no lock); delete nothing")
	prefix := f.String("prefix", "", "only threads whose id starts with `P` (byte for byte)")
	asJSON := f.Bool("json", false, `print {"deleted": N, "threads": N, "seconds": S} (with --dry-run also "dry_run": true)`)
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
	if err := checkPrefixFlag("prune", *prefix); err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	if *dryRun {
		start := time.Now()
		n, threads, err := pruneCount(ctx, s, f.conn, d, *includeNewest, *prefix)
		if err != nil {
			if ctx.Err() != nil {
				return interruptedf(err, "prune: --dry-run interrupted; nothing was deleted")
			}
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(struct {
				pruneResult
				DryRun bool `json:"dry_run"`
			}{pruneResult{n, threads, time.Since(start).Seconds()}, true})
		}
		_, err = fmt.Fprintf(e.stdout, "would delete %s in %s from %s%s (dry run, nothing deleted)\n",
			plural(int(n), "checkpoint", "checkpoints"), plural(int(threads), "thread", "threads"), s.table, prefixNote(*prefix))
		return err
	}
	opts := pgcheckpoint.PruneOptions{OlderThan: d, IncludeNewest: *includeNewest, Prefix: *prefix}
	tty := isTerminal(e.stderr)
	if tty {
		opts.Progress = func(r pgcheckpoint.PruneResult) {
			fmt.Fprintf(e.stderr, "\rprune: %s deleted in %s...", plural(int(r.Deleted), "checkpoint", "checkpoints"), plural(int(r.Threads), "thread", "threads"))
		}
	}
	res, err := s.cp.Prune(ctx, opts)
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err != nil && ctx.Err() != nil {
		// Every batch is its own statement: what was deleted stays deleted, a rerun continues.
		return interruptedf(err, "prune: interrupted after deleting %s in %s from %s; rerun to continue",
			plural(int(res.Deleted), "checkpoint", "checkpoints"), plural(int(res.Threads), "thread", "threads"), s.table)
	}
	if err != nil {
		if res.Deleted > 0 {
			return fmt.Errorf("%w (prune had deleted %s before the error; rerun to continue)", err, plural(int(res.Deleted), "checkpoint", "checkpoints"))
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(pruneResult{res.Deleted, res.Threads, res.Duration.Seconds()})
	}
	_, err = fmt.Fprintf(e.stdout, "deleted %s in %s from %s%s in %s\n", plural(int(res.Deleted), "checkpoint", "checkpoints"),
		plural(int(res.Threads), "thread", "threads"), s.table, prefixNote(*prefix), res.Duration.Round(time.Millisecond))
	return err
}

var (
	weeksPrefix = regexp.MustCompile(`^(\d+(?:\.\d+)?)w(.*)$`)
	daysPrefix  = regexp.MustCompile(`^(\d+(?:\.\d+)?)d(.*)$`)
)

// parseAge parses a Go duration with an optional leading number of weeks and then of days: 36h, 7d,
// 1w, 2w3d, 1d12h, 1.5d.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if m := weeksPrefix.FindStringSubmatch(rest); m != nil {
		weeks, _ := strconv.ParseFloat(m[1], 64)
		d = time.Duration(weeks * float64(7*24*time.Hour))
		rest = m[2]
	}
	if m := daysPrefix.FindStringSubmatch(rest); m != nil {
		days, _ := strconv.ParseFloat(m[1], 64)
		d += time.Duration(days * float64(24*time.Hour))
		rest = m[2]
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, usageErrorf("prune: --older-than %q is not a duration (36h, 7d, 1w, 1d12h)", s)
		}
		d += r
	}
	if d <= 0 {
		return 0, usageErrorf("prune: --older-than must be positive, got %q", s)
	}
	return d, nil
}

// pruneCount counts what prune would delete with the same rule as the library's prune statement
// (created_at before the server's now minus d, and not the thread's newest checkpoint unless
// includeNewest), in one read-only statement over the table.
// A prefix ("" for all threads) limits it to the threads whose id starts with it: its first characters
// equal to the prefix, which for valid UTF-8 is the byte-for-byte test Prune makes.
func pruneCount(ctx context.Context, s *session, cf connFlags, d time.Duration, includeNewest bool, prefix string) (n, threads int64, err error) {
	t := quoteIdent(cf.schema) + "." + quoteIdent(cf.table)
	q := `SELECT count(*), count(DISTINCT t.thread_id) FROM ` + t + ` AS t
WHERE t.created_at < now() - $1::FLOAT8 * INTERVAL '1 second'
  AND ($2 OR t.checkpoint_id < (SELECT max(checkpoint_id) FROM ` + t + ` WHERE thread_id = t.thread_id))
  AND ($3::TEXT = '' OR left(t.thread_id, char_length($3::TEXT)) = $3::TEXT)`
	err = s.db.QueryRowContext(ctx, q, d.Seconds(), includeNewest, prefix).Scan(&n, &threads)
	if err != nil {
		return 0, 0, pgcheckpointErr("prune", err)
	}
	return n, threads, nil
}

// quoteIdent double-quotes an identifier already checked by checkNames (plain identifiers only).
func quoteIdent(s string) string { return `"` + s + `"` }

// pgcheckpointErr classifies an error of the CLI's own SQL as the library would: a missing table is
// ErrSchemaMissing, a missing privilege ErrPermission.
func pgcheckpointErr(op string, err error) error {
	switch pgcheckpoint.SQLState(err) {
	case "42P01", "3F000":
		return fmt.Errorf("%s: %w: %w", op, pgcheckpoint.ErrSchemaMissing, err)
	case "42501":
		return fmt.Errorf("%s: %w: %w", op, pgcheckpoint.ErrPermission, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
