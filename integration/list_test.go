package integration

import (
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestListPastOnePage: a List of every checkpoint (negative Limit) of a thread longer than one statement
// reads (MaxListLimit) returns all of them, newest first, instead of stopping at 10,000 (issue 11); a
// positive Limit above it too. Ids of rows inserted straight into the table, in order.
func TestListPastOnePage(t *testing.T) {
	t.Parallel()
	const n = pgcheckpoint.MaxListLimit + 57
	for _, tg := range postgresTargets(t)[:2] { // the same SQL for both dialects
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
			if _, err := db.ExecContext(testCtx(t), `INSERT INTO `+tableIn(schema)+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
SELECT 'long', '01900000-0000-7000-8000-' || lpad(i::text, 12, '0'), '{}', 0, 2, i FROM generate_series(1, $1) AS i`, n); err != nil {
				t.Fatal(err)
			}
			for _, limit := range []int{-1, n + 10, pgcheckpoint.MaxListLimit + 1} {
				got, err := cp.List(testCtx(t), "long", pgcheckpoint.ListOptions{Limit: limit})
				want := min(n, limit)
				if limit < 0 {
					want = n
				}
				if err != nil || len(got) != want {
					t.Fatalf("List limit %d = %d checkpoints, %v; want %d", limit, len(got), err, want)
				}
				for i := 1; i < len(got); i++ {
					if got[i-1].ID <= got[i].ID {
						t.Fatalf("List limit %d: %s before %s, not newest first", limit, got[i-1].ID, got[i].ID)
					}
				}
			}
		})
	}
}
