package pgcheckpoint

// Test-only hooks for the external test package.

// LockKeyFor exposes the advisory lock key derivation for a purpose and a quoted table name.
func LockKeyFor(purpose, table string) int32 {
	return lockKey(purpose, names{table: table})
}
