package pgcheckpoint

import "time"

// Test-only hooks for the external test package.

// LockKeyFor exposes the advisory lock key derivation for a purpose and a quoted table name.
func LockKeyFor(purpose, table string) int32 {
	return lockKey(purpose, names{table: table})
}

// AssumeRetention makes c take the table's policy as read already, for ever: cap checkpoints per
// thread (0: every checkpoint). The statement-shape tests pin each operation's own statements; the
// policy reads have tests of their own (TestSqlmockRetention*).
func AssumeRetention(c *Checkpointer, cap int) {
	c.policy.mu.Lock()
	defer c.policy.mu.Unlock()
	c.policy.cap, c.policy.recorded = cap, true
	c.policy.readAt = time.Now().Add(100 * 365 * 24 * time.Hour)
}
