package integration

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestForkRacesPuts starts a fork into a new thread at the same moment as plain puts and a PutAfter
// (expecting an empty thread) into that thread, round after round, for every driver and dialect. A fork
// either lands whole, before every put that succeeds (their ids sort after its copies), or is refused
// with ErrThreadExists and leaves no copy behind; it and the PutAfter never both win; the thread ends
// densely numbered and at most at the cap.
func TestForkRacesPuts(t *testing.T) {
	const cap, rounds, puts = 5, 12, 2
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: cap})
			table := `"` + schema + `"."ziro_checkpoints"`
			ctx := testCtx(t)
			var source []string
			for i := range 4 {
				id, err := cp.Put(ctx, "source", []byte(fmt.Sprintf(`{"i": %d}`, i)))
				if err != nil {
					t.Fatal(err)
				}
				source = append(source, id)
			}
			forkWins, putAfterWins := 0, 0
			for round := range rounds {
				to := fmt.Sprintf("branch-%d", round)
				var (
					wg       sync.WaitGroup
					start    = make(chan struct{})
					mu       sync.Mutex
					putIDs   []string
					forkErr  error
					afterErr error
				)
				wg.Add(2 + puts)
				go func() {
					defer wg.Done()
					<-start
					_, forkErr = cp.Fork(ctx, "source", source[3], to, pgcheckpoint.ForkOptions{History: true})
				}()
				go func() {
					defer wg.Done()
					<-start
					id, err := cp.PutIfEmpty(ctx, to, []byte(`{"after": ""}`))
					afterErr = err
					if err == nil {
						mu.Lock()
						putIDs = append(putIDs, id)
						mu.Unlock()
					}
				}()
				for p := range puts {
					go func() {
						defer wg.Done()
						<-start
						id, err := cp.Put(ctx, to, []byte(fmt.Sprintf(`{"put": %d}`, p)))
						if err != nil {
							t.Errorf("round %d: Put: %v", round, err)
							return
						}
						mu.Lock()
						putIDs = append(putIDs, id)
						mu.Unlock()
					}()
				}
				close(start)
				wg.Wait()
				if afterErr != nil && !errors.Is(afterErr, pgcheckpoint.ErrConflict) {
					t.Fatalf("round %d: PutAfter: %v", round, afterErr)
				}
				if forkErr != nil && !errors.Is(forkErr, pgcheckpoint.ErrThreadExists) {
					t.Fatalf("round %d: Fork: %v", round, forkErr)
				}
				if forkErr == nil && afterErr == nil {
					t.Fatalf("round %d: the fork and PutAfter(\"\") both won", round)
				}
				if forkErr == nil {
					forkWins++
				}
				if afterErr == nil {
					putAfterWins++
				}
				// What the thread must hold: the newest cap of the fork's copies (if it won) and the puts.
				want := slices.Clone(putIDs)
				if forkErr == nil {
					want = append(want, source...)
					for _, id := range putIDs {
						if id <= source[3] {
							t.Fatalf("round %d: put id %s sorts before the fork's copy %s", round, id, source[3])
						}
					}
				}
				slices.Sort(want)
				want = want[max(0, len(want)-cap):]
				slices.Reverse(want)
				got, err := cp.List(ctx, to, pgcheckpoint.ListOptions{Limit: -1})
				if err != nil {
					t.Fatal(err)
				}
				var gotIDs []string
				for _, c := range got {
					gotIDs = append(gotIDs, c.ID)
				}
				if !slices.Equal(gotIDs, want) {
					t.Fatalf("round %d (fork %v, PutAfter %v): thread holds %v, want %v", round, forkErr, afterErr, gotIDs, want)
				}
				var n, lo, hi int64
				if err := db.QueryRowContext(ctx, `SELECT count(*), min(seq), max(seq) FROM `+table+` WHERE thread_id = $1`, to).Scan(&n, &lo, &hi); err != nil {
					t.Fatal(err)
				}
				if hi-lo+1 != n {
					t.Fatalf("round %d: %d rows numbered %d..%d: not dense", round, n, lo, hi)
				}
			}
			t.Logf("FIGURES fork race %s: %d rounds, the fork won %d, PutAfter(\"\") won %d", tg.name, rounds, forkWins, putAfterWins)
		})
	}
}
