package integration

import (
	"errors"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestDeltaConformance runs the public contract suite on delta tables, for every driver x dialect.
func TestDeltaConformance(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			// Fork of a delta table is not built yet; TestDeltaForkRefused covers what it does instead.
			pgcheckpointtest.RunWithout(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				opts.Storage = pgcheckpoint.StorageDelta
				return tg.newCheckpointer(t, db, opts)
			}, "Fork", "ForkHistoryRetention")
		})
	}
}

// TestDeltaForkRefused: Fork and leases on a delta table are refused with ErrInvalidOptions before
// anything is written (a copied head would rebuild from items that are not its thread's).
func TestDeltaForkRefused(t *testing.T) {
	for _, tg := range postgresTargets(t)[:2] {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Storage: pgcheckpoint.StorageDelta})
			id, err := cp.Put(testCtx(t), "src", []byte(`{"messages": [1, 2, 3]}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cp.Fork(testCtx(t), "src", id, "dst", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
				t.Fatalf("Fork on a delta table: %v, want ErrInvalidOptions", err)
			}
			if _, err := cp.Latest(testCtx(t), "dst"); !errors.Is(err, pgcheckpoint.ErrNotFound) {
				t.Fatalf("after the refused fork, dst: %v, want ErrNotFound", err)
			}
			if _, err := cp.Acquire(testCtx(t), "src", "me", time.Minute); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
				t.Fatalf("Acquire on a delta table: %v, want ErrInvalidOptions", err)
			}
		})
	}
}
