package pgcheckpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Leases make one writer the driver of a thread. Fencing (PutAfter) stops two writers from forking a
// thread's history; a lease says who writes at all: Acquire grants the thread to one owner for a time,
// with a fencing token that grows with every grant, and puts through the lease fail with ErrLeaseLost
// once it expired or another owner took the thread over. A crashed owner's lease simply expires: nothing
// runs on the server. The server's clock decides (now() in every statement), so clients' clocks may
// disagree. Leases live in the table <table>_leases (EnsureLeaseSchema; on a delta table <table> is the
// view's name, so it is the lease table a full table of that name has), are plain rows (no advisory
// lock, no session state: CockroachDB and PgBouncer's transaction pooling work), and are checked in the
// same transaction as the put they guard: the put locks its lease row, so the thread's next grant cannot
// commit before the put has, and no write of an expired lease lands after the successor's first write.
// On a delta table the put in that transaction is the delta put of a caller's transaction (WithTx).

// Lease is one grant of a thread to an owner. Its methods are safe for concurrent use.
type Lease struct {
	Thread string
	Owner  string
	// Token is the grant's fencing token: higher than every earlier grant's for the thread. Pass it to
	// other systems the owner writes to, so they can refuse an older holder too.
	Token int64
	// Expires is when the lease ends, by the server's clock, as of the grant or the last Renew.
	Expires time.Time

	c *Checkpointer
}

// EnsureLeaseSchema creates the lease table, <table>_leases, if it is missing (idempotent, safe to run
// concurrently). Acquire needs it; EnsureSchema does not create it. On a delta table <table> is the
// view's name (docs/storage.md): the lease table is the same one a full table of that name has.
func (c *Checkpointer) EnsureLeaseSchema(ctx context.Context) error {
	defer c.hold()()
	if !c.facts.advisoryLocks {
		return fail(OpEnsureSchema, "", "", c.ensureEach(ctx, []string{c.q.leaseTable}))
	}
	err := c.runTx(ctx, func(q DBTX) error {
		if _, err := q.ExecContext(ctx, c.q.lockSchema); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, c.q.leaseTable)
		return privilegeError(c.names, c.q.leaseTable, err)
	})
	return fail(OpEnsureSchema, "", "", err)
}

// Acquire grants the thread to owner for ttl: when no lease of the thread is in force, or owner holds
// it already (a new grant then, with a new token: the old Lease value is lost). Another owner's lease
// in force is ErrLeaseHeld. owner names the process (1 to 1024 bytes of UTF-8, like a thread id); ttl is
// at least a millisecond (ErrInvalidOptions).
func (c *Checkpointer) Acquire(ctx context.Context, threadID, owner string, ttl time.Duration) (*Lease, error) {
	defer c.hold()()
	start := time.Now()
	l, err := c.acquire(ctx, threadID, owner, ttl)
	err = fail(OpAcquire, threadID, "", err)
	c.observe(ctx, Event{Op: OpAcquire, ThreadID: threadID, Start: start, Err: err})
	return l, err
}

func (c *Checkpointer) acquire(ctx context.Context, threadID, owner string, ttl time.Duration) (*Lease, error) {
	if err := checkLease(threadID, owner, ttl); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &Lease{Thread: threadID, Owner: owner, c: c}
	err := c.db.QueryRowContext(ctx, c.q.leaseAcquire, threadID, owner, ttl.Seconds()).Scan(&l.Token, &l.Expires)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("the thread is leased to another owner: %w", ErrLeaseHeld)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// checkLease validates a lease's thread, owner and ttl before anything is sent.
func checkLease(threadID, owner string, ttl time.Duration) error {
	if err := checkThread(threadID); err != nil {
		return err
	}
	if owner == "" || len(owner) > 1024 || !utf8.ValidString(owner) {
		return fmt.Errorf("lease owner must be 1 to 1024 bytes of UTF-8: %w", ErrInvalidOptions)
	}
	for i := 0; i < len(owner); i++ {
		if owner[i] == 0 {
			return fmt.Errorf("lease owner holds a NUL byte: %w", ErrInvalidOptions)
		}
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("lease ttl must be at least 1ms, got %v: %w", ttl, ErrInvalidOptions)
	}
	return nil
}

// Renew extends the lease to ttl from now (the server's), if it is still in force; else ErrLeaseLost.
func (l *Lease) Renew(ctx context.Context, ttl time.Duration) error {
	defer l.c.hold()()
	return fail(OpRenew, l.Thread, "", l.renew(ctx, ttl))
}

func (l *Lease) renew(ctx context.Context, ttl time.Duration) error {
	c := l.c
	if err := checkLease(l.Thread, l.Owner, ttl); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var expires time.Time
	err := c.db.QueryRowContext(ctx, c.q.leaseRenew, l.Thread, l.Owner, l.Token, ttl.Seconds()).Scan(&expires)
	if err == sql.ErrNoRows {
		return fmt.Errorf("lease %d expired or was taken over: %w", l.Token, ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	l.Expires = expires
	return nil
}

// Release ends the lease now, so that another owner can acquire the thread at once. Releasing a lease
// that is no longer in force does nothing.
func (l *Lease) Release(ctx context.Context) error {
	c := l.c
	defer c.hold()()
	if err := ctx.Err(); err != nil {
		return fail(OpRelease, l.Thread, "", err)
	}
	_, err := c.db.ExecContext(ctx, c.q.leaseRelease, l.Thread, l.Owner, l.Token)
	return fail(OpRelease, l.Thread, "", err)
}

// Put stores snapshot as the thread's newest checkpoint, as Checkpointer.Put does (on either storage),
// only while the lease is in force: in one transaction that first locks the lease's row and checks it by the server's clock,
// then puts. A lease that expired or was taken over is ErrLeaseLost, and nothing is written. The whole
// transaction runs again on a retryable error or when another writer of the thread got in between
// (ErrConflict), up to Options.MaxAttempts, re-checking the lease each time. It cannot join a caller's
// transaction (a Checkpointer over a *sql.Tx): ErrInvalidOptions.
func (l *Lease) Put(ctx context.Context, snapshot []byte) (string, error) {
	id, err := l.put(ctx, snapshot)
	return id, fail(OpLeasePut, l.Thread, "", err)
}

func (l *Lease) put(ctx context.Context, snapshot []byte) (string, error) {
	c := l.c
	if c.inTx {
		return "", fmt.Errorf("a lease put runs its own transaction; use a Checkpointer over a *sql.DB or *sql.Conn: %w", ErrInvalidOptions)
	}
	b, ok := c.db.(txBeginner)
	if !ok {
		return "", fmt.Errorf("%T cannot begin transactions: %w", c.db, ErrInvalidOptions)
	}
	level := sql.LevelReadCommitted
	if c.facts.callerIsolation == "serializable" {
		level = sql.LevelSerializable
	}
	for attempt := 1; ; attempt++ {
		id, err := l.putOnce(ctx, b, level, snapshot)
		if err == nil || attempt >= c.attempts || ctx.Err() != nil ||
			!(Retryable(err) || errors.Is(err, ErrConflict)) || errors.Is(err, ErrOutcomeUnknown) {
			if err != nil && attempt >= c.attempts && (Retryable(err) || errors.Is(err, ErrConflict)) {
				err = fmt.Errorf("%d attempts: %w: %w", attempt, ErrRetriesExhausted, err)
			}
			return id, err
		}
		if err := backoff(ctx, attempt+1); err != nil {
			return "", err
		}
	}
}

// putOnce is one transaction of a lease put: check and lock the lease, put, commit.
func (l *Lease) putOnce(ctx context.Context, b txBeginner, level sql.IsolationLevel, snapshot []byte) (_ string, err error) {
	c := l.c
	defer c.hold()() // the whole transaction, on a single connection; the inner Put takes no turn
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tx, err := b.BeginTx(ctx, &sql.TxOptions{Isolation: level})
	if err != nil {
		return "", err
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	var inForce bool
	err = tx.QueryRowContext(ctx, c.q.leaseCheck, l.Thread, l.Owner, l.Token).Scan(&inForce)
	switch {
	case err == sql.ErrNoRows:
		return "", fmt.Errorf("lease %d was taken over or the thread was leased again: %w", l.Token, ErrLeaseLost)
	case err != nil:
		return "", err
	case !inForce:
		return "", fmt.Errorf("lease %d expired: %w", l.Token, ErrLeaseLost)
	}
	inner := c.WithTx(tx)
	inner.isolationOK.Store(true) // begun here at the level the dialect's put needs: no need to ask
	id, err := inner.Put(ctx, l.Thread, snapshot)
	if err != nil {
		return "", err
	}
	committed = true
	if err := tx.Commit(); err != nil {
		if SQLState(err) == "" || SQLState(err) == stateAmbiguousCommit || connLost(err) {
			return "", fmt.Errorf("checkpoint %s: %w: %w", id, ErrOutcomeUnknown, err)
		}
		return "", err
	}
	return id, nil
}
