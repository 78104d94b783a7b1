package integration

// The retry paths of pgcheckpoint run end to end on a real server through the fault-injecting driver
// (faultdriver_test.go): errors a CockroachDB cluster would send, as we read its documentation, are
// injected at the statements and the COMMIT where the cluster may send them, while everything else is
// really executed. After the injected failures a checkpoint must be stored exactly once, and the thread
// must hold exactly the cap, densely numbered.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
	"github.com/ziroagent/pgcheckpoint"
)

// TestFaultInjectedRetries runs every scenario for both drivers against the local PostgreSQL.
func TestFaultInjectedRetries(t *testing.T) {
	dsn := postgresDSN(t)
	for _, fd := range faultDrivers {
		t.Run(fd.name, func(t *testing.T) {
			t.Parallel()
			runFaultScenarios(t, fd, dsn, false)
		})
	}
}

// faultEnv is one pool through the fault driver with a schema of its own.
type faultEnv struct {
	db     *sql.DB
	plan   *faultPlan
	schema string
	table  string
}

// checkpointer returns a Checkpointer on the env's table (created when missing) that records the
// attempts of its last operation in *attempts.
func (e faultEnv) checkpointer(t *testing.T, opts pgcheckpoint.Options, attempts *int) *pgcheckpoint.Checkpointer {
	t.Helper()
	opts.Schema = e.schema
	if opts.Dialect == nil {
		opts.Dialect = pgcheckpoint.CockroachDB
	}
	if attempts != nil {
		opts.Observer = pgcheckpoint.ObserverFunc(func(_ context.Context, ev pgcheckpoint.Event) { *attempts = ev.Attempts })
	}
	cp, err := pgcheckpoint.New(e.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.plan.set()
	ensureWithPolicy(t, cp, opts)
	return cp
}

// rows returns a thread's ids and seq numbers in id order, straight from the table.
func (e faultEnv) rows(t *testing.T, thread string) (ids []string, seqs []int64) {
	t.Helper()
	r, err := e.db.QueryContext(testCtx(t), `SELECT checkpoint_id, seq FROM `+e.table+` WHERE thread_id = $1 ORDER BY checkpoint_id`, thread)
	if err != nil {
		t.Fatalf("read rows: %v", err)
	}
	defer r.Close()
	for r.Next() {
		var id string
		var seq sql.NullInt64
		if err := r.Scan(&id, &seq); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		seqs = append(seqs, seq.Int64)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, seqs
}

// expectThread checks that the thread holds exactly want (in id order), densely numbered.
func (e faultEnv) expectThread(t *testing.T, thread string, want []string) {
	t.Helper()
	ids, seqs := e.rows(t, thread)
	if !slices.Equal(ids, want) {
		t.Fatalf("thread %q holds %v, want %v", thread, ids, want)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("thread %q is not densely numbered: %v", thread, seqs)
		}
	}
}

func fill(t *testing.T, cp *pgcheckpoint.Checkpointer, thread string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id, err := cp.Put(testCtx(t), thread, []byte(fmt.Sprintf(`{"version": 1, "n": %d}`, i)))
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// isDriverState reports whether err wraps the wrapped driver's own error type with SQLSTATE code.
func isDriverState(fd faultDriver, err error, code string) bool {
	switch fd.name {
	case "pgx":
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == code
	case "pq":
		var e *pq.Error
		return errors.As(err, &e) && string(e.Code) == code
	}
	return false
}

const capN = 3

// runFaultScenarios runs each scenario in sequence on one pool of fd against dsn; cluster says dsn is a
// CockroachDB cluster, where the PostgreSQL dialect's scenario cannot run (its put is one statement that
// modifies the table twice).
func runFaultScenarios(t *testing.T, fd faultDriver, dsn string, cluster bool) {
	db, plan := fd.openFaulty(t, dsn)
	env := faultEnv{db: db, plan: plan, schema: newSchema(t, db)}
	env.table = `"` + env.schema + `"."` + pgcheckpoint.DefaultTable + `"`
	snap := []byte(`{"version": 2, "step": "after faults"}`)

	t.Run("40001OnInsertTrimAndCommit", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, &attempts)
		before := fill(t, cp, "a", 5)
		plan.set(
			faultRule{prefix: "WITH head AS", times: 2, code: "40001"},
			faultRule{prefix: "DELETE FROM", times: 1, code: "40001"},
			faultRule{prefix: "COMMIT", times: 2, code: "40001"},
		)
		id, err := cp.Put(testCtx(t), "a", snap)
		if err != nil {
			t.Fatalf("put after 5 injected 40001s: %v (sent %v)", err, plan.sent())
		}
		want := "BEGIN !INSERT ROLLBACK BEGIN !INSERT ROLLBACK BEGIN INSERT !DELETE ROLLBACK " +
			"BEGIN INSERT DELETE !COMMIT BEGIN INSERT DELETE !COMMIT BEGIN INSERT DELETE COMMIT"
		if got := plan.shape(); got != want || attempts != 6 {
			t.Fatalf("attempts = %d, sent\n%s\nwant\n%s", attempts, got, want)
		}
		env.expectThread(t, "a", append(before[len(before)-capN+1:], id))
	})

	t.Run("RetriesExhausted", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN, MaxAttempts: 3}, &attempts)
		before := fill(t, cp, "b", 4)
		plan.set(faultRule{prefix: "WITH head AS", times: 3, code: "40001"})
		_, err := cp.Put(testCtx(t), "b", snap)
		if !errors.Is(err, pgcheckpoint.ErrRetriesExhausted) || !isDriverState(fd, err, "40001") {
			t.Fatalf("err = %v, want ErrRetriesExhausted wrapping the %s driver's 40001", err, fd.name)
		}
		want := "BEGIN !INSERT ROLLBACK BEGIN !INSERT ROLLBACK BEGIN !INSERT ROLLBACK"
		if got := plan.shape(); got != want || attempts != 3 {
			t.Fatalf("attempts = %d, sent\n%s\nwant MaxAttempts (3) transactions:\n%s", attempts, got, want)
		}
		env.expectThread(t, "b", before[1:])
	})

	t.Run("40003CommitHappened", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, &attempts)
		before := fill(t, cp, "c", 3)
		plan.set(faultRule{prefix: "COMMIT", times: 1, code: "40003", commitFirst: true})
		id, err := cp.Put(testCtx(t), "c", snap)
		if err != nil {
			t.Fatalf("put whose commit happened but was reported 40003: %v", err)
		}
		// The put looks its id up, finds it, and sends nothing else.
		want := "BEGIN INSERT DELETE !COMMIT STORED"
		if got := plan.shape(); got != want || attempts != 1 {
			t.Fatalf("attempts = %d, sent\n%s\nwant the look-up of its id, finding it:\n%s", attempts, got, want)
		}
		env.expectThread(t, "c", append(before[1:], id))
	})

	t.Run("40003CommitLost", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, &attempts)
		before := fill(t, cp, "d", 3)
		plan.set(faultRule{prefix: "COMMIT", times: 1, code: "40003"})
		_, err := cp.Put(testCtx(t), "d", snap)
		if !errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) || !isDriverState(fd, err, "40003") {
			t.Fatalf("put whose commit was lost and reported 40003: %v; want ErrOutcomeUnknown wrapping the %s driver's 40003", err, fd.name)
		}
		// Not found: the put does not run the insert again (the commit might land yet, or might have
		// landed and been deleted since).
		want := "BEGIN INSERT DELETE !COMMIT STORED"
		if got := plan.shape(); got != want || attempts != 1 {
			t.Fatalf("attempts = %d, sent\n%s\nwant the look-up and nothing else:\n%s", attempts, got, want)
		}
		env.expectThread(t, "d", before)
	})

	t.Run("ConnectionLostBeforeCommit", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, &attempts)
		before := fill(t, cp, "j", 3)
		plan.set(faultRule{prefix: "DELETE FROM", times: 1, code: "08006"})
		id, err := cp.Put(testCtx(t), "j", snap)
		if err != nil {
			t.Fatalf("put whose connection broke inside its transaction, before COMMIT: %v", err)
		}
		// A transaction never asked to commit wrote nothing: it simply runs again.
		want := "BEGIN INSERT !DELETE ROLLBACK BEGIN INSERT DELETE COMMIT"
		if got := plan.shape(); got != want || attempts != 2 {
			t.Fatalf("attempts = %d, sent\n%s\nwant the transaction again:\n%s", attempts, got, want)
		}
		env.expectThread(t, "j", append(before[1:], id))
	})

	t.Run("OneStatementPutWithoutRetention", func(t *testing.T) {
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit}, &attempts)
		before := fill(t, cp, "e", 2)
		plan.set(faultRule{prefix: "WITH head AS", times: 2, code: "40001"})
		id, err := cp.Put(testCtx(t), "e", snap)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := plan.shape(), "!INSERT !INSERT INSERT"; got != want || attempts != 3 {
			t.Fatalf("attempts = %d, sent %q; want 3 single statements and no transaction: %q", attempts, got, want)
		}
		env.expectThread(t, "e", append(before, id))
	})

	t.Run("PostgresDialectOneStatement", func(t *testing.T) {
		if cluster {
			return // PostgreSQL's put is rejected there (0A000), as TestRealCockroach checks
		}
		var attempts int
		cp := env.checkpointer(t, pgcheckpoint.Options{Dialect: pgcheckpoint.PostgreSQL, MaxCheckpointsPerThread: capN}, &attempts)
		before := fill(t, cp, "f", 4)
		plan.set(faultRule{prefix: "WITH head AS", times: 2, code: "40001"})
		id, err := cp.Put(testCtx(t), "f", snap)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := plan.shape(), "!INSERT !INSERT INSERT"; got != want || attempts != 3 {
			t.Fatalf("attempts = %d, sent %q; want 3 single statements (insert and trim in one): %q", attempts, got, want)
		}
		env.expectThread(t, "f", append(before[2:], id))
	})

	t.Run("CallerTransactionSurfaces40001", func(t *testing.T) {
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, nil)
		before := fill(t, cp, "g", 3)
		plan.set(faultRule{prefix: "DELETE FROM", times: 1, code: "40001"})
		// The caller's own loop, as WithTx documents it: run the whole transaction again while
		// pgcheckpoint.Retryable says so.
		var id string
		tries := 0
		for {
			tries++
			tx, err := db.BeginTx(testCtx(t), &sql.TxOptions{Isolation: sql.LevelSerializable})
			if err != nil {
				t.Fatal(err)
			}
			id, err = cp.WithTx(tx).Put(testCtx(t), "g", snap)
			if err == nil {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				break
			}
			_ = tx.Rollback()
			if !pgcheckpoint.Retryable(err) || !isDriverState(fd, err, "40001") || errors.Is(err, pgcheckpoint.ErrRetriesExhausted) {
				t.Fatalf("in a caller's transaction: %v, want the driver's 40001 returned as is (wrapped)", err)
			}
			if tries > 1 {
				t.Fatalf("second try failed too: %v", err)
			}
			if ids, _ := env.rows(t, "g"); !slices.Equal(ids, before) {
				t.Fatalf("after the rolled-back try the thread holds %v, want %v", ids, before)
			}
		}
		if tries != 2 || plan.countSent("BEGIN") != 2 {
			t.Fatalf("tries = %d, sent %v; want the caller's loop to run twice and pgcheckpoint never to BEGIN", tries, plan.sent())
		}
		env.expectThread(t, "g", append(before[1:], id))
	})

	t.Run("DeleteOneRetried", func(t *testing.T) {
		cp := env.checkpointer(t, pgcheckpoint.Options{MaxCheckpointsPerThread: capN}, nil)
		ids := fill(t, cp, "h", 3)
		plan.set(faultRule{prefix: "UPDATE", times: 1, code: "40001"})
		if err := cp.Delete(testCtx(t), "h", ids[1]); err != nil {
			t.Fatalf("delete with a 40001 on the renumbering: %v", err)
		}
		if got, want := plan.shape(), "BEGIN SAVEPOINT LOCK NEWEST LOCK NEWEST RELEASE SAVEPOINT DELETE !UPDATE ROLLBACK "+
			"BEGIN SAVEPOINT LOCK NEWEST LOCK NEWEST RELEASE SAVEPOINT DELETE UPDATE COMMIT"; got != want {
			t.Fatalf("sent %q, want %q", got, want)
		}
		env.expectThread(t, "h", []string{ids[0], ids[2]})
		more := fill(t, cp, "h", 2)
		env.expectThread(t, "h", []string{ids[2], more[0], more[1]})
	})

	t.Run("EnsureSchemaRacingItself", func(t *testing.T) {
		schema := newSchema(t, db)
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB, Schema: schema, MaxCheckpointsPerThread: capN})
		if err != nil {
			t.Fatal(err)
		}
		plan.set(
			faultRule{prefix: "CREATE TABLE", times: 1, code: "42P07"},
			faultRule{prefix: "ALTER TABLE", times: 1, code: "40001"},
			faultRule{prefix: "CREATE UNIQUE INDEX", times: 1, code: "42710"},
		)
		if err := cp.EnsureSchema(testCtx(t)); err != nil {
			t.Fatalf("EnsureSchema with concurrent-DDL errors injected: %v (sent %v)", err, plan.sent())
		}
		// Then the policy: the policy table's existence (CATALOG), its row (POLICY), the default recorded.
		if got, want := plan.shape(), "CATALOG !DDL DDL !DDL DDL DDL !DDL DDL DDL DDL DDL CATALOG POLICY INSERT INTO \""+schema[:11]; got != want {
			t.Fatalf("sent %q, want the catalog read (the schema exists: no CREATE SCHEMA), then each failed statement run once more, then the policy recorded: %q", got, want)
		}
		plan.set()
		fill(t, cp, "i", 5)
		var n int
		if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM "`+schema+`"."ziro_checkpoints"`).Scan(&n); err != nil || n != capN {
			t.Fatalf("after EnsureSchema and 5 puts: %d rows, %v; want %d", n, err, capN)
		}
	})
}
