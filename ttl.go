package pgcheckpoint

import (
	"fmt"
	"strings"
	"time"
)

// TTLOptions describe CockroachDB's row-level TTL for the checkpoint table (see TTLSQL).
type TTLOptions struct {
	// After is how long after its created_at a checkpoint expires: positive, in whole seconds.
	After time.Duration
	// Cron is when CockroachDB's TTL job runs (ttl_job_cron, cron syntax or @hourly, @daily, ...): ""
	// means "@hourly", CockroachDB's own default. Letters, digits, spaces and @ * / , - only.
	Cron string
}

// TTLSQL returns the statement that gives the checkpoint table CockroachDB's row-level TTL: the
// engine's own background job deletes the checkpoints whose created_at is older than opts.After,
// every opts.Cron. It is the engine's way to expire old checkpoints without running Prune, with limits
// Prune does not have (docs/cockroachdb.md, "Row-level TTL"): rows are deleted only when the job runs and
// stay readable until then, and the job deletes a thread's newest checkpoint like any other, so an idle
// thread disappears whole. PostgreSQL has no row-level TTL: for it TTLSQL returns ErrInvalidOptions
// (use Prune there). Empty schema or table mean the defaults.
func TTLSQL(d Dialect, schema, table string, opts TTLOptions) (string, error) {
	if d == nil || d.Name() != DialectCockroach {
		return "", fail(OpNew, "", "", fmt.Errorf("row-level TTL is CockroachDB's (dialect %q): on PostgreSQL run Prune: %w", dialectName(d), ErrInvalidOptions))
	}
	n, err := newNames(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable))
	if err != nil {
		return "", fail(OpNew, "", "", err)
	}
	interval, err := ttlInterval(opts.After)
	if err != nil {
		return "", fail(OpNew, "", "", err)
	}
	cron := orDefault(opts.Cron, "@hourly")
	if strings.Trim(cron, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 @*/,-") != "" {
		return "", fail(OpNew, "", "", fmt.Errorf("TTL cron %q: only letters, digits, spaces and @ * / , - are allowed: %w", cron, ErrInvalidOptions))
	}
	return ttlSQL(n, interval, cron), nil
}

// ttlInterval writes d as an SQL interval: whole hours as hours, else whole seconds.
func ttlInterval(d time.Duration) (string, error) {
	switch {
	case d <= 0 || d%time.Second != 0:
		return "", fmt.Errorf("TTL must be a positive whole number of seconds, got %v: %w", d, ErrInvalidOptions)
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour), nil
	}
	return fmt.Sprintf("%d seconds", d/time.Second), nil
}

func dialectName(d Dialect) string {
	if d == nil {
		return DialectPostgres
	}
	return d.Name()
}
