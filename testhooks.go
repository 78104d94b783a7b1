package pgcheckpoint

import (
	"time"

	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// The hooks of internal/testhooks, for the test modules of this repository.
func init() {
	testhooks.AssumeRetention = func(c any, cap int) { assumeRetention(c.(*Checkpointer), cap) }
}

// assumeRetention makes c take the table's policy as read already, for ever: cap checkpoints per thread
// (0: every checkpoint).
func assumeRetention(c *Checkpointer, cap int) {
	c.policy.mu.Lock()
	defer c.policy.mu.Unlock()
	c.policy.limits.cap, c.policy.recorded = cap, true
	c.policy.readAt = time.Now().Add(100 * 365 * 24 * time.Hour)
}
