package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
)

// A delta put runs in the full layout's put loop (putLoop, judge, classify, budget): only its attempt
// differs. An attempt plans the put on the state of the thread's head that this process knows (its
// cache; a cold cache costs one small read, peek) and sends it with that head's id as its basis. The
// statement inserts only when the basis is still the thread's newest head, so a stale plan is never
// stored: it reports the newest head's state instead, the cache takes it, and the loop's next attempt
// plans on it (verdictLost).

// deltaAttempt is attempt for a delta table.
func (c *Checkpointer) deltaAttempt(ctx context.Context, req putRequest, id string) (putReport, bool, error) {
	d := c.delta
	st := d.cache.get(req.threadID)
	if st == nil {
		var err error
		if st, err = c.deltaPeek(ctx, req.threadID); err != nil {
			return putReport{}, false, err
		}
		d.cache.set(req.threadID, st)
	}
	ms := splitSnapshot(req.doc)
	specificFence := req.fence != nil && *req.fence != ""
	if st.head == "" && !specificFence {
		return c.deltaFirst(ctx, req, id, st, ms)
	}
	plan, err := c.planPut(req, id, st, ms)
	if err != nil {
		return putReport{}, false, err
	}
	r, headArrays, headAlloc, err := c.deltaAppend(ctx, req, id, st, plan)
	switch {
	case err != nil:
		d.cache.drop(req.threadID, st)
		return r, false, err
	case r.newSeq.Valid:
		plan.next.head = id
		d.cache.set(req.threadID, plan.next)
	case r.mine:
		d.cache.drop(req.threadID, st) // stored by an earlier attempt, maybe on another basis
	case !r.headID.Valid:
		empty := &threadState{}
		d.cache.set(req.threadID, empty)
		if !specificFence {
			return c.deltaFirst(ctx, req, id, empty, ms)
		}
	default:
		fresh, perr := parseState(r.headID.String, []byte(headArrays.String), []byte(headAlloc.String))
		if perr != nil {
			d.cache.drop(req.threadID, st)
			return r, false, perr
		}
		d.cache.set(req.threadID, fresh)
	}
	return r, false, nil
}

// deltaFirst stores the first head of a thread that st says is empty: everything is a new item.
func (c *Checkpointer) deltaFirst(ctx context.Context, req putRequest, id string, st *threadState, ms []member) (putReport, bool, error) {
	plan, err := c.planPut(req, id, st, ms)
	if err != nil {
		return putReport{}, true, err
	}
	var seq sql.NullInt64
	var stored int64
	f := req.facts
	err = c.ownTx(ctx, c.facts.firstRowIsolation, func(q DBTX) error {
		if c.facts.advisoryLocks {
			if _, err := q.ExecContext(ctx, c.q.lockFirst, req.threadID); err != nil {
				return err
			}
		}
		return q.QueryRowContext(ctx, c.delta.q.first, req.threadID, id, json.RawMessage(plan.head), f.version, f.size,
			json.RawMessage(plan.arrays), json.RawMessage(plan.alloc), json.RawMessage(plan.items), plan.lo, plan.hi, string(plan.pos)).Scan(&seq, &stored)
	})
	if err != nil || !seq.Valid {
		// Not empty after all (or unknown): the next attempt reads the thread's head.
		c.delta.cache.drop(req.threadID, st)
		return putReport{}, true, err
	}
	plan.next.head = id
	c.delta.cache.set(req.threadID, plan.next)
	return putReport{newSeq: seq}, true, nil
}

// deltaPeek reads the state of the thread's newest head (an empty state for an empty thread).
func (c *Checkpointer) deltaPeek(ctx context.Context, threadID string) (*threadState, error) {
	var (
		head          string
		arrays, alloc []byte
	)
	err := c.db.QueryRowContext(ctx, c.delta.q.peek, threadID).Scan(&head, &arrays, &alloc)
	if err == sql.ErrNoRows {
		return &threadState{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseState(head, arrays, alloc)
}

// deltaAppend appends a head planned on st after the thread's newest: one statement (oneStatementPut),
// or one transaction holding the insert and its trim, as appendRow does for the full layout (a byte
// budget takes the statements that trim by bytes). It returns
// the report and the state of the newest head the statement saw.
func (c *Checkpointer) deltaAppend(ctx context.Context, req putRequest, id string, st *threadState, plan deltaPlan) (
	r putReport, headArrays, headAlloc sql.NullString, err error) {
	var fenceArg, capArg, budgetArg any
	if req.fence != nil {
		fenceArg = *req.fence
	}
	if req.cap > 0 {
		capArg = int64(req.cap)
	}
	if req.budget > 0 {
		budgetArg = req.budget
	}
	var nItems, gone int64
	scan := func(row *sql.Row) error {
		return row.Scan(&r.newSeq, &r.headID, &r.headSeq, &r.locked, &r.lockedSeq, &r.mine,
			&headArrays, &headAlloc, &nItems, &r.unnumbered, &r.trimmed, &gone)
	}
	f := req.facts
	arg := &sendOnce{id: id} // see appendRow: database/sql never sends the put twice
	args := []any{req.threadID, arg, json.RawMessage(plan.head), f.version, f.size, fenceArg,
		json.RawMessage(plan.arrays), json.RawMessage(plan.alloc), st.head, json.RawMessage(plan.items), string(plan.pos), plan.lo, plan.hi}
	dq := c.delta.q
	if c.facts.oneStatementPut {
		if req.budget > 0 {
			err = scan(c.db.QueryRowContext(ctx, dq.putBytes, append(args, capArg, budgetArg)...))
		} else {
			err = scan(c.db.QueryRowContext(ctx, dq.put, append(args, capArg)...))
		}
		return r, headArrays, headAlloc, arg.check(err)
	}
	insertSQL := dq.insert
	if req.budget > 0 {
		insertSQL = dq.insertBytes
	}
	insert := func(q DBTX) error { return scan(q.QueryRowContext(ctx, insertSQL, args...)) }
	if req.cap == 0 && req.budget == 0 {
		return r, headArrays, headAlloc, arg.check(insert(c.db))
	}
	err = c.ownTx(ctx, c.facts.ownIsolation, func(q DBTX) error {
		if err := insert(q); err != nil || !r.newSeq.Valid {
			return err
		}
		if req.budget > 0 {
			return q.QueryRowContext(ctx, dq.trimBytes, req.threadID, r.newSeq.Int64, capArg, budgetArg).Scan(&r.trimmed, &gone)
		}
		bound := r.newSeq.Int64 - int64(req.cap)
		if bound < 1 {
			return nil
		}
		return q.QueryRowContext(ctx, dq.trim, req.threadID, bound).Scan(&r.trimmed, &gone)
	})
	return r, headArrays, headAlloc, err
}

// deltaGC removes the items no head of the threads holds any more, after a delete or prune in the same
// transaction (a no-op for the full layout).
func (c *Checkpointer) deltaGC(ctx context.Context, q DBTX, threads []string) error {
	if c.delta == nil || len(threads) == 0 {
		return nil
	}
	list, err := json.Marshal(threads)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, c.delta.q.gc, json.RawMessage(list))
	return err
}
