package integration

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestRegressPruneBesideDeletesOfTheNewest replays what the linearizability checker found with seed
// 601750 (pgx/postgres, epoch 61, all faults, after 3 minutes): a Prune removed the thread's last
// checkpoint. Prune locked the newest row it saw (C), but C was being deleted, so the lock found no
// row and protected nothing; its delete then took a snapshot in which B was the newest, waited for a
// delete of B that held B's and A's row locks, and when that committed, removed A as "older than B",
// leaving the thread empty. Now Prune deletes only below a row it holds locked, and locks again while
// the newest row it aimed at vanishes.
//
// Here the two deletes are plain transactions, so each step happens in this order: T1 deletes C and
// holds it; Prune waits for C; T2 locks A and B; T1 commits; Prune waits for T2; T2 deletes B and commits.
// Whatever Prune does meanwhile, A, the newest left, must stay.
func TestRegressPruneBesideDeletesOfTheNewest(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := testCtx(t)
			admin := tg.open(t)
			schema := newSchema(t, admin)
			opts := pgcheckpoint.Options{Schema: schema}
			base := tg.newCheckpointer(t, admin, opts)
			var ids []string // A, B, C
			for i := range 3 {
				id, err := base.Put(ctx, "t", fmt.Appendf(nil, `{"n": %d}`, i))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			table := tableIn(schema)
			backendPID := func(tx *sql.Tx) int {
				var pid int
				if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
					t.Fatal(err)
				}
				return pid
			}
			begin := func() *sql.Tx {
				tx, err := admin.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tx.Rollback() })
				return tx
			}
			app := appName("pgct-prune")
			pruneTarget := tg
			pruneTarget.dsn = withParam(t, tg.dsn, "application_name", app)
			opts.Dialect = tg.dialect
			pruner, err := pgcheckpoint.New(pruneTarget.open(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			blockedBy := func(pid int) {
				t.Helper()
				waitFor(t, fmt.Sprintf("the prune to wait for backend %d", pid), func() bool {
					var n int
					if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
						WHERE application_name = $1 AND $2 = ANY (pg_blocking_pids(pid))`, app, pid).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n > 0
				})
			}

			t1 := begin()
			pid1 := backendPID(t1)
			if _, err := t1.ExecContext(ctx, `DELETE FROM `+table+` WHERE thread_id = 't' AND checkpoint_id = $1`, ids[2]); err != nil {
				t.Fatal(err)
			}
			pruned := make(chan error, 1)
			go func() {
				_, err := pruner.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Nanosecond})
				pruned <- err
			}()
			blockedBy(pid1)

			t2 := begin()
			pid2 := backendPID(t2)
			if err := drainRows(t2.QueryContext(ctx, `SELECT checkpoint_id FROM `+table+
				` WHERE thread_id = 't' AND checkpoint_id < $1 ORDER BY checkpoint_id DESC FOR UPDATE`, ids[2])); err != nil {
				t.Fatal(err)
			}
			if err := t1.Commit(); err != nil {
				t.Fatal(err)
			}
			blockedBy(pid2)
			if _, err := t2.ExecContext(ctx, `DELETE FROM `+table+` WHERE thread_id = 't' AND checkpoint_id = $1`, ids[1]); err != nil {
				t.Fatal(err)
			}
			if err := t2.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-pruned; err != nil {
				t.Fatalf("Prune: %v", err)
			}
			left := readRows(t, admin, schema, "t")
			if len(left) != 1 || left[0].id != ids[0] {
				t.Fatalf("after deletes of C and B beside a prune the thread holds %v, want only A (%s), its newest", left, ids[0])
			}
		})
	}
}

func drainRows(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
