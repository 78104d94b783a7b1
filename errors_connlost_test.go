package pgcheckpoint

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// safeToRetryErr stands for pgx's pgconn connection-level errors ("conn closed" after a request was
// sent): no SQLSTATE, a SafeToRetry method.
type safeToRetryErr struct{ safe bool }

func (e safeToRetryErr) Error() string     { return "conn closed" }
func (e safeToRetryErr) SafeToRetry() bool { return e.safe }

// TestClassifyConnClosed: a put whose COMMIT was sent when pgx's connection broke (pgx reports
// "conn closed") has an unknown outcome, like any broken connection: the put looks its id up instead of
// returning a raw error (issue 10, defect 4, found by TestRegressCommitThenConnectionLost).
func TestClassifyConnClosed(t *testing.T) {
	for _, err := range []error{
		safeToRetryErr{false},
		fmt.Errorf("commit: %w", safeToRetryErr{false}),
		safeToRetryErr{true},
	} {
		if got := classify(err, false); got != failureUnknown {
			t.Errorf("classify(%v) = %v, want failureUnknown", err, got)
		}
	}
	if got := classify(errors.New("some other error"), false); got != failureFinal {
		t.Errorf("a plain error is %v, want failureFinal", got)
	}
	if got := classify(context.DeadlineExceeded, true); got != failureUnknown {
		t.Errorf("a deadline without SQLSTATE is %v, want failureUnknown", got)
	}
}
