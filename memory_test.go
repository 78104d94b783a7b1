package pgcheckpoint_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
		return pgcheckpoint.NewMemory(opts)
	})
}

// TestMemoryByteBudget: Memory trims as a Checkpointer does under a cap and a byte budget: the newest
// checkpoints whose sizes (the JSON as given) sum to at most the budget, always the newest, at most the
// cap; with both, whichever keeps fewer; 0 and negative budgets are none.
func TestMemoryByteBudget(t *testing.T) {
	t.Parallel()
	doc := func(n int) []byte { // a snapshot of exactly n >= 10 bytes
		return []byte(`{"p": "` + strings.Repeat("x", n-9) + `"}`)
	}
	for _, c := range []struct {
		name   string
		cap    int
		budget int64
		sizes  []int
		want   int // how many of the newest remain after the last put
	}{
		{"fits exactly", pgcheckpoint.NoLimit, 300, []int{100, 100, 100}, 3},
		{"one byte over", pgcheckpoint.NoLimit, 299, []int{100, 100, 100}, 2},
		{"newest larger than the budget", pgcheckpoint.NoLimit, 50, []int{20, 20, 100}, 1},
		{"small after large", pgcheckpoint.NoLimit, 150, []int{100, 1000, 20, 30}, 2},
		{"cap keeps fewer", 2, 1000, []int{10, 10, 10, 10}, 2},
		{"budget keeps fewer", 3, 25, []int{10, 10, 10, 10}, 2},
		{"no budget", pgcheckpoint.NoLimit, 0, []int{1000, 1000, 1000}, 3},
		{"negative budget is none", 2, pgcheckpoint.NoLimit, []int{1000, 1000, 1000}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := pgcheckpoint.NewMemory(pgcheckpoint.Options{MaxCheckpointsPerThread: c.cap, MaxBytesPerThread: c.budget})
			var ids []string
			for _, n := range c.sizes {
				id, err := m.Put(context.Background(), "t", doc(n))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			list, err := m.List(context.Background(), "t", pgcheckpoint.ListOptions{Limit: -1})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, cp := range list {
				got = append([]string{cp.ID}, got...)
			}
			if want := ids[len(ids)-c.want:]; !slices.Equal(got, want) {
				t.Fatalf("sizes %v, cap %d, budget %d: kept %v, want the newest %d %v", c.sizes, c.cap, c.budget, got, c.want, want)
			}
		})
	}
}
