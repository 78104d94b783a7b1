package integration

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as the worker process of the multi-process tests (fencing,
// crashes, concurrency, concurrent EnsureSchema): a test re-executes the binary with PGCHECKPOINT_HELPER
// set, and the binary then runs that worker instead of the tests (see subprocess_test.go).
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}
