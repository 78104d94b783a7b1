package integration

import (
	"context"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestRekeyConstraintWaitsBounded: Rekey's first step adds the encryption constraint, which needs the
// table's ACCESS EXCLUSIVE lock. While a long transaction holds a lock on the table, that wait is
// bounded (lock_timeout, then again after a backoff), so puts from other clients are not queued behind
// it for as long as the transaction lasts: a put completes while the transaction still holds its lock,
// and Rekey completes once it ends. (Without the bound the put would wait for the ALTER, which waits
// for the transaction, which this test ends only after the put.)
func TestRekeyConstraintWaitsBounded(t *testing.T) {
	for _, tg := range postgresTargets(t)[:2] { // the PostgreSQL dialect: the bound is its DDL's
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			opts := pgcheckpoint.Options{Schema: newSchema(t, db), Dialect: tg.dialect}
			plain := tg.newCheckpointer(t, db, opts)
			if _, err := plain.Put(ctx, "t", []byte(`{"step": 1}`)); err != nil {
				t.Fatal(err)
			}
			opts.Keys = testKeys(t, "k1")
			keyed, err := pgcheckpoint.New(db, opts)
			if err != nil {
				t.Fatal(err)
			}
			holder, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Rollback()
			var n int
			if err := holder.QueryRowContext(ctx, `SELECT count(*) FROM "`+opts.Schema+`".ziro_checkpoints`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := keyed.Rekey(ctx, pgcheckpoint.RekeyOptions{})
				done <- err
			}()
			// Wait until the ALTER has waited for the lock at least once.
			for {
				var waiting bool
				err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
					WHERE query LIKE 'ALTER TABLE "' || $1 || '"%ADD CONSTRAINT%' AND wait_event_type = 'Lock')`, opts.Schema).Scan(&waiting)
				if err != nil {
					t.Fatal(err)
				}
				if waiting {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Rekey ended while the table's lock was held: %v", err)
				case <-time.After(20 * time.Millisecond): // polling the condition
				}
			}
			putCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if _, err := keyed.Put(putCtx, "t", []byte(`{"step": 2}`)); err != nil {
				t.Fatalf("a put while Rekey waits for the table's lock: %v", err)
			}
			if err := holder.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Rekey after the lock was released: %v", err)
			}
			if s, err := keyed.Encryption(ctx); err != nil || s != pgcheckpoint.EncryptionRequired {
				t.Fatalf("Encryption = %v, %v", s, err)
			}
		})
	}
}
