package pgcheckpoint_test

import (
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
