package pgcheckpoint

// Test-only hooks for the external test package.

// AssumeRetention makes c take the table's policy as read already, for ever: cap checkpoints per
// thread (0: every checkpoint). The statement-shape tests pin each operation's own statements; the
// policy reads have tests of their own (TestSqlmockRetention*).
func AssumeRetention(c *Checkpointer, cap int) { assumeRetention(c, cap) }
