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
// migrate) and changed by SetRetention. A policy with both a cap and a byte budget trims by whichever
// keeps fewer checkpoints.
type Retention struct {
	// MaxCheckpointsPerThread is the cap: after a put returns, the thread keeps its newest this many
	// checkpoints. NoLimit keeps every checkpoint.
	MaxCheckpointsPerThread int
	// MaxBytesPerThread is the byte budget: after a put returns, the thread keeps its newest checkpoints
	// whose size_bytes (the JSON as sent) sum to at most this many bytes, and always at least the
	// newest, however large. 0 (or NoLimit) means no byte budget: Retention reports 0 then.
	MaxBytesPerThread int64
}

// String describes the policy: "100 checkpoints per thread", "every checkpoint", "at most 1048576
// bytes per thread" or "100 checkpoints and at most 1048576 bytes per thread".
func (r Retention) String() string {
	switch {
	case r.MaxCheckpointsPerThread <= 0 && r.MaxBytesPerThread <= 0:
		return "every checkpoint"
	case r.MaxBytesPerThread <= 0:
		return strconv.Itoa(r.MaxCheckpointsPerThread) + " checkpoints per thread"
	case r.MaxCheckpointsPerThread <= 0:
		return "at most " + strconv.FormatInt(r.MaxBytesPerThread, 10) + " bytes per thread"
	}
	return strconv.Itoa(r.MaxCheckpointsPerThread) + " checkpoints and at most " + strconv.FormatInt(r.MaxBytesPerThread, 10) + " bytes per thread"
}

// policyRefresh is how long a Checkpointer trusts the policy it read: a change (SetRetention, migrate)
// reaches every running writer within this time.
const policyRefresh = time.Minute

// policyCache is the policy a Checkpointer read last, shared with its WithTx copies.
type policyCache struct {
	mu       sync.Mutex
	limits   limits // what the table records
	recorded bool   // the table records a policy (else the client's own limits apply)
	readAt   time.Time
	// enc is the table's encryption state as read at encAt (see encryptionCached).
	enc   EncryptionState
	encAt time.Time
}

// limits is what a put trims to: cap checkpoints (0: no cap) and budget bytes (0: no budget).
type limits struct {
	cap    int
	budget int64
}

// limits returns what puts trim to: the table's recorded policy, read at most once per policyRefresh. A
// client that names a cap or a byte budget of its own (Options.MaxCheckpointsPerThread or
// Options.MaxBytesPerThread not 0) must name the recorded one: any other is ErrRetentionMismatch. A
// table that records no policy (made by the TypeScript package or an older pgcheckpoint, and not
// upgraded by EnsureSchema or migrate since) is trimmed only by a client that names a cap or budget, to
// those: a client that leaves it to the table trims nothing, so nothing is deleted that its owner meant
// to keep.
func (c *Checkpointer) limits(ctx context.Context) (limits, error) {
	p := c.policy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readAt.IsZero() || time.Since(p.readAt) >= policyRefresh {
		l, recorded, err := c.readRetention(ctx)
		if err != nil {
			return limits{}, err
		}
		p.limits, p.recorded, p.readAt = l, recorded, time.Now()
	}
	if !p.recorded {
		var l limits
		if c.wantCap != nil {
			l.cap = *c.wantCap
		}
		if c.wantBudget != nil {
			l.budget = *c.wantBudget
		}
		return l, nil
	}
	table := Retention{p.limits.cap, p.limits.budget}
	client := table
	if c.wantCap != nil {
		client.MaxCheckpointsPerThread = *c.wantCap
	}
	if c.wantBudget != nil {
		client.MaxBytesPerThread = *c.wantBudget
	}
	if client != table {
		return limits{}, fmt.Errorf("the table keeps %s, this client is configured for %s: leave Options.MaxCheckpointsPerThread and MaxBytesPerThread 0 to follow the table, or change the table's policy (SetRetention, `pgcheckpoint migrate --max-per-thread N --max-bytes-per-thread B`): %w",
			table, client, ErrRetentionMismatch)
	}
	return p.limits, nil
}

// readRetention reads the recorded policy: recorded is false when the table records none.
func (c *Checkpointer) readRetention(ctx context.Context) (l limits, recorded bool, err error) {
	var exists bool
	if err := c.db.QueryRowContext(ctx, c.q.policyTable, c.names.rawSchema, c.names.rawPolicy).Scan(&exists); err != nil || !exists {
		return limits{}, false, err
	}
	err = c.db.QueryRowContext(ctx, c.q.readPolicy).Scan(&l.cap, &l.budget)
	if errors.Is(err, sql.ErrNoRows) {
		return limits{}, false, nil
	}
	return l, err == nil, interpret(err)
}

// recordRetention records the client's cap (DefaultMaxCheckpointsPerThread when it names none) and
// byte budget (none when it names none) where the table records no policy yet, then checks the client
// against what the table records.
func (c *Checkpointer) recordRetention(ctx context.Context) error {
	l, recorded, err := c.readRetention(ctx)
	if err != nil {
		return err
	}
	if !recorded {
		want := limits{cap: DefaultMaxCheckpointsPerThread}
		if c.wantCap != nil {
			want.cap = *c.wantCap
		}
		if c.wantBudget != nil {
			want.budget = *c.wantBudget
		}
		res, err := c.db.ExecContext(ctx, c.q.recordPolicy, want.cap, want.budget)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			l, recorded = want, true
		} else if l, recorded, err = c.readRetention(ctx); err != nil { // a concurrent run recorded one
			return err
		}
	}
	c.policy.mu.Lock()
	c.policy.limits, c.policy.recorded, c.policy.readAt = l, recorded, time.Now()
	c.policy.mu.Unlock()
	_, err = c.limits(ctx) // the client against what is recorded, without reading again
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
	l, recorded, err := c.readRetention(ctx)
	if err == nil && !recorded {
		err = fmt.Errorf("the table records no retention policy: %w", ErrSchemaMissing)
	}
	if err != nil {
		return Retention{}, fail(OpRetention, "", "", err)
	}
	if l.cap == 0 {
		l.cap = NoLimit
	}
	return Retention{MaxCheckpointsPerThread: l.cap, MaxBytesPerThread: l.budget}, nil
}

// SetRetention records r as the table's retention policy (the policy table must exist: EnsureSchema).
// Every writer trims by it within a minute (Checkpointers read the policy at most once a minute);
// writers whose Options name another cap then fail with ErrRetentionMismatch until they are configured
// to follow the table (0) or to the new cap. Lowering the cap trims each thread at its next put, not at
// once (Prune trims by age); so does setting or lowering the byte budget. A cap of 0 is
// ErrInvalidOptions: NoLimit keeps every checkpoint. A MaxBytesPerThread of 0 or NoLimit records no
// byte budget.
func (c *Checkpointer) SetRetention(ctx context.Context, r Retention) error {
	defer c.hold()()
	if r.MaxCheckpointsPerThread == 0 {
		return fail(OpSetRetention, "", "", fmt.Errorf("MaxCheckpointsPerThread 0 has no meaning here (NoLimit keeps every checkpoint): %w", ErrInvalidOptions))
	}
	cap := max(r.MaxCheckpointsPerThread, 0)
	_, err := c.db.ExecContext(ctx, c.q.setPolicy, cap, max(r.MaxBytesPerThread, 0))
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
	set = strings.Replace(set, "$1", strconv.Itoa(max(r.MaxCheckpointsPerThread, 0)), 1)
	return strings.Replace(set, "$2", strconv.FormatInt(max(r.MaxBytesPerThread, 0), 10), 1) + ";\n", nil
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

// wantBudgetOf is the byte budget opts names: nil when it leaves retention to the table (0), 0 for
// NoLimit (no byte budget).
func wantBudgetOf(opts Options) *int64 {
	switch n := opts.MaxBytesPerThread; {
	case n == 0:
		return nil
	case n < 0:
		return new(int64)
	default:
		return &n
	}
}
