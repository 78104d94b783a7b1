package integration

import (
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestConformance runs the public contract suite for every driver x dialect on PostgreSQL, each subtest
// in a schema of its own.
func TestConformance(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				return tg.newCheckpointer(t, db, opts)
			})
		})
	}
}
