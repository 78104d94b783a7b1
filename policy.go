package pgcheckpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Retention is a table's retention policy: every writer of the table trims by it, whatever its own
// configuration, so two services (or a service and the CLI) can never trim one table differently. It is
// recorded in the database, in the table <table>_policy beside the checkpoint table, by EnsureSchema (or
// migrate) and changed by SetRetention.
type Retention struct {
	// MaxCheckpointsPerThread is the cap: after a put returns, the thread keeps its newest this many
	// checkpoints. NoLimit keeps every checkpoint.
	MaxCheckpointsPerThread int
}

// String describes the policy: "100 checkpoints per thread" or "every checkpoint".
func (r Retention) String() string {
	if r.MaxCheckpointsPerThread <= 0 {
		return "every checkpoint"
	}
	return strconv.Itoa(r.MaxCheckpointsPerThread) + " checkpoints per thread"
}

// policyRefresh is how long a Checkpointer trusts the policy it read: a change (SetRetention, migrate)
// reaches every running writer within this time.
const policyRefresh = time.Minute

// policyCache is the policy a Checkpointer read last, shared with its WithTx copies.
type policyCache struct {
	mu       sync.Mutex
	cap      int  // trim to this many; 0: keep everything
	recorded bool // the table records a policy (else cap is the client's own)
	readAt   time.Time
}

// retention returns the cap puts trim to (0: none): the table's recorded policy, read at most once per
// policyRefresh. A client that names a cap of its own (Options.MaxCheckpointsPerThread not 0) must name
// the recorded one: any other is ErrRetentionMismatch. A table that records no policy (made by the
// TypeScript package or an older pgcheckpoint, and not upgraded by EnsureSchema or migrate since) is
// trimmed only by a client that names a cap, to that cap: a client that leaves it to the table trims
// nothing, so nothing is deleted that its owner meant to keep.
func (c *Checkpointer) retention(ctx context.Context) (int, error) {
	p := c.policy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readAt.IsZero() || time.Since(p.readAt) >= policyRefresh {
		cap, recorded, err := c.readRetention(ctx)
		if err != nil {
			return 0, err
		}
		p.cap, p.recorded, p.readAt = cap, recorded, time.Now()
	}
	switch {
	case !p.recorded && c.wantCap != nil:
		return *c.wantCap, nil
	case !p.recorded:
		return 0, nil
	case c.wantCap != nil && *c.wantCap != p.cap:
		return 0, fmt.Errorf("the table keeps %s, this client is configured for %s: leave Options.MaxCheckpointsPerThread 0 to follow the table, or change the table's policy (SetRetention, `pgcheckpoint migrate --max-per-thread N`): %w",
			Retention{p.cap}, Retention{*c.wantCap}, ErrRetentionMismatch)
	}
	return p.cap, nil
}

// readRetention reads the recorded policy: recorded is false when the table records none.
func (c *Checkpointer) readRetention(ctx context.Context) (cap int, recorded bool, err error) {
	var exists bool
	if err := c.db.QueryRowContext(ctx, c.q.policyTable, c.names.rawSchema, c.names.rawPolicy).Scan(&exists); err != nil || !exists {
		return 0, false, err
	}
	err = c.db.QueryRowContext(ctx, c.q.readPolicy).Scan(&cap)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return cap, err == nil, err
}

// recordRetention records the client's cap (DefaultMaxCheckpointsPerThread when it names none) where
// the table records no policy yet, then checks the client against what the table records.
func (c *Checkpointer) recordRetention(ctx context.Context) error {
	cap, recorded, err := c.readRetention(ctx)
	if err != nil {
		return err
	}
	if !recorded {
		want := DefaultMaxCheckpointsPerThread
		if c.wantCap != nil {
			want = *c.wantCap
		}
		res, err := c.db.ExecContext(ctx, c.q.recordPolicy, want)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			cap, recorded = want, true
		} else if cap, recorded, err = c.readRetention(ctx); err != nil { // a concurrent run recorded one
			return err
		}
	}
	c.policy.mu.Lock()
	c.policy.cap, c.policy.recorded, c.policy.readAt = cap, recorded, time.Now()
	c.policy.mu.Unlock()
	_, err = c.retention(ctx) // the client against what is recorded, without reading again
	return err
}

// forgetRetention makes the next put read the policy again.
func (c *Checkpointer) forgetRetention() {
	c.policy.mu.Lock()
	c.policy.readAt = time.Time{}
	c.policy.mu.Unlock()
}

// Retention returns the table's recorded retention policy, or ErrSchemaMissing when the table records
// none (run EnsureSchema or `pgcheckpoint migrate`).
func (c *Checkpointer) Retention(ctx context.Context) (Retention, error) {
	defer c.hold()()
	cap, recorded, err := c.readRetention(ctx)
	if err == nil && !recorded {
		err = fmt.Errorf("the table records no retention policy: %w", ErrSchemaMissing)
	}
	if err != nil {
		return Retention{}, fail(OpRetention, "", "", err)
	}
	if cap == 0 {
		cap = NoLimit
	}
	return Retention{MaxCheckpointsPerThread: cap}, nil
}

// SetRetention records r as the table's retention policy (the policy table must exist: EnsureSchema).
// Every writer trims by it within a minute (Checkpointers read the policy at most once a minute);
// writers whose Options name another cap then fail with ErrRetentionMismatch until they are configured
// to follow the table (0) or to the new cap. Lowering the cap trims each thread at its next put, not at
// once (Prune trims by age). A cap of 0 is ErrInvalidOptions: NoLimit keeps every checkpoint.
func (c *Checkpointer) SetRetention(ctx context.Context, r Retention) error {
	defer c.hold()()
	if r.MaxCheckpointsPerThread == 0 {
		return fail(OpSetRetention, "", "", fmt.Errorf("MaxCheckpointsPerThread 0 has no meaning here (NoLimit keeps every checkpoint): %w", ErrInvalidOptions))
	}
	cap := max(r.MaxCheckpointsPerThread, 0)
	_, err := c.db.ExecContext(ctx, c.q.setPolicy, cap)
	c.forgetRetention()
	return fail(OpSetRetention, "", "", err)
}

// RetentionSQL returns the statement that records r as the retention policy of a table (dialect d, nil
// means PostgreSQL; empty schema or table mean the defaults), for migration tools: SchemaSQL records the
// default where a table records none; this one sets r whatever was recorded.
func RetentionSQL(d Dialect, schema, table string, r Retention) (string, error) {
	if d == nil {
		d = PostgreSQL
	}
	if r.MaxCheckpointsPerThread == 0 {
		return "", fail(OpSetRetention, "", "", fmt.Errorf("MaxCheckpointsPerThread 0 has no meaning here (NoLimit keeps every checkpoint): %w", ErrInvalidOptions))
	}
	n, err := newNames(orDefault(schema, DefaultSchema), orDefault(table, DefaultTable))
	if err != nil {
		return "", fail(OpNew, "", "", err)
	}
	set := newStatements(n, d.facts()).setPolicy
	return strings.Replace(set, "$1", strconv.Itoa(max(r.MaxCheckpointsPerThread, 0)), 1) + ";\n", nil
}

// wantCapOf is the cap opts names: nil when it leaves retention to the table (0), 0 for NoLimit.
func wantCapOf(opts Options) *int {
	switch n := opts.MaxCheckpointsPerThread; {
	case n == 0:
		return nil
	case n < 0:
		return new(int)
	default:
		return &n
	}
}
