package integration

import (
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// TestRegressDeleteThreadBesideFirstPut (found by the checker once its snapshots carried arrays and
// every read compared the whole snapshot): on a delta table a DeleteThread of an empty thread removed
// every item of the thread after deleting its heads, in the same transaction but a later statement. A
// first put takes no row lock the delete could wait for, so one that committed in between kept its
// head and lost its items: the next read returned the head's arrays empty. DeleteThread now removes
// only the items no head holds (the gc statement). The hook commits the put in exactly that window.
func TestRegressDeleteThreadBesideFirstPut(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			ctx := testCtx(t)
			opts := pgcheckpoint.Options{Schema: newSchema(t, db), Storage: pgcheckpoint.StorageDelta}
			deleter := tg.newCheckpointer(t, db, opts)
			writer := tg.newCheckpointer(t, db, opts)
			snap := []byte(`{"version": 1, "steps": ["a", "b", "c"]}`)
			var putErr error
			testhooks.AfterDeleteThreadRows = func(c any, thread string) {
				if c == deleter && putErr == nil {
					_, putErr = writer.Put(ctx, thread, snap)
				}
			}
			t.Cleanup(func() { testhooks.AfterDeleteThreadRows = nil })
			if err := deleter.DeleteThread(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			if putErr != nil {
				t.Fatalf("the put inside the delete's window: %v", putErr)
			}
			got, err := writer.Latest(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, "the put committed beside the delete", got.Snapshot, string(snap))
		})
	}
}
