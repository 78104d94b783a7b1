package integration

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestRetentionPolicy shows on the real server, for every driver x dialect and both layouts, that
// retention is the table's and not each writer's (docs/operations.md, "Retention: one policy per
// table"): EnsureSchema records the cap, a writer that names none trims by it, a writer that names
// another is refused before anything is written, SetRetention reaches writers that read the policy
// afterwards, and a table whose policy record is gone (as one the TypeScript package made) is trimmed
// only by writers that name a cap.
func TestRetentionPolicy(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
			t.Run(tg.name+"/"+storage.String(), func(t *testing.T) {
				db := tg.open(t)
				schema := newSchema(t, db)
				ctx := testCtx(t)
				writer := func(cap int) *pgcheckpoint.Checkpointer {
					t.Helper()
					cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{
						Schema: schema, Table: "agent_state", Dialect: tg.dialect, Storage: storage,
						MaxCheckpointsPerThread: cap,
					})
					if err != nil {
						t.Fatalf("New: %v", err)
					}
					return cp
				}
				rows := func(thread string) int {
					t.Helper()
					return count(t, db, `"`+schema+`".agent_state`, thread)
				}
				put := func(cp *pgcheckpoint.Checkpointer, thread string, n int) {
					t.Helper()
					for i := range n {
						if _, err := cp.Put(ctx, thread, fmt.Appendf(nil, `{"version":1,"step":%d,"messages":[%d]}`, i, i)); err != nil {
							t.Fatalf("put %d: %v", i, err)
						}
					}
				}

				owner := writer(3)
				if err := owner.EnsureSchema(ctx); err != nil {
					t.Fatalf("EnsureSchema: %v", err)
				}
				if r, err := owner.Retention(ctx); err != nil || r.MaxCheckpointsPerThread != 3 {
					t.Fatalf("Retention after EnsureSchema with cap 3 = %+v, %v", r, err)
				}

				// A writer that names no cap follows the table.
				follower := writer(0)
				put(follower, "t1", 5)
				if n := rows("t1"); n != 3 {
					t.Fatalf("a writer following the table's cap 3 left %d rows", n)
				}

				// A writer that names another cap is refused before it writes.
				_, err := writer(5).Put(ctx, "t1", []byte(`{"version":1}`))
				var pe *pgcheckpoint.Error
				if !errors.Is(err, pgcheckpoint.ErrRetentionMismatch) || !errors.As(err, &pe) || pe.Op != pgcheckpoint.OpPut {
					t.Fatalf("put with cap 5 on a table keeping 3: %v, want ErrRetentionMismatch from %s", err, pgcheckpoint.OpPut)
				}
				if n := rows("t1"); n != 3 {
					t.Fatalf("the refused put changed the thread: %d rows, want 3", n)
				}
				// So is its EnsureSchema, which never overwrites a recorded policy.
				if err := writer(5).EnsureSchema(ctx); !errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
					t.Fatalf("EnsureSchema with cap 5 on a table keeping 3: %v, want ErrRetentionMismatch", err)
				}

				// SetRetention changes the table's policy for every writer that reads it afterwards.
				if err := owner.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit}); err != nil {
					t.Fatalf("SetRetention(NoLimit): %v", err)
				}
				put(writer(0), "t1", 4)
				if n := rows("t1"); n != 7 {
					t.Fatalf("after SetRetention(NoLimit) 3 rows and 4 puts left %d rows, want 7", n)
				}
				if _, err := writer(3).Put(ctx, "t1", []byte(`{"version":1}`)); !errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
					t.Fatalf("put with cap 3 on a table keeping every checkpoint: %v, want ErrRetentionMismatch", err)
				}

				// A table that records no policy: writers that name none trim nothing, writers that do trim.
				if _, err := db.ExecContext(ctx, `DROP TABLE "`+schema+`".agent_state_policy`); err != nil {
					t.Fatalf("drop the policy table: %v", err)
				}
				put(writer(0), "t2", 4)
				if n := rows("t2"); n != 4 {
					t.Fatalf("a writer naming no cap on a table without policy left %d of 4 rows", n)
				}
				put(writer(2), "t2", 1)
				if n := rows("t2"); n != 2 {
					t.Fatalf("a writer naming cap 2 on a table without policy left %d rows, want 2", n)
				}
				if _, err := owner.Retention(ctx); !errors.Is(err, pgcheckpoint.ErrSchemaMissing) {
					t.Fatalf("Retention of a table without policy: %v, want ErrSchemaMissing", err)
				}
			})
		}
	}
}
