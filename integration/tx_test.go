package integration

import (
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestCallerTransaction checks WithTx for every driver x dialect: a checkpoint commits and rolls back
// together with the caller's own row, is invisible to others until the commit, and a concurrent writer of
// the same thread inside another caller transaction gets ErrConflict once the first commits.
func TestCallerTransaction(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 3})
			ctx := testCtx(t)
			orders := `"` + schema + `".orders`
			if _, err := db.ExecContext(ctx, `CREATE TABLE `+orders+` (id INT PRIMARY KEY, thread TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			ordersOf := func(thread string) int {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+orders+` WHERE thread = $1`, thread).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// orderAndCheckpoint is the caller's unit of work: its own row and a checkpoint, in one transaction.
			orderAndCheckpoint := func(tx *sql.Tx, orderID int, thread string) string {
				t.Helper()
				if _, err := tx.ExecContext(ctx, `INSERT INTO `+orders+` VALUES ($1, $2)`, orderID, thread); err != nil {
					t.Fatal(err)
				}
				id, err := cp.WithTx(tx).Put(ctx, thread, []byte(`{"order": 1}`))
				if err != nil {
					t.Fatalf("Put inside the caller's transaction: %v", err)
				}
				if got, err := cp.WithTx(tx).Latest(ctx, thread); err != nil || got.ID != id {
					t.Fatalf("Get inside the transaction = %s, %v; want its own put %s", got.ID, err, id)
				}
				if _, err := cp.Get(ctx, thread, id); !errors.Is(err, pgcheckpoint.ErrNotFound) {
					t.Fatalf("Get from outside before commit: err = %v, want ErrNotFound (uncommitted)", err)
				}
				return id
			}

			t.Run("Commit", func(t *testing.T) {
				tx, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				id := orderAndCheckpoint(tx, 1, "committed")
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				if got, err := cp.Latest(ctx, "committed"); err != nil || got.ID != id || ordersOf("committed") != 1 {
					t.Fatalf("after commit: newest %s (%v), %d orders; want %s and 1 order", got.ID, err, ordersOf("committed"), id)
				}
			})

			t.Run("Rollback", func(t *testing.T) {
				before, err := cp.Put(ctx, "rolled-back", []byte(`{"before": true}`))
				if err != nil {
					t.Fatal(err)
				}
				tx, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				orderAndCheckpoint(tx, 2, "rolled-back")
				if err := cp.WithTx(tx).Delete(ctx, "rolled-back", before); err != nil {
					t.Fatalf("Delete inside the transaction: %v", err)
				}
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				if got := listIDs(t, cp, "rolled-back"); len(got) != 1 || got[0] != before || ordersOf("rolled-back") != 0 {
					t.Fatalf("after rollback: thread holds %v and %d orders; want only %s and no order", got, ordersOf("rolled-back"), before)
				}
				// The numbering the rolled-back put and delete touched is intact: retention stays exact.
				for range 4 {
					if _, err := cp.Put(ctx, "rolled-back", []byte(`{"after": true}`)); err != nil {
						t.Fatal(err)
					}
				}
				if got := listIDs(t, cp, "rolled-back"); len(got) != 3 {
					t.Fatalf("after rollback and 4 puts the thread holds %d checkpoints, want the cap 3", len(got))
				}
				checkDenseSeq(t, db, schema, "rolled-back")
			})

			t.Run("ConcurrentCallerTransactions", func(t *testing.T) {
				head, err := cp.Put(ctx, "contended", []byte(`{"step": 0}`))
				if err != nil {
					t.Fatal(err)
				}
				tx1, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				defer tx1.Rollback()
				first, err := putAfter(cp.WithTx(tx1), ctx, "contended", head, []byte(`{"step": 1, "by": 1}`))
				if err != nil {
					t.Fatalf("first caller: %v", err)
				}
				tx2, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				defer tx2.Rollback()
				second := make(chan error, 1)
				go func() {
					_, err := putAfter(cp.WithTx(tx2), ctx, "contended", head, []byte(`{"step": 1, "by": 2}`))
					second <- err
				}()
				// The second caller's insert waits on the first one's row in the (thread_id, seq) index.
				waitFor(t, "the second caller's put to wait for a lock", func() bool {
					var n int
					err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, schema).Scan(&n)
					return err == nil && n > 0
				})
				if err := tx1.Commit(); err != nil {
					t.Fatal(err)
				}
				// At SERIALIZABLE (the CockroachDB dialect) the server may refuse the second transaction
				// with 40001 before the unique index does: the caller's loop runs it again either way.
				if err := <-second; !errors.Is(err, pgcheckpoint.ErrConflict) && !(tg.dialect == pgcheckpoint.CockroachDB && pgcheckpoint.Retryable(err)) {
					t.Fatalf("second caller: err = %v, want ErrConflict", err)
				}
				_ = tx2.Rollback()
				// The caller's retry: a new transaction from the new head succeeds.
				tx3, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				defer tx3.Rollback()
				third, err := putAfter(cp.WithTx(tx3), ctx, "contended", first, []byte(`{"step": 2, "by": 2}`))
				if err != nil {
					t.Fatalf("retried caller: %v", err)
				}
				if err := tx3.Commit(); err != nil {
					t.Fatal(err)
				}
				if got := listIDs(t, cp, "contended"); !slices.Equal(got, []string{third, first, head}) {
					t.Fatalf("thread holds %v, want [%s %s %s]", got, third, first, head)
				}
				checkDenseSeq(t, db, schema, "contended")
			})
		})
	}
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
