package pgcheckpoint

import (
	"errors"
	"fmt"

	"github.com/ziroagent/pgcheckpoint/internal/jsonscan"
	"github.com/ziroagent/pgcheckpoint/internal/snapshotfacts"
)

// pgcheckpointmock computes the version and size it expects a put to send with this package's scanner.
func init() {
	snapshotfacts.Inspect = func(b []byte) (int32, int, error) {
		f, err := inspectSnapshot(b, 0)
		return f.version, f.size, err
	}
}

// snapshotFacts is what a put learns from the snapshot bytes before anything is sent.
type snapshotFacts struct {
	version int32
	size    int
}

// inspectSnapshot validates a snapshot and reads its top-level "version" with the one scanner
// (internal/jsonscan, which says what it refuses), and wraps a refusal in ErrInvalidSnapshot or
// ErrSnapshotTooLarge. limit is the size limit in bytes, 0 for none.
func inspectSnapshot(b []byte, limit int) (snapshotFacts, error) {
	f, err := jsonscan.Inspect(b, limit)
	if err != nil {
		return snapshotFacts{}, snapshotError(err)
	}
	return snapshotFacts{version: f.Version, size: f.Size}, nil
}

// snapshotError is the error a put returns for the scanner's refusal.
func snapshotError(err error) error {
	var e *jsonscan.Error
	if !errors.As(err, &e) {
		return err
	}
	sentinel := ErrInvalidSnapshot
	if e.Kind == jsonscan.TooLarge {
		sentinel = ErrSnapshotTooLarge
	}
	return fmt.Errorf("%s: %w", e.Reason, sentinel)
}
