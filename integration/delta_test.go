package integration

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestDeltaConformance runs the public contract suite on delta tables, for every driver x dialect
// (Fork included: a delta fork copies the heads and the items they hold).
func TestDeltaConformance(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				opts.Storage = pgcheckpoint.StorageDelta
				return tg.newCheckpointer(t, db, opts)
			})
		})
	}
}

// TestDeltaLeasesRefused: leases on a delta table are refused with ErrInvalidOptions before anything
// is written.
func TestDeltaLeasesRefused(t *testing.T) {
	for _, tg := range postgresTargets(t)[:2] {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Storage: pgcheckpoint.StorageDelta})
			if _, err := cp.Put(testCtx(t), "src", []byte(`{"messages": [1, 2, 3]}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := cp.Acquire(testCtx(t), "src", "me", time.Minute); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
				t.Fatalf("Acquire on a delta table: %v, want ErrInvalidOptions", err)
			}
		})
	}
}

// TestDeltaFork forks a delta thread with a rewritten history (with and without History) and then
// writes, trims, deletes and prunes each side: every checkpoint of both threads keeps rebuilding exactly,
// each thread holds exactly the items its heads hold (the fork copied the items, so no operation on one
// thread can remove what the other needs), and a put into the fork continues from the copied state.
func TestDeltaFork(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			opts := pgcheckpoint.Options{Schema: newSchema(t, db), Table: "cp", Storage: pgcheckpoint.StorageDelta, MaxCheckpointsPerThread: 6}
			cp := tg.newCheckpointer(t, db, opts)
			want := map[string]map[string]string{} // thread -> id -> snapshot
			var order []string
			put := func(thread, doc string) string {
				t.Helper()
				id, err := cp.Put(ctx, thread, []byte(doc))
				if err != nil {
					t.Fatalf("put %s: %v", thread, err)
				}
				if want[thread] == nil {
					want[thread] = map[string]string{}
				}
				want[thread][id] = doc
				if thread == "src" {
					order = append(order, id)
				}
				return id
			}
			for _, doc := range []string{
				`{"version": 1, "messages": [1, 2, 3], "steps": ["a"]}`,
				`{"version": 1, "messages": [1, 2, 3, 4], "steps": ["a", "b"]}`,
				`{"version": 1, "messages": [1, 20, 3, 4, 5], "steps": ["a", "b"]}`,
				`{"version": 1, "messages": [{"summary": 1}], "steps": "done"}`,
				`{"version": 1, "messages": [{"summary": 1}, 6, 7], "steps": ["c"]}`,
			} {
				put("src", doc)
			}
			check := func(when string) {
				t.Helper()
				for thread, snaps := range want {
					list, err := cp.List(ctx, thread, pgcheckpoint.ListOptions{Limit: -1})
					if err != nil || len(list) != len(snaps) {
						t.Fatalf("%s: List(%s) = %d checkpoints, %v; want %d", when, thread, len(list), err, len(snaps))
					}
					for id, doc := range snaps {
						got, err := cp.Get(ctx, thread, id)
						if err != nil || !jsonbEqual(t, ctx, db, got.Snapshot, []byte(doc)) {
							t.Fatalf("%s: Get(%s, %s) = %s, %v; want %s", when, thread, id, got.Snapshot, err, doc)
						}
					}
					var orphans int
					if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+opts.Schema+`".cp_items AS i
						WHERE i.thread_id = $1 AND NOT EXISTS (
							SELECT 1 FROM "`+opts.Schema+`".cp_heads AS h, unnest(h.lo, h.hi) AS u(lo, hi)
							WHERE h.thread_id = $1 AND u.lo <= i.pos AND i.pos < u.hi)`, thread).Scan(&orphans); err != nil || orphans != 0 {
						t.Fatalf("%s: thread %s holds %d items no head of it holds (%v)", when, thread, orphans, err)
					}
				}
			}
			if got, err := cp.Fork(ctx, "src", order[3], "one", pgcheckpoint.ForkOptions{}); err != nil || got != order[3] {
				t.Fatalf("Fork = %q, %v", got, err)
			}
			want["one"] = map[string]string{order[3]: want["src"][order[3]]}
			if _, err := cp.Fork(ctx, "src", order[4], "all", pgcheckpoint.ForkOptions{History: true}); err != nil {
				t.Fatal(err)
			}
			want["all"] = map[string]string{}
			for id, doc := range want["src"] {
				want["all"][id] = doc
			}
			check("after the forks")

			// The source goes on, is trimmed, loses checkpoints, then goes away: the forks keep theirs.
			for i := range 6 {
				put("src", `{"version": 2, "messages": [`+strings.Repeat("9,", i)+`0]}`)
			}
			for id := range want["src"] {
				if !slices.Contains(order[5:], id) {
					delete(want["src"], id) // trimmed to the cap of 6
				}
			}
			check("after the source was trimmed")
			if err := cp.Delete(ctx, "all", order[2]); err != nil {
				t.Fatal(err)
			}
			delete(want["all"], order[2])
			check("after a delete in the fork")
			if err := cp.DeleteThread(ctx, "src"); err != nil {
				t.Fatal(err)
			}
			delete(want, "src")
			check("after the source was deleted")

			// The forks take puts that continue their own arrays.
			put("one", `{"version": 1, "messages": [{"summary": 1}, "next"], "steps": "done"}`)
			put("all", `{"version": 1, "messages": [{"summary": 1}, 6, 7, 8], "steps": ["c", "d"]}`)
			check("after puts into the forks")
			if _, err := cp.Fork(ctx, "one", order[3], "all", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrThreadExists) {
				t.Fatalf("Fork into a thread with checkpoints: %v, want ErrThreadExists", err)
			}
			if _, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Nanosecond, IncludeNewest: true}); err != nil {
				t.Fatal(err)
			}
			var items int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+opts.Schema+`".cp_items`).Scan(&items); err != nil || items != 0 {
				t.Fatalf("after pruning everything, %d items are left (%v)", items, err)
			}
		})
	}
}
