package integration

// Regression tests for the defects of issue 10, one test per defect (named in each test's comment),
// against the real local server, for every driver x dialect where the defect can arise there.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestRegressDeleteDuringPut: issue 10, defect 1. Cap 10, a thread of 10 rows; a Delete of one
// checkpoint is held just before its COMMIT (it has deleted and renumbered, and holds the locks); a
// concurrent Put waits for the head's lock; then the delete commits. The put must see that the numbering
// changed under it and must not trim by a boundary looked up in its older snapshot: the thread ends with
// exactly 10 rows, the 9 left by the delete and the put's, densely numbered. On 01a6a17 the PostgreSQL
// dialect's one-statement put trimmed the thread to 1 row and reported success.
func TestRegressDeleteDuringPut(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			admin := tg.open(t)
			schema := newSchema(t, admin)
			opts := pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 10}
			base := tg.newCheckpointer(t, admin, opts)
			var ids []string
			for i := range 10 {
				id, err := base.Put(ctx, "t", []byte(fmt.Sprintf(`{"n": %d}`, i)))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}

			gate := newCommitGate()
			opts.Dialect = tg.dialect
			deleter, err := pgcheckpoint.New(faultDriverFor(tg).openGated(t, tg.dsn, gate), opts)
			if err != nil {
				t.Fatal(err)
			}
			app := appName("pgct-d1")
			putTarget := tg
			putTarget.dsn = withParam(t, tg.dsn, "application_name", app)
			putter, err := pgcheckpoint.New(putTarget.open(t), opts)
			if err != nil {
				t.Fatal(err)
			}

			gate.arm()
			delDone := make(chan error, 1)
			go func() { delDone <- deleter.Delete(ctx, "t", ids[4]) }()
			select {
			case <-gate.reached:
			case err := <-delDone:
				t.Fatalf("the delete ended before its COMMIT: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the delete never reached its COMMIT")
			}
			type result struct {
				id  string
				err error
			}
			putDone := make(chan result, 1)
			go func() {
				id, err := putter.Put(ctx, "t", []byte(`{"n": "during the delete"}`))
				putDone <- result{id, err}
			}()
			waitLockWait(t, admin, app) // the put waits for the delete's row locks
			close(gate.release)
			if err := <-delDone; err != nil {
				t.Fatalf("Delete: %v", err)
			}
			r := <-putDone
			if r.err != nil {
				t.Fatalf("Put during the delete: %v", r.err)
			}
			want := append(slices.Delete(slices.Clone(ids), 4, 5), r.id)
			if got := reversed(listIDs(t, base, "t")); !slices.Equal(got, want) {
				t.Fatalf("after the delete and the put the thread holds %d rows %v; want the 10 rows %v", len(got), got, want)
			}
			checkDenseSeq(t, admin, schema, "t")
		})
	}
}

// TestRegressCapOneNoDeadlock: issue 10, defect 3. MaxCheckpointsPerThread 1 with 4 concurrent writers
// of one thread (15 puts each): every put succeeds, the thread holds 1 row, and the server detected no
// deadlock in the test's own database. On 01a6a17 the share lock on the head and the trim deleting that
// head formed a cycle: 17 deadlocks in 60 puts, some of them failing with retries exhausted.
func TestRegressCapOneNoDeadlock(t *testing.T) {
	t.Parallel()
	const writers, puts = 4, 15
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			tg, deadlocks := privateDatabase(t, tg)
			db, err := sql.Open(tg.driver, tg.dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(writers)
			defer db.Close()
			schema := "public" // the database is the test's own
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 1})
			before := deadlocksOpen(t, db, deadlocks)
			errs := runWriters(t, writers, puts, func(ctx context.Context, w, i int) error {
				_, err := cp.Put(ctx, "one", []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i)))
				return err
			})
			if n := count(t, db, tableIn(schema), "one"); n != 1 {
				t.Errorf("the thread holds %d rows at cap 1", n)
			}
			checkDenseSeq(t, db, schema, "one")
			db.Close()
			if after := deadlocks(); after != before {
				t.Errorf("the server detected %d deadlocks in the test's database during the puts", after-before)
			}
			for _, err := range errs {
				t.Errorf("put at cap 1: %v", err)
			}
		})
	}
}

// deadlocksOpen reads the deadlock count before a workload. The pool db stays open: only the count of
// backends that exited is sure to be flushed, so the count is read again after db is closed, and any
// difference is the workload's.
func deadlocksOpen(t *testing.T, db *sql.DB, deadlocks func() int64) int64 {
	t.Helper()
	// The count so far, with this pool's idle connections closed so that nothing of theirs is pending.
	db.SetMaxIdleConns(0)
	defer db.SetMaxIdleConns(maxConnsPerPool)
	return deadlocks()
}

// runWriters runs n goroutines each calling op k times and returns every error.
func runWriters(t *testing.T, n, k int, op func(ctx context.Context, w, i int) error) []error {
	t.Helper()
	ctx := testCtx(t)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range k {
				if err := op(ctx, w, i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("writer %d, op %d: %w", w, i, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// TestRegressCommitThenConnectionLost: issue 10, defect 4. A TCP proxy lets the server run (and commit)
// a put, then cuts the connection instead of forwarding the reply, so the client only learns that the
// connection broke. lib/pq's driver.ErrBadConn would make database/sql silently send the statement
// again (sendOnce refuses it); pgx returns the error. Either way the put looks its id up, and must report
// success with the id that is stored, and the snapshot must be stored exactly once: a fenced put must not
// report ErrConflict while its own row is the head. The cut comes at three places: the COMMIT of a
// thread's first row, the statement (PostgreSQL) or COMMIT (CockroachDB) of an append, and the same for
// PutAfter. A fourth case cuts right after the append was sent, before the server answered: the put may
// find its row or return ErrOutcomeUnknown, but never stores it twice. On 01a6a17 the re-run took its own
// id as a newer head and stored the snapshot a second time, and the fenced put returned ErrConflict.
func TestRegressCommitThenConnectionLost(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			admin := tg.open(t)
			schema := newSchema(t, admin)
			opts := pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 5}
			base := tg.newCheckpointer(t, admin, opts)
			u, err := url.Parse(tg.dsn)
			if err != nil {
				t.Fatal(err)
			}
			commits := startsWith("WITH head AS") // the PostgreSQL dialect's put commits on its own
			firstSkip := 0
			if tg.dialect == pgcheckpoint.CockroachDB {
				commits = isCommit // the insert and the trim commit together
				firstSkip = 1      // the append transaction that found the thread empty commits first
			}
			for _, sc := range []struct {
				name       string
				thread     string
				prefill    int
				match      func(string) bool
				skip       int
				fenced     bool
				afterReply bool
			}{
				{"first row, cut after COMMIT ran", "first", 0, isCommit, firstSkip, false, true},
				{"append, cut after it committed", "append", 3, commits, 0, false, true},
				{"PutAfter, cut after it committed", "fenced", 3, commits, 0, true, true},
				{"append, cut right after it was sent", "sent", 3, commits, 0, false, false},
			} {
				t.Run(sc.name, func(t *testing.T) {
					ctx := testCtx(t)
					var prior []string
					for i := range sc.prefill {
						id, err := base.Put(ctx, sc.thread, []byte(fmt.Sprintf(`{"n": %d}`, i)))
						if err != nil {
							t.Fatal(err)
						}
						prior = append(prior, id)
					}
					if len(prior) > 0 {
						// The proxied Checkpointer's ids must sort after the prefill's, which another id
						// generator made: in the same millisecond they might not, and the put's first
						// attempt (the one cut) would not have inserted anything.
						last := idTime(t, prior[len(prior)-1])
						waitFor(t, "the clock to pass the prefill's millisecond", func() bool {
							return time.Now().Truncate(time.Millisecond).After(last)
						})
					}
					proxy := startCutProxy(t, u.Host)
					ptg := tg
					ptg.dsn = proxy.dsn(t, tg.dsn)
					cp, err := pgcheckpoint.New(ptg.open(t), pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: 5})
					if err != nil {
						t.Fatal(err)
					}
					proxy.arm(sc.match, sc.skip, sc.afterReply)
					snap := marked(sc.name)
					var id string
					if sc.fenced {
						id, err = putAfter(cp, ctx, sc.thread, prior[len(prior)-1], snap)
					} else {
						id, err = cp.Put(ctx, sc.thread, snap)
					}
					proxy.waitCut(t)
					n := markerCount(t, admin, schema, sc.thread, sc.name)
					switch {
					case n > 1:
						t.Fatalf("the snapshot is stored %d times (put returned %q, %v)", n, id, err)
					case !sc.afterReply && err != nil && errors.Is(err, pgcheckpoint.ErrOutcomeUnknown):
						t.Logf("outcome unknown, stored %d times: %v", n, err)
					case err != nil:
						t.Fatalf("put whose statement ran before the connection broke: %v (stored %d times)", err, n)
					case n != 1:
						t.Fatalf("put returned %s but its snapshot is stored %d times", id, n)
					}
					if err == nil {
						got := reversed(listIDs(t, base, sc.thread))
						if want := append(slices.Clone(prior), id); !slices.Equal(got, want) {
							t.Fatalf("thread holds %v; want %v", got, want)
						}
					}
					checkDenseSeq(t, admin, schema, sc.thread)
					// The pool works on after the cut.
					if _, err := cp.Put(ctx, sc.thread, []byte(`{"after": true}`)); err != nil {
						t.Fatalf("put after the cut: %v", err)
					}
					checkDenseSeq(t, admin, schema, sc.thread)
				})
			}
		})
	}
}

// TestRegressExtremeHeadIDs: issue 10, defect 5. A head row 'ffffffff-ffff-ffff-ffff-ffffffffffff'
// inserted by hand on thread A makes Put on A fail at once with ErrInvalidCheckpointID (no id can sort
// after it), while Put on thread B keeps working with ids of the present time; a far-future head (year
// 2200) on thread C is followed by C's next put but does not move the ids of thread B. On 01a6a17 the
// millisecond field overflowed, later ids started at 00000000-..., puts on every existing thread failed
// after 101 back-to-back statements, and a far-future id moved every later id of the process.
func TestRegressExtremeHeadIDs(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			var attempts int
			// MaxAttempts 2: a serialisation failure against another thread's first put is no failure of
			// this put, so no MaxAttempts is too small for these puts (before, 2-6 of 1,200 exhausted 10).
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 5, MaxAttempts: 2,
				Observer: pgcheckpoint.ObserverFunc(func(_ context.Context, ev pgcheckpoint.Event) { attempts = ev.Attempts })})
			nearNow := func(what, id string) {
				t.Helper()
				if d := time.Since(idTime(t, id)); d < -time.Minute || d > time.Minute {
					t.Fatalf("%s: id %s is from %v, not from the present", what, id, idTime(t, id))
				}
			}
			handHead := func(thread, id string) {
				t.Helper()
				if _, err := cp.Put(ctx, thread, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO `+tableIn(schema)+
					` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
					SELECT $1, $2, '{}', 0, 2, max(seq) + 1 FROM `+tableIn(schema)+` WHERE thread_id = $1`, thread, id); err != nil {
					t.Fatal(err)
				}
			}
			idB, err := cp.Put(ctx, "B", []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			nearNow("B before", idB)

			handHead("A", "ffffffff-ffff-ffff-ffff-ffffffffffff")
			for i := range 2 {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := cp.Put(pctx, "A", []byte(`{}`))
				cancel()
				if !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
					t.Fatalf("put %d after the last possible id: %v; want ErrInvalidCheckpointID", i, err)
				}
				if attempts > 3 {
					t.Fatalf("put %d after the last possible id took %d attempts; want it to fail at once", i, attempts)
				}
				id, err := cp.Put(ctx, "B", []byte(`{}`))
				if err != nil {
					t.Fatalf("put on another thread after the last possible id: %v", err)
				}
				nearNow("B after thread A's last possible id", id)
			}

			future := idAt(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
			handHead("C", future)
			last := future
			for range 2 {
				id, err := cp.Put(ctx, "C", []byte(`{}`))
				if err != nil {
					t.Fatalf("put after a far-future head: %v", err)
				}
				if id <= last {
					t.Fatalf("put after head %s returned %s, which does not sort after it", last, id)
				}
				last = id
				idB, err := cp.Put(ctx, "B", []byte(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				nearNow("B after thread C's far-future head", idB)
			}
			for _, th := range []string{"A", "B", "C"} {
				checkDenseSeq(t, db, schema, th)
			}
		})
	}
}

// TestRegressCallerIsolation: issue 10, defect 6. A caller's transaction at another isolation level than
// the dialect's (REPEATABLE READ on either; READ COMMITTED on CockroachDB) is refused with
// ErrInvalidOptions before anything is written: committing that transaction stores nothing. And with
// REPEATABLE READ as the sessions' default (options=-c default_transaction_isolation=...), the
// Checkpointer's own transactions still run at the level its reasoning needs: 4 writers x 3 rounds on
// fresh threads at cap 3 leave each thread with 3 rows, densely and uniquely numbered, and no put fails.
// On 01a6a17 the first-row path at REPEATABLE READ reused seq 1: a thread ended with 5 rows at cap 3 and
// every later put failed on the unique index.
func TestRegressCallerIsolation(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 3})

			t.Run("caller transaction refused", func(t *testing.T) {
				levels := []sql.IsolationLevel{sql.LevelRepeatableRead}
				if tg.dialect == pgcheckpoint.CockroachDB {
					levels = append(levels, sql.LevelReadCommitted)
				} else {
					levels = append(levels, sql.LevelSerializable)
				}
				for _, level := range levels {
					for _, fenced := range []bool{false, true} {
						thread := fmt.Sprintf("refused-%v-%v", level, fenced)
						tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: level})
						if err != nil {
							t.Fatal(err)
						}
						in := cp.WithTx(tx)
						if fenced {
							_, err = in.PutIfEmpty(ctx, thread, []byte(`{}`))
						} else {
							_, err = in.Put(ctx, thread, []byte(`{}`))
						}
						if !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
							tx.Rollback()
							t.Fatalf("put in a caller transaction at %v (fenced %v): %v; want ErrInvalidOptions", level, fenced, err)
						}
						if err := tx.Commit(); err != nil {
							t.Fatalf("commit after the refused put: %v", err)
						}
						if n := count(t, db, tableIn(schema), thread); n != 0 {
							t.Fatalf("the refused put at %v wrote %d rows", level, n)
						}
					}
				}
				// The dialect's own level works.
				tx, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if _, err := cp.WithTx(tx).Put(ctx, "accepted", []byte(`{}`)); err != nil {
					t.Fatalf("put in a caller transaction at the dialect's level: %v", err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			})

			// Only the PostgreSQL dialect has a first-row lock to wait on; the CockroachDB dialect's first row
			// runs at SERIALIZABLE, where the same wait is a serialization failure (TestCallerTransaction).
			if tg.dialect == pgcheckpoint.PostgreSQL {
				t.Run("first row waits at repeatable read by default", func(t *testing.T) {
					// A first put at REPEATABLE READ (the sessions' default) waits for the thread's first-row
					// lock while another writer fills the thread and retention trims its seq 1 away (here the
					// test's own transaction holds the lock and inserts rows 2-4). The put must see those
					// rows once it has the lock, as at READ COMMITTED, and append after them: at REPEATABLE
					// READ its snapshot, taken before the wait, still shows the thread empty, and it stored a
					// second seq 1 (4 rows at cap 3, numbered out of order).
					app := appName("pgct-d6")
					rr := tg
					rr.dsn = strings.ReplaceAll(withParam(t, withParam(t, tg.dsn, "application_name", app),
						"options", `-c default_transaction_isolation=repeatable\ read`), "+", "%20")
					rcp := mustNew(t, rr.open(t), pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: 3})
					lock, args := firstRowLock(schema, "held")
					locker, err := db.BeginTx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer locker.Rollback()
					if _, err := locker.ExecContext(ctx, lock, args...); err != nil {
						t.Fatal(err)
					}
					done := make(chan error, 1)
					var id string
					go func() {
						var err error
						id, err = rcp.Put(ctx, "held", []byte(`{"by": "the waiting first put"}`))
						done <- err
					}()
					waitLockWait(t, db, app)
					var others []string
					for seq := 2; seq <= 4; seq++ {
						oid := idAt(time.Now().Add(time.Duration(seq-10) * time.Second))
						others = append(others, oid)
						if _, err := locker.ExecContext(ctx, `INSERT INTO `+tableIn(schema)+
							` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq) VALUES ('held', $1, '{}', 0, 2, $2)`, oid, seq); err != nil {
							t.Fatal(err)
						}
					}
					if err := locker.Commit(); err != nil {
						t.Fatal(err)
					}
					if err := <-done; err != nil {
						t.Fatalf("first put that waited for the lock: %v", err)
					}
					want := append(others[1:], id)
					rows := readRows(t, db, schema, "held")
					var got []string
					for _, r := range rows {
						got = append(got, r.id)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("the thread holds %v; want %v (cap 3, the put's row newest)", got, want)
					}
					checkSeq(t, "held", rows)
				})
			}

			t.Run("repeatable read by default", func(t *testing.T) {
				const writers, rounds, puts, cap = 4, 3, 8, 3
				rr := tg
				// url.Values encodes the space as "+", which pgx passes on as it is: %20 reaches both drivers.
				rr.dsn = strings.ReplaceAll(withParam(t, tg.dsn, "options", `-c default_transaction_isolation=repeatable\ read`), "+", "%20")
				rdb := rr.open(t)
				var level string
				if err := rdb.QueryRowContext(ctx, `SHOW default_transaction_isolation`).Scan(&level); err != nil {
					t.Fatal(err)
				}
				if level != "repeatable read" {
					t.Fatalf("the pool's default isolation is %q, want repeatable read", level)
				}
				rcp, err := pgcheckpoint.New(rdb, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: cap})
				if err != nil {
					t.Fatal(err)
				}
				for round := range rounds {
					thread := fmt.Sprintf("rr-%d", round)
					errs := runWriters(t, writers, puts, func(ctx context.Context, w, i int) error {
						_, err := rcp.Put(ctx, thread, []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i)))
						return err
					})
					rows := readRows(t, db, schema, thread)
					if len(rows) != cap {
						t.Errorf("round %d: the thread holds %d rows at cap %d", round, len(rows), cap)
					}
					checkSeq(t, thread, rows)
					for _, err := range errs {
						t.Errorf("round %d: put at REPEATABLE READ by default: %v", round, err)
					}
				}
			})
		})
	}
}

// firstRowLock is the statement and arguments that take the PostgreSQL dialect's first-row lock of a
// thread in the default table of schema, as statements.go derives it: the two-key advisory lock, the
// first key from the table's name (FNV-1a), the second the thread's hashtext.
func firstRowLock(schema, thread string) (string, []any) {
	h := fnv.New32a()
	h.Write([]byte("pgcheckpoint:thread:" + tableIn(schema)))
	return `SELECT pg_advisory_xact_lock($1, hashtext($2))`, []any{int32(h.Sum32()), thread}
}

// noBeginTx is a logging-style wrapper of a pool without BeginTx.
type noBeginTx struct{ db *sql.DB }

func (w noBeginTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return w.db.ExecContext(ctx, q, args...)
}

func (w noBeginTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return w.db.QueryContext(ctx, q, args...)
}

func (w noBeginTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return w.db.QueryRowContext(ctx, q, args...)
}

// withBeginTx is the same wrapper with BeginTx: it may run its own transactions.
type withBeginTx struct{ noBeginTx }

func (w withBeginTx) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return w.db.BeginTx(ctx, opts)
}

// TestRegressSharedConnAndWrappers: issue 10, defect 7. One *sql.Conn shared by 8 goroutines, each
// putting 10 checkpoints (first rows and appends, 4 threads): every put succeeds and every acknowledged
// id is in the table. New refuses a wrapper without BeginTx (which would silently lose the put's
// transactions) and a typed nil with ErrInvalidOptions, and accepts the wrapper once it has BeginTx. On
// 01a6a17 the goroutines' statements ran inside each other's transactions (25P02, a lost acknowledged
// put), and the wrapper was taken for a caller's transaction.
func TestRegressSharedConnAndWrappers(t *testing.T) {
	t.Parallel()
	const goroutines, puts = 8, 10
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
			opts := pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: pgcheckpoint.NoLimit}

			t.Run("shared conn", func(t *testing.T) {
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				cp, err := pgcheckpoint.New(conn, opts)
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				acked := map[string][]string{}
				errs := runWriters(t, goroutines, puts, func(ctx context.Context, w, i int) error {
					thread := fmt.Sprintf("conn-%d", w%4)
					id, err := cp.Put(ctx, thread, []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i)))
					if err == nil {
						mu.Lock()
						acked[thread] = append(acked[thread], id)
						mu.Unlock()
					}
					return err
				})
				for _, err := range errs {
					t.Errorf("put over a shared *sql.Conn: %v", err)
				}
				for thread, ids := range acked {
					sort.Strings(ids)
					if got := reversed(listIDs(t, cp, thread)); !slices.Equal(got, ids) {
						t.Errorf("thread %s holds %v; want the acknowledged %v", thread, got, ids)
					}
					checkDenseSeq(t, db, schema, thread)
				}
			})

			t.Run("wrappers", func(t *testing.T) {
				if _, err := pgcheckpoint.New(noBeginTx{db}, opts); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
					t.Fatalf("New with a wrapper without BeginTx: %v; want ErrInvalidOptions", err)
				}
				if _, err := pgcheckpoint.New((*sql.DB)(nil), opts); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
					t.Fatalf("New with a nil *sql.DB: %v; want ErrInvalidOptions", err)
				}
				capped := newSchema(t, db) // a table keeps one policy: this one keeps 2
				tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: capped, MaxCheckpointsPerThread: 2})
				cp, err := pgcheckpoint.New(withBeginTx{noBeginTx{db}}, pgcheckpoint.Options{Dialect: tg.dialect, Schema: capped, MaxCheckpointsPerThread: 2})
				if err != nil {
					t.Fatalf("New with a wrapper with BeginTx: %v", err)
				}
				errs := runWriters(t, 4, 10, func(ctx context.Context, w, i int) error {
					_, err := cp.Put(ctx, "wrapped", []byte(`{}`))
					return err
				})
				for _, err := range errs {
					t.Errorf("put through a wrapper with BeginTx: %v", err)
				}
				if n := count(t, db, tableIn(capped), "wrapped"); n != 2 {
					t.Errorf("the thread holds %d rows at cap 2", n)
				}
				checkDenseSeq(t, db, schema, "wrapped")
			})
		})
	}
}

// TestRegressEnsureSchemaNoLock: issue 10, defect 9. With the table complete, EnsureSchema runs no DDL and
// takes no lock on the table: it completes while another transaction holds ROW EXCLUSIVE on the table
// (what every writer holds; it conflicts with the SHARE lock of CREATE INDEX and the ACCESS EXCLUSIVE lock
// of ALTER TABLE). And a schema's owner without CREATE on the database runs EnsureSchema (creating the
// table, then again with nothing to do): the schema exists, so it is not created again. On 01a6a17 the
// second EnsureSchema took an ACCESS EXCLUSIVE lock, and CREATE SCHEMA IF NOT EXISTS failed for the owner
// with permission denied.
func TestRegressEnsureSchemaNoLock(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			admin := tg.open(t)
			role := appName("pgct_owner")
			role = strings.ReplaceAll(role, "-", "_")
			if _, err := admin.ExecContext(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, stmt := range []string{`DROP OWNED BY ` + role + ` CASCADE`, `DROP ROLE ` + role} {
					if _, err := admin.ExecContext(testCtx(t), stmt); err != nil {
						t.Errorf("%s: %v", stmt, err)
					}
				}
			})
			var canCreate bool
			if err := admin.QueryRowContext(ctx, `SELECT has_database_privilege($1, current_database(), 'CREATE')`, role).Scan(&canCreate); err != nil {
				t.Fatal(err)
			}
			if canCreate {
				t.Fatalf("role %s has CREATE on the database; the test needs a role without", role)
			}
			schema := role + "_s"
			if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema+` AUTHORIZATION `+role); err != nil {
				t.Fatal(err)
			}
			owner := tg
			owner.dsn = withUser(t, tg.dsn, role)
			odb := owner.open(t) // closed before the role is dropped
			cp, err := pgcheckpoint.New(odb, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if err := cp.EnsureSchema(ctx); err != nil {
					t.Fatalf("EnsureSchema %d as the schema's owner without CREATE on the database: %v", i+1, err)
				}
			}
			if _, err := cp.Put(ctx, "t", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}

			tx, err := admin.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `LOCK TABLE `+tableIn(schema)+` IN ROW EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*pgcheckpoint.Checkpointer{cp, mustNew(t, admin, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema})} {
				ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.EnsureSchema(ectx)
				cancel()
				if err != nil {
					t.Fatalf("EnsureSchema on a complete table while a writer holds its lock: %v", err)
				}
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustNew(t testing.TB, db pgcheckpoint.DBTX, opts pgcheckpoint.Options) *pgcheckpoint.Checkpointer {
	t.Helper()
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestRegressTypeScriptRowBelowHead: issue 10, defect 11, exactly the scenario. Cap 3; Go puts at
// t0, t0+10 s and t0+20 s (Options.Clock); a TypeScript-style row (seq NULL) at t0+15 s, inserted by SQL
// as a host whose clock is a little behind would; then three more Go puts at t0+30 s, +40 s, +50 s. After
// every Go put the thread holds exactly min(n, 3) rows, the newest by id, all numbered densely. On
// 01a6a17 the trim did not count the TypeScript row below the head: 4 rows after the first and second
// further Go put.
func TestRegressTypeScriptRowBelowHead(t *testing.T) {
	t.Parallel()
	const cap = 3
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			db := tg.open(t)
			schema := newSchema(t, db)
			t0 := time.Now().Truncate(time.Millisecond)
			var now atomic.Int64
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: cap,
				Clock: func() time.Time { return time.UnixMilli(now.Load()) }})
			var all []string
			goPut := func(at time.Duration) {
				t.Helper()
				now.Store(t0.Add(at).UnixMilli())
				id, err := cp.Put(ctx, "t", []byte(fmt.Sprintf(`{"at": %q}`, at)))
				if err != nil {
					t.Fatalf("Go put at t0+%v: %v", at, err)
				}
				all = append(all, id)
				sort.Strings(all)
				want := all[max(0, len(all)-cap):]
				if got := reversed(listIDs(t, cp, "t")); !slices.Equal(got, want) {
					t.Fatalf("after the Go put at t0+%v the thread holds %d rows %v; want the newest min(%d, %d): %v",
						at, len(got), got, len(all), cap, want)
				}
				checkDenseSeq(t, db, schema, "t")
			}
			goPut(0)
			goPut(10 * time.Second)
			goPut(20 * time.Second)
			ts := idAt(t0.Add(15 * time.Second))
			if _, err := db.ExecContext(ctx, `INSERT INTO `+tableIn(schema)+
				` (thread_id, checkpoint_id, snapshot, version, size_bytes) VALUES ('t', $1, '{"by": "ts"}', 0, 13)`, ts); err != nil {
				t.Fatal(err)
			}
			all = append(all, ts)
			goPut(30 * time.Second)
			goPut(40 * time.Second)
			goPut(50 * time.Second)
		})
	}
}

// TestRegressDeleteAndPutNoDeadlock: issue 10, defect 15. Two writers and two deleters of one thread
// (the deleters delete a middle checkpoint of what they list, which renumbers the thread) for a bounded
// number of operations: no operation fails, and the server detected no deadlock in the test's own
// database. On 01a6a17 the renumbering gave the oldest row exactly the number a concurrent put inserted:
// operations stalled for deadlock_timeout each and a put failed with retries exhausted.
func TestRegressDeleteAndPutNoDeadlock(t *testing.T) {
	t.Parallel()
	const puts, deletes = 40, 20
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			tg, deadlocks := privateDatabase(t, tg)
			db, err := sql.Open(tg.driver, tg.dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(maxConnsPerPool)
			defer db.Close()
			schema := "public" // the database is the test's own
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 10})
			for range 5 {
				if _, err := cp.Put(testCtx(t), "t", []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
			before := deadlocksOpen(t, db, deadlocks)
			errs := runWriters(t, 4, puts, func(ctx context.Context, w, i int) error {
				if w < 2 {
					_, err := cp.Put(ctx, "t", []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i)))
					return err
				}
				if i >= deletes {
					return nil
				}
				list, err := cp.List(ctx, "t", pgcheckpoint.ListOptions{})
				if err != nil || len(list) < 3 {
					return err
				}
				return cp.Delete(ctx, "t", list[len(list)/2].ID)
			})
			checkDenseSeq(t, db, schema, "t")
			if n := count(t, db, tableIn(schema), "t"); n > 10 {
				t.Errorf("the thread holds %d rows at cap 10", n)
			}
			db.Close()
			if after := deadlocks(); after != before {
				t.Errorf("the server detected %d deadlocks in the test's database", after-before)
			}
			for _, err := range errs {
				t.Errorf("%v", err)
			}
		})
	}
}

// TestRegressFirstPutsSerializable: issue 10, defect 16. With the CockroachDB dialect (rehearsed on
// PostgreSQL) a thread's first put runs at SERIALIZABLE; 8 goroutines x 150 first puts to distinct
// threads: serialisation failures between writers of different threads count as lost rounds (another
// writer made progress), so no put fails, none with ErrRetriesExhausted. On 01a6a17 74-181 of 1,200
// needed retries and 2-6 failed with retries exhausted.
func TestRegressFirstPutsSerializable(t *testing.T) {
	t.Parallel()
	const goroutines, puts = 8, 150
	for _, tg := range postgresTargets(t) {
		if tg.dialect != pgcheckpoint.CockroachDB {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			db.SetMaxOpenConns(goroutines)
			schema := newSchema(t, db)
			var retried atomic.Int64
			// MaxAttempts 2: a serialisation failure against another thread's first put is no failure of
			// this put, so no MaxAttempts is too small for these puts (before, 2-6 of 1,200 exhausted 10).
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 5, MaxAttempts: 2,
				Observer: pgcheckpoint.ObserverFunc(func(_ context.Context, ev pgcheckpoint.Event) {
					if ev.Attempts > 1 {
						retried.Add(1)
					}
				})})
			errs := runWriters(t, goroutines, puts, func(ctx context.Context, w, i int) error {
				_, err := cp.Put(ctx, fmt.Sprintf("g%d-%d", w, i), []byte(`{}`))
				return err
			})
			exhausted := 0
			for _, err := range errs {
				if errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
					exhausted++
				}
			}
			t.Logf("%d of %d first puts ran more than one attempt", retried.Load(), goroutines*puts)
			if len(errs) > 0 {
				t.Fatalf("%d first puts failed (%d with ErrRetriesExhausted), the first: %v", len(errs), exhausted, errs[0])
			}
			var threads int
			if err := db.QueryRowContext(testCtx(t), `SELECT count(DISTINCT thread_id) FROM `+tableIn(schema)+` WHERE seq = 1`).Scan(&threads); err != nil {
				t.Fatal(err)
			}
			if threads != goroutines*puts {
				t.Fatalf("%d threads have their first row; want %d", threads, goroutines*puts)
			}
		})
	}
}

// TestRegressDeadlineDuringLockWait: issue 10, defect 12 (and 8 for lib/pq). A put whose context deadline
// passes while it waits for a row lock (another transaction holds the head FOR UPDATE, and releases it
// right after the put returned) has sent its statement, so it must not claim that nothing was written:
// its error wraps context.DeadlineExceeded and ErrOutcomeUnknown, unless the server itself reported the
// statement cancelled (lib/pq waits for that answer: SQLSTATE 57014), when nothing was written. Afterwards
// the thread is consistent with the outcome: the snapshot stored at most once (never when cancelled),
// dense numbering, and the next put works. On 01a6a17 the error was the bare context error (pgx) or a
// 57014 database error without the context error (lib/pq), though with pgx the put could still commit.
func TestRegressDeadlineDuringLockWait(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			admin := tg.open(t)
			schema := newSchema(t, admin)
			opts := pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 3}
			base := tg.newCheckpointer(t, admin, opts)
			var head string
			for range 3 {
				id, err := base.Put(ctx, "t", []byte(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				head = id
			}
			app := appName("pgct-d12")
			ptg := tg
			ptg.dsn = withParam(t, tg.dsn, "application_name", app)
			opts.Dialect = tg.dialect
			cp := mustNew(t, ptg.open(t), opts)

			locker, err := admin.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Rollback()
			if _, err := locker.ExecContext(ctx, `SELECT 1 FROM `+tableIn(schema)+
				` WHERE thread_id = 't' AND checkpoint_id = $1 FOR UPDATE`, head); err != nil {
				t.Fatal(err)
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := cp.Put(pctx, "t", marked("late"))
				done <- err
			}()
			waitLockWait(t, admin, app)
			err = <-done
			if err := locker.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err == nil {
				t.Fatal("the put succeeded though its deadline passed while the head was locked")
			}
			// Nothing was written when the server confirmed the cancel (lib/pq's 57014), and on the CockroachDB
			// dialect, whose put waited inside its own transaction: that transaction was never asked to
			// commit, so the bare context error is the whole truth there.
			cancelled := !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) &&
				(pgcheckpoint.SQLState(err) == "57014" || tg.dialect == pgcheckpoint.CockroachDB)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("put whose deadline passed during a lock wait: %v; want context.DeadlineExceeded in the chain", err)
			}
			if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) && !cancelled {
				t.Fatalf("put whose deadline passed after its statement was sent: %v; want ErrOutcomeUnknown", err)
			}
			if !cancelled && tg.driver == "postgres" {
				t.Logf("lib/pq reported an unknown outcome: %v", err)
			}
			// Wait until the put's statement has ended on the server, whatever it did.
			waitFor(t, "the put's backend to go idle", func() bool {
				var n int
				if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE application_name = $1 AND state NOT LIKE 'idle%'`, app).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 0
			})
			n := markerCount(t, admin, schema, "t", "late")
			if n > 1 || (cancelled && n != 0) {
				t.Fatalf("after the put (%v) its snapshot is stored %d times", err, n)
			}
			t.Logf("outcome: stored %d times; error: %v", n, err)
			if _, err := base.Put(ctx, "t", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			if c := count(t, admin, tableIn(schema), "t"); c != 3 {
				t.Fatalf("the thread holds %d rows at cap 3", c)
			}
			checkDenseSeq(t, admin, schema, "t")
		})
	}
}

// TestRegressPutAfterBesideDeletesAndPrunes: issue 10, the checker's open finding on the CockroachDB
// dialect (seed 30036, pgx/cockroach: a PutAfter on the thread's head answered ErrConflict next to deletes
// and prunes, though no other write took effect). One writer chains PutAfter on the head it stored last;
// two deleters remove older checkpoints (never the newest: a row that was not the newest never becomes
// it) and one client prunes (keeping the newest). Nothing but the writer moves the head, so no PutAfter
// may conflict, and none may fail at all.
func TestRegressPutAfterBesideDeletesAndPrunes(t *testing.T) {
	t.Parallel()
	const puts = 60
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{MaxCheckpointsPerThread: 4})
			ctx := testCtx(t)
			head, err := cp.Put(ctx, "chain", []byte(`{"n": 0}`))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var wg sync.WaitGroup
			var others atomic.Int64
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						if w == 2 {
							if _, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Microsecond}); err != nil {
								t.Errorf("prune: %v", err)
								return
							}
							others.Add(1)
							continue
						}
						list, err := cp.List(ctx, "chain", pgcheckpoint.ListOptions{Limit: -1})
						if err != nil {
							t.Errorf("list: %v", err)
							return
						}
						if len(list) < 2 {
							continue
						}
						if err := cp.Delete(ctx, "chain", list[1+w%(len(list)-1)].ID); err != nil {
							t.Errorf("delete: %v", err)
							return
						}
						others.Add(1)
					}
				}()
			}
			for i := 1; i <= puts; i++ {
				id, err := cp.PutAfter(ctx, "chain", head, []byte(fmt.Sprintf(`{"n": %d}`, i)))
				if err != nil {
					close(done)
					wg.Wait()
					t.Fatalf("PutAfter %d on the head %s, beside only deletes of older rows and prunes: %v", i, head, err)
				}
				head = id
			}
			close(done)
			wg.Wait()
			if got := listIDs(t, cp, "chain"); len(got) == 0 || got[0] != head {
				t.Fatalf("the thread's newest is %v, want %s", got, head)
			}
			t.Logf("%d fenced puts beside %d deletes and prunes", puts, others.Load())
		})
	}
}
