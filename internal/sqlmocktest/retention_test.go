package sqlmocktest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
)

// A Checkpointer reads the table's retention policy before its first put and trims by it, whatever
// cap its own options would have meant; a client that names another cap is refused before it writes.
func TestSqlmockRetentionFollowsTheTable(t *testing.T) {
	t.Parallel()
	d := pgcheckpoint.PostgreSQL
	snap := []byte(`{"version": 2}`)
	for _, tc := range []struct {
		name      string
		opt       int  // Options.MaxCheckpointsPerThread
		table     bool // the policy table exists
		recorded  *int // the recorded cap (nil: no row)
		trimTo    int  // the cap the put must send (pgcheckpointmock.Cap: negative for none)
		mismatch  bool
		secondPut bool // a second put sends no policy read (the policy is cached)
	}{
		{name: "follow", opt: 0, table: true, recorded: ptr(7), trimTo: 7, secondPut: true},
		{name: "follow keep-all", opt: 0, table: true, recorded: ptr(0), trimTo: pgcheckpoint.NoLimit},
		{name: "same cap", opt: 7, table: true, recorded: ptr(7), trimTo: 7},
		{name: "other cap", opt: 5, table: true, recorded: ptr(7), mismatch: true},
		{name: "no-limit against a cap", opt: pgcheckpoint.NoLimit, table: true, recorded: ptr(7), mismatch: true},
		{name: "no policy table, follow", opt: 0, table: false, trimTo: pgcheckpoint.NoLimit},
		{name: "no policy row, follow", opt: 0, table: true, trimTo: pgcheckpoint.NoLimit},
		{name: "no policy table, own cap", opt: 3, table: false, trimTo: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, mock, err := pgcheckpointmock.New()
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{MaxCheckpointsPerThread: tc.opt})
			if err != nil {
				t.Fatal(err)
			}
			s := pgcheckpointmock.PostgreSQL
			mock.ExpectQuery(s.PolicyTable).WithArgs("public", "ziro_checkpoints_policy").
				WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(tc.table))
			if tc.table {
				rows := sqlmock.NewRows([]string{"max_checkpoints_per_thread", "max_bytes_per_thread"})
				if tc.recorded != nil {
					rows.AddRow(int64(*tc.recorded), int64(0))
				}
				mock.ExpectQuery(s.ReadPolicy).WillReturnRows(rows)
			}
			if !tc.mismatch {
				pgcheckpointmock.ExpectPut(mock, d, "t", snap, pgcheckpointmock.Cap(tc.trimTo), pgcheckpointmock.Seq(3))
			}
			_, err = cp.Put(context.Background(), "t", snap)
			if tc.mismatch != errors.Is(err, pgcheckpoint.ErrRetentionMismatch) || (!tc.mismatch && err != nil) {
				t.Fatalf("Put: %v (want a mismatch: %v)", err, tc.mismatch)
			}
			if tc.secondPut {
				pgcheckpointmock.ExpectPut(mock, d, "t", snap, pgcheckpointmock.Cap(tc.trimTo), pgcheckpointmock.Seq(4))
				if _, err := cp.Put(context.Background(), "t", snap); err != nil {
					t.Fatalf("second Put: %v", err)
				}
			}
			if err := mock.ExpectationsWereMet(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// SetRetention writes the policy whatever was recorded, and the next put reads it again.
func TestSqlmockSetRetention(t *testing.T) {
	t.Parallel()
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := pgcheckpointmock.PostgreSQL
	if err := cp.SetRetention(context.Background(), pgcheckpoint.Retention{}); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
		t.Fatalf("SetRetention(0): %v, want ErrInvalidOptions", err)
	}
	mock.ExpectExec(s.SetPolicy).WithArgs(int64(0), int64(0)).WillReturnResult(sqlmock.NewResult(0, 1))
	if err := cp.SetRetention(context.Background(), pgcheckpoint.Retention{MaxCheckpointsPerThread: pgcheckpoint.NoLimit}); err != nil {
		t.Fatal(err)
	}
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, 0)
	pgcheckpointmock.ExpectPut(mock, pgcheckpoint.PostgreSQL, "t", []byte(`{}`), pgcheckpointmock.Cap(pgcheckpoint.NoLimit), pgcheckpointmock.Seq(9))
	if _, err := cp.Put(context.Background(), "t", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
}

func ptr(n int) *int { return &n }
