package pgcheckpoint

import (
	"context"
	"fmt"
)

// deltaRebindFork is rebindFork for a delta table: its heads and items.
func (c *Checkpointer) deltaRebindFork(ctx context.Context, q DBTX, r forkRequest) error {
	if c.seal == nil {
		return nil
	}
	return fmt.Errorf("fork of an encrypted delta table is not built yet: %w", ErrInvalidOptions)
}
