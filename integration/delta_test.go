package integration

import (
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestDeltaConformance runs the public contract suite on delta tables, for every driver x dialect.
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
