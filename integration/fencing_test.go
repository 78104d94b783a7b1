package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestFencingRace races fenced writers on the same head, in goroutines of this process and of two worker
// processes, for every driver x dialect: each round exactly one put wins, every other one gets
// ErrConflict and writes nothing. Round 0 of every thread races on an empty thread (expect-empty).
func TestFencingRace(t *testing.T) {
	t.Parallel()
	const (
		rounds        = 30 // rounds on the chained thread, each on the previous winner
		emptyThreads  = 10 // extra threads raced while empty
		cap           = 5  // retention runs during the races
		localWriters  = 4
		procs         = 2
		writersOfProc = 3
	)
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: cap})
			var workers []*helper
			for range procs {
				spec := tg.spec("fence", schema)
				spec.Cap, spec.Goroutines = cap, writersOfProc
				workers = append(workers, startHelper(t, spec))
			}
			var wins, byIndex, byHead int
			race := func(thread, head string) string {
				t.Helper()
				for _, w := range workers {
					w.send(thread + "\t" + head)
				}
				results := fencedRace(context.Background(), cp, thread, head, localWriters, "local")
				for _, w := range workers {
					for {
						line, ok := w.next()
						if !ok {
							t.Fatalf("worker exited: %s", w.diag())
						}
						if line == "done" {
							break
						}
						results = append(results, strings.Split(line, "\t"))
					}
				}
				winner := ""
				for _, r := range results {
					switch r[0] {
					case "win":
						if winner != "" {
							t.Fatalf("thread %q head %q: two winners %s and %s", thread, head, winner, r[1])
						}
						winner = r[1]
						wins++
					case "conflict":
						if r[1] == "index" {
							byIndex++
						} else {
							byHead++
						}
					default:
						t.Fatalf("thread %q head %q: a fenced put failed with something else than ErrConflict: %v", thread, head, r)
					}
				}
				if winner == "" {
					t.Fatalf("thread %q head %q: nobody won among %d writers: %v", thread, head, len(results), results)
				}
				return winner
			}

			var chain []string
			head := ""
			for range rounds {
				head = race("chain", head)
				chain = append(chain, head)
			}
			if got, want := listIDs(t, cp, "chain"), reversed(chain[len(chain)-cap:]); !slices.Equal(got, want) {
				t.Fatalf("chain thread holds %v, want exactly the newest %d winners %v", got, cap, want)
			}
			for k := range emptyThreads {
				thread := fmt.Sprintf("empty-%d", k)
				winner := race(thread, "")
				if got := listIDs(t, cp, thread); len(got) != 1 || got[0] != winner {
					t.Fatalf("expect-empty race on %q: thread holds %v, want only the winner %s", thread, got, winner)
				}
			}
			checkDenseSeq(t, db, schema, "chain")
			total := (rounds + emptyThreads) * (localWriters + procs*writersOfProc)
			if wins != rounds+emptyThreads || wins+byIndex+byHead != total {
				t.Fatalf("%d puts: %d wins, %d conflicts; want %d wins and the rest conflicts", total, wins, byIndex+byHead, rounds+emptyThreads)
			}
			t.Logf("FIGURES fencing %s: %d fenced puts in %d races (%d goroutines here + %d processes x %d): %d winners, "+
				"%d conflicts detected (%d by the unique (thread_id, seq) index, %d by the head check)",
				tg.name, total, rounds+emptyThreads, localWriters, procs, writersOfProc, wins, byIndex+byHead, byIndex, byHead)
		})
	}
}
