package sqlmocktest_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
	"github.com/ziroagent/pgcheckpoint"
)

// TestDriverErrors: the library reads both drivers' error types (*pgconn.PgError, *pq.Error), also
// wrapped, through the one SQLState method it relies on; its own tests use stand-ins with that method.
func TestDriverErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		state     string
		retryable bool
	}{
		{"pgx 40001", &pgconn.PgError{Code: "40001"}, "40001", true},
		{"pgx 40P01 wrapped", fmt.Errorf("put: %w", &pgconn.PgError{Code: "40P01"}), "40P01", true},
		{"pgx 23505", &pgconn.PgError{Code: "23505"}, "23505", false},
		{"lib/pq 40001", &pq.Error{Code: "40001"}, "40001", true},
		{"lib/pq 42P01 wrapped", fmt.Errorf("get: %w", &pq.Error{Code: "42P01"}), "42P01", false},
	} {
		if got := pgcheckpoint.SQLState(tc.err); got != tc.state {
			t.Errorf("%s: SQLState = %q, want %q", tc.name, got, tc.state)
		}
		if got := pgcheckpoint.Retryable(tc.err); got != tc.retryable {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.retryable)
		}
	}
}
