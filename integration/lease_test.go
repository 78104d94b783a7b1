package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestLeases walks a lease through grant, put, renew, release, takeover and expiry for every driver and
// dialect. Expiry is made by moving the lease's expires_at into the past on the server (what the
// server's clock passing it does), so the test waits for nothing. TestDeltaLeases runs the walk, as
// TestLeasePutInFlight and TestLeaseKill, on delta tables.
func TestLeases(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) { leaseWalk(t, tg) })
	}
}

// TestPgBouncerLeases runs the same walk through PgBouncer in transaction-pooling mode (see
// TestPgBouncer for the DSN settings), on full and delta tables: leases keep no session state.
func TestPgBouncerLeases(t *testing.T) {
	port := startPgBouncer(t)
	for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
		for _, tg := range postgresTargets(t) {
			mode := map[string][2]string{"pgx": {"default_query_exec_mode", "exec"}, "postgres": {"binary_parameters", "yes"}}[tg.driver]
			tg.dsn = withParam(t, withHostPort(t, tg.dsn, port, dbName(t, tg.dsn)), mode[0], mode[1])
			tg.storage = storage
			t.Run(storage.String()+"/"+tg.name, func(t *testing.T) { leaseWalk(t, tg) })
		}
	}
}

// leaseWalk is TestLeases for one target, on a table of the target's storage. The snapshots grow an
// array, so that on a delta table each put appends items; every checkpoint a lease put stored must read
// back as it was written.
func leaseWalk(t *testing.T, tg target) {
	db := tg.open(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Storage: tg.storage})
	ctx := testCtx(t)
	for range 2 {
		if err := cp.EnsureLeaseSchema(ctx); err != nil {
			t.Fatalf("EnsureLeaseSchema: %v", err)
		}
	}
	// The lease table is named for the table as the user named it, whatever its storage.
	leases := `"` + schema + `"."ziro_checkpoints_leases"`
	expire := func(thread string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, `UPDATE `+leases+` SET expires_at = now() - INTERVAL '1 second' WHERE thread_id = $1`, thread); err != nil {
			t.Fatal(err)
		}
	}
	a, err := cp.Acquire(ctx, "t", "a", time.Minute)
	if err != nil || a.Token != 1 || time.Until(a.Expires) < 50*time.Second {
		t.Fatalf("Acquire = %+v, %v; want token 1, a minute", a, err)
	}
	if _, err := cp.Acquire(ctx, "t", "b", time.Minute); !errors.Is(err, pgcheckpoint.ErrLeaseHeld) {
		t.Fatalf("Acquire of a held thread: %v, want ErrLeaseHeld", err)
	}
	written := map[string]string{} // id -> snapshot
	leasePut := func(l *pgcheckpoint.Lease, doc string) string {
		t.Helper()
		id, err := l.Put(ctx, []byte(doc))
		if err != nil {
			t.Fatalf("lease Put (token %d): %v", l.Token, err)
		}
		written[id] = doc
		return id
	}
	id1 := leasePut(a, `{"by": "a", "messages": ["m1"]}`)
	before := a.Expires
	if err := a.Renew(ctx, 2*time.Minute); err != nil || !a.Expires.After(before) {
		t.Fatalf("Renew: %v, expires %v (was %v)", err, a.Expires, before)
	}
	// Expired: its put and renew fail and write nothing; another owner takes over with a higher
	// token.
	expire("t")
	if _, err := a.Put(ctx, []byte(`{"by": "a", "late": true, "messages": ["m1", "late"]}`)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Put through an expired lease: %v, want ErrLeaseLost", err)
	}
	if err := a.Renew(ctx, time.Minute); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Renew of an expired lease: %v, want ErrLeaseLost", err)
	}
	b, err := cp.Acquire(ctx, "t", "b", time.Minute)
	if err != nil || b.Token != 2 {
		t.Fatalf("Acquire after expiry = %+v, %v; want token 2", b, err)
	}
	id2 := leasePut(b, `{"by": "b", "messages": ["m1", "m2"]}`)
	// Taken over: a's put still fails once a's lease row holds b's grant.
	if _, err := a.Put(ctx, []byte(`{"by": "a", "messages": ["m1", "m2", "a"]}`)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Put through a lease taken over: %v, want ErrLeaseLost", err)
	}
	// Released: free at once; a new grant, even to the same owner, has a higher token and makes
	// the older Lease value lost.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := b.Put(ctx, []byte(`{"by": "b"}`)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Put through a released lease: %v, want ErrLeaseLost", err)
	}
	c1, err := cp.Acquire(ctx, "t", "c", time.Minute)
	if err != nil || c1.Token != 3 {
		t.Fatalf("Acquire after release = %+v, %v; want token 3", c1, err)
	}
	c2, err := cp.Acquire(ctx, "t", "c", time.Minute)
	if err != nil || c2.Token != 4 {
		t.Fatalf("Acquire by the holder = %+v, %v; want a new grant, token 4", c2, err)
	}
	if _, err := c1.Put(ctx, []byte(`{"by": "c1"}`)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("Put through the holder's older grant: %v, want ErrLeaseLost", err)
	}
	id3 := leasePut(c2, `{"by": "c2", "messages": ["m1", "m2", "m3"], "steps": [{"n": 1}]}`)
	if got := leaseIDs(t, cp, "t"); strings.Join(got, ",") != strings.Join([]string{id3, id2, id1}, ",") {
		t.Fatalf("thread holds %v, want [%s %s %s]: a refused lease put wrote something", got, id3, id2, id1)
	}
	for id, doc := range written {
		got, err := cp.Get(ctx, "t", id)
		if err != nil || !jsonbEqual(t, ctx, db, got.Snapshot, []byte(doc)) {
			t.Fatalf("Get(t, %s) = %s, %v; want %s", id, got.Snapshot, err, doc)
		}
	}
	// Leases of other threads are apart; bad input is refused before anything is sent.
	if _, err := cp.Acquire(ctx, "u", "a", time.Minute); err != nil {
		t.Fatalf("Acquire of another thread: %v", err)
	}
	for _, bad := range []struct {
		thread, owner string
		ttl           time.Duration
		want          error
	}{
		{"", "a", time.Minute, pgcheckpoint.ErrInvalidThreadID},
		{"v", "", time.Minute, pgcheckpoint.ErrInvalidOptions},
		{"v", "nul\x00", time.Minute, pgcheckpoint.ErrInvalidOptions},
		{"v", "a", 0, pgcheckpoint.ErrInvalidOptions},
	} {
		if _, err := cp.Acquire(ctx, bad.thread, bad.owner, bad.ttl); !errors.Is(err, bad.want) {
			t.Errorf("Acquire(%q, %q, %v): %v, want %v", bad.thread, bad.owner, bad.ttl, err, bad.want)
		}
	}
}

// leaseIDs lists a thread's checkpoint ids, newest first.
func leaseIDs(t *testing.T, cp *pgcheckpoint.Checkpointer, thread string) []string {
	t.Helper()
	list, err := cp.List(testCtx(t), thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list {
		out = append(out, c.ID)
	}
	return out
}

// TestLeaseKill runs worker processes that take turns driving one thread through leases; the test
// SIGKILLs the holder again and again, and workers stall now and then for longer than the lease while
// holding it (every grant with an odd token, before its third put), as a paused process does. Successors take over only after the lease expired by the server's
// clock. The check, on the thread's history in commit order (the id order of a thread): the writers'
// tokens never go down, so no write of an expired lease landed after its successor's first write; every
// acknowledged put is there; and the stalls did meet ErrLeaseLost.
func TestLeaseKill(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) { leaseKill(t, tg) })
	}
}

// leaseKill is TestLeaseKill for one target, on a table of the target's storage; it also reads every
// checkpoint back (the snapshots hold an array that grows with every put of a grant, so that on a delta
// table the puts append items) and checks that it is what its writer wrote.
func leaseKill(t *testing.T, tg target) {
	const workers, kills, ttl = 3, 4, 400 * time.Millisecond
	db := tg.open(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: pgcheckpoint.NoLimit, Storage: tg.storage})
	if err := cp.EnsureLeaseSchema(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	spec := tg.spec("lease", schema)
	spec.Threads, spec.LeaseTTL, spec.Cap = []string{"driven"}, ttl, pgcheckpoint.NoLimit
	events := make(chan leaseEvent, 4096)
	start := func(n int) *helper {
		h := startHelper(t, spec)
		go func() {
			for {
				line, ok := h.next()
				if !ok {
					return
				}
				events <- parseLeaseEvent(n, line)
			}
		}()
		return h
	}
	running := map[int]*helper{}
	for n := range workers {
		running[n] = start(n)
	}
	holder := map[int64]int{} // token -> worker
	acked := map[string]int64{}
	lost, killed, next := 0, 0, workers
	deadline := time.After(90 * time.Second)
	for killed < kills {
		var ev leaseEvent
		select {
		case ev = <-events:
		case <-deadline:
			t.Fatalf("after %d kills nothing happened for 90 s", killed)
		}
		switch ev.kind {
		case "lease":
			holder[ev.token] = ev.worker
		case "ack":
			acked[ev.id] = ev.token
			// Kill the holder after a few of its puts: it dies with the lease in force.
			if h, ok := running[ev.worker]; ok && len(acked)%5 == 0 {
				_ = h.cmd.Process.Kill()
				delete(running, ev.worker)
				killed++
				running[next] = start(next)
				next++
			}
		case "lost":
			lost++
		case "error":
			t.Fatalf("worker %d: %s", ev.worker, ev.id)
		}
	}
	for _, h := range running {
		_ = h.cmd.Process.Kill()
	}
	// Every worker is dead now: read the thread in commit order.
	rows, err := db.QueryContext(testCtx(t), `SELECT checkpoint_id, (snapshot->>'token')::BIGINT, snapshot->>'owner', (snapshot->>'i')::INT
FROM "`+schema+`"."ziro_checkpoints" WHERE thread_id = 'driven' ORDER BY checkpoint_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var last int64
	seen, tokens := map[string]bool{}, map[int64]bool{}
	wrote := map[string]string{} // id -> the snapshot its writer wrote
	for rows.Next() {
		var id, owner string
		var token int64
		var i int
		if err := rows.Scan(&id, &token, &owner, &i); err != nil {
			t.Fatal(err)
		}
		wrote[id] = leaseSnapshot(token, owner, i)
		if token < last {
			t.Fatalf("checkpoint %s was written with lease token %d after a write with token %d: an expired lease wrote after its successor", id, token, last)
		}
		last = token
		seen[id], tokens[token] = true, true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, token := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged put %s (token %d) is missing", id, token)
		}
	}
	for id, doc := range wrote {
		got, err := cp.Get(testCtx(t), "driven", id)
		if err != nil || !jsonbEqual(t, testCtx(t), db, got.Snapshot, []byte(doc)) {
			t.Fatalf("Get(driven, %s) = %s, %v; want %s", id, got.Snapshot, err, doc)
		}
	}
	if len(tokens) < kills || lost == 0 {
		t.Fatalf("the scenario did not happen: %d tokens wrote, %d lease puts lost", len(tokens), lost)
	}
	t.Logf("FIGURES lease kill %s (%s): %d SIGKILLs, %d grants, %d tokens wrote %d acknowledged puts (%d rows), %d puts refused with ErrLeaseLost, tokens never went down",
		tg.name, tg.storage, killed, len(holder), len(tokens), len(acked), len(seen), lost)
}

// leaseSnapshot is the snapshot a lease worker writes: its grant's token, its owner, the put's number
// within the grant and an array that grows with it.
func leaseSnapshot(token int64, owner string, i int) string {
	msgs := make([]string, i+1)
	for k := range msgs {
		msgs[k] = fmt.Sprintf(`{"n": %d, "token": %d}`, k, token)
	}
	return fmt.Sprintf(`{"token": %d, "owner": %q, "i": %d, "messages": [%s]}`, token, owner, i, strings.Join(msgs, ", "))
}

// leaseEvent is one line of a lease worker: "lease\tTOKEN", "ack\tTOKEN\tID", "lost\tTOKEN", "error\tMSG".
type leaseEvent struct {
	worker int
	kind   string
	token  int64
	id     string
}

func parseLeaseEvent(worker int, line string) leaseEvent {
	f := strings.Split(line, "\t")
	ev := leaseEvent{worker: worker, kind: f[0]}
	if ev.kind == "error" {
		ev.id = strings.Join(f[1:], " ")
		return ev
	}
	if len(f) > 1 {
		ev.token, _ = strconv.ParseInt(f[1], 10, 64)
	}
	if len(f) > 2 {
		ev.id = f[2]
	}
	return ev
}

// helperLease drives Threads[0] through leases for ever: acquire (again until granted, the server
// deciding when the holder's lease expired), put through the lease, renew now and then, and stall for
// longer than the lease before its third put of every grant with an odd token, as a paused process does.
// Killed by the test.
func helperLease(ctx context.Context, cp *pgcheckpoint.Checkpointer, s helperSpec, out *lineWriter) int {
	thread, owner := s.Threads[0], fmt.Sprintf("worker-%d", os.Getpid())
	for {
		l, err := cp.Acquire(ctx, thread, owner, s.LeaseTTL)
		if errors.Is(err, pgcheckpoint.ErrLeaseHeld) {
			time.Sleep(s.LeaseTTL / 20) // poll the server's verdict
			continue
		}
		if err != nil {
			out.line("error", err.Error())
			return 1
		}
		out.line("lease", strconv.FormatInt(l.Token, 10))
		for i := 0; ; i++ {
			if i == 2 && l.Token%2 == 1 {
				time.Sleep(s.LeaseTTL * 3 / 2) // a stall: the lease expires meanwhile
			} else if i%4 == 3 {
				if err := l.Renew(ctx, s.LeaseTTL); errors.Is(err, pgcheckpoint.ErrLeaseLost) {
					out.line("lost", strconv.FormatInt(l.Token, 10))
					break
				} else if err != nil {
					out.line("error", err.Error())
					return 1
				}
			}
			id, err := l.Put(ctx, []byte(leaseSnapshot(l.Token, owner, i)))
			if errors.Is(err, pgcheckpoint.ErrLeaseLost) {
				out.line("lost", strconv.FormatInt(l.Token, 10))
				break
			}
			if err != nil {
				out.line("error", err.Error())
				return 1
			}
			out.line("ack", strconv.FormatInt(l.Token, 10), id)
		}
	}
}

// TestLeasePutInFlight pins the one interleaving that timing alone rarely produces: a lease put whose
// check passed just before the lease expired is still in flight when a successor acquires the thread.
// The put's transaction holds the lease row, so the successor's grant waits (the test sees it wait on the
// lock) and commits only after the put did; the old holder's write lands before the successor's first.
// Run for every driver and dialect on PostgreSQL; the transaction is the one Lease.Put runs (the
// leaseCheck statement, then the put in the same transaction).
func TestLeasePutInFlight(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) { leasePutInFlight(t, tg) })
	}
}

// leasePutInFlight is TestLeasePutInFlight for one target, on a table of the target's storage (a delta
// table's lease statements are the full table's of its name: Statements gives them).
func leasePutInFlight(t *testing.T, tg target) {
	db := tg.open(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Storage: tg.storage})
	ctx := testCtx(t)
	if err := cp.EnsureLeaseSchema(ctx); err != nil {
		t.Fatal(err)
	}
	stmts, err := pgcheckpoint.Statements(tg.dialect, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := cp.Acquire(ctx, "t", "a", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, tg.callerTx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var inForce bool
	if err := tx.QueryRowContext(ctx, stmts["leaseCheck"], "t", "a", a.Token).Scan(&inForce); err != nil || !inForce {
		t.Fatalf("leaseCheck: %v, %v", inForce, err)
	}
	// Wait until the server's clock has passed the lease's expiry.
	leases := `"` + schema + `"."ziro_checkpoints_leases"`
	for {
		var expired bool
		if err := db.QueryRowContext(ctx, `SELECT expires_at < now() FROM `+leases+` WHERE thread_id = 't'`).Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if expired {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	type grant struct {
		l   *pgcheckpoint.Lease
		err error
	}
	got := make(chan grant, 1)
	go func() {
		l, err := cp.Acquire(ctx, "t", "b", time.Minute)
		got <- grant{l, err}
	}()
	// The successor's grant waits for the lease row that the put's transaction holds.
	for waiting := false; !waiting; {
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO %' || $1 || '%_leases%')`, schema).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			t.Fatalf("the successor's Acquire returned (%+v, %v) while the old holder's put was in flight", g.l, g.err)
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	late, err := cp.WithTx(tx).Put(ctx, "t", []byte(`{"by": "a", "in flight": true, "messages": [1, 2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	g := <-got
	if g.err != nil || g.l.Token != a.Token+1 {
		t.Fatalf("the successor's Acquire after the put: %+v, %v", g.l, g.err)
	}
	first, err := g.l.Put(ctx, []byte(`{"by": "b", "messages": [1, 2, 3]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := leaseIDs(t, cp, "t"); len(got) != 2 || got[0] != first || got[1] != late {
		t.Fatalf("thread holds %v, want the successor's %s after the old holder's %s", got, first, late)
	}
	if _, err := a.Put(ctx, []byte(`{"by": "a"}`)); !errors.Is(err, pgcheckpoint.ErrLeaseLost) {
		t.Fatalf("the old holder's next put: %v, want ErrLeaseLost", err)
	}
}
