package pgcheckpoint

// Test-only hooks for the external test package.

// LockKeyFor exposes the advisory lock key derivation for a quoted table name.
func LockKeyFor(table string) int64 {
	c := &Checkpointer{names: names{table: table}}
	return c.lockKey()
}
