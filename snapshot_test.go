package pgcheckpoint

import (
	"errors"
	"testing"
)

// TestInspectSnapshotErrors: a refusal of the scanner (internal/jsonscan, tested there against a reference
// and an oracle) reaches the caller wrapping the sentinel of its kind, with the scanner's reason.
func TestInspectSnapshotErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		limit int
		want  error
		msg   string
	}{
		{`[1]`, 0, ErrInvalidSnapshot, "snapshot must be a JSON object: invalid snapshot"},
		{`{"a":"\u0000"}`, 0, ErrInvalidSnapshot, `snapshot holds the NUL character (\u0000), which JSONB cannot store: invalid snapshot`},
		{`{"version":1.5}`, 0, ErrInvalidSnapshot, `top-level "version" is 1.5, want an integer within int32: invalid snapshot`},
		{`{"a":12345}`, 8, ErrSnapshotTooLarge, "snapshot is 11 bytes, the limit is 8: snapshot too large"},
		{`{"a":1e3}`, 9, ErrSnapshotTooLarge, "snapshot is 10 bytes as PostgreSQL prints it back (numbers written out in full), the limit is 9: snapshot too large"},
	} {
		_, err := inspectSnapshot([]byte(tc.in), tc.limit)
		if !errors.Is(err, tc.want) || err.Error() != tc.msg {
			t.Errorf("inspectSnapshot(%s, %d) = %v, want %q wrapping %v", tc.in, tc.limit, err, tc.msg, tc.want)
		}
	}
	f, err := inspectSnapshot([]byte(`{"version": 7}`), 0)
	if err != nil || f.version != 7 || f.size != 14 {
		t.Errorf("inspectSnapshot of a good snapshot = %+v, %v", f, err)
	}
}
