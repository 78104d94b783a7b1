package integration

import (
	"testing"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestPreparedConformance runs the contract suite with the Checkpointer on a PreparedDB (statements
// prepared once and reused) for both drivers and dialects.
func TestPreparedConformance(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			p := pgcheckpoint.Prepared(db)
			t.Cleanup(func() {
				if err := p.Close(); err != nil {
					t.Errorf("close prepared statements: %v", err)
				}
			})
			pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
				if opts.Schema == "" {
					opts.Schema = newSchema(t, db)
				}
				opts.Dialect = tg.dialect
				cp, err := pgcheckpoint.New(p, opts)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := cp.EnsureSchema(testCtx(t)); err != nil {
					t.Fatalf("EnsureSchema: %v", err)
				}
				return cp
			})
		})
	}
}
