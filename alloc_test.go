package pgcheckpoint_test

// Allocation checks of the put and get paths, against a trivial in-process driver that answers every
// statement at once: what is left is pgcheckpoint's own work plus database/sql's. Allocation counts are
// deterministic, so the assertions are exact comparisons, not timings.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// fakeConnector opens fakeConns; snapshot is what a get returns, sent records put's snapshot argument.
type fakeConnector struct {
	snapshot []byte
	sent     *[]byte
}

func (c fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn(c), nil }
func (c fakeConnector) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return nil, driver.ErrSkip }

type fakeConn fakeConnector

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return fakeTx{}, nil }

type fakeTx struct{}

func (fakeTx) Commit() error   { return nil }
func (fakeTx) Rollback() error { return nil }

// QueryContext answers the put statement (a new row numbered 101, one row trimmed) and get-latest.
func (c fakeConn) QueryContext(_ context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	switch {
	case strings.HasPrefix(query, "WITH head"):
		if c.sent != nil {
			*c.sent = args[2].Value.([]byte)
		}
		return &fakeRows{cols: []string{"new_seq", "head_id", "head_seq", "locked", "locked_seq", "unnumbered", "mine", "trimmed"},
			row: []driver.Value{int64(101), "01900000-0000-7000-8000-000000000000", int64(100), true, int64(100), false, false, int64(1)}}, nil
	case strings.HasPrefix(query, "SELECT checkpoint_id, created_at, version, size_bytes, snapshot"):
		return &fakeRows{cols: []string{"checkpoint_id", "created_at", "version", "size_bytes", "snapshot"},
			row: []driver.Value{"01900000-0000-7000-8000-000000000000", time.Unix(1, 0), int64(2), int64(len(c.snapshot)), c.snapshot}}, nil
	}
	return nil, io.ErrUnexpectedEOF
}

func (fakeConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

type fakeRows struct {
	cols []string
	row  []driver.Value
	done bool
}

func (r *fakeRows) Columns() []string { return r.cols }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	copy(dest, r.row)
	return nil
}

// snapshotOf returns a valid snapshot of about n bytes: a version and one long string.
func snapshotOf(n int) []byte {
	return []byte(`{"version":2,"messages":[{"role":"user","content":"` + strings.Repeat("x", n) + `"}]}`)
}

// TestPutAllocsIndependentOfSize: a put allocates the same number of times for a 1 KiB and a 1 MiB
// snapshot (O(1) beyond the payload), and hands the driver the caller's own bytes (no copy).
func TestPutAllocsIndependentOfSize(t *testing.T) {
	var sent []byte
	db := sql.OpenDB(fakeConnector{sent: &sent})
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pgcheckpoint.AssumeRetention(cp, pgcheckpoint.DefaultMaxCheckpointsPerThread)
	ctx := context.Background()
	allocs := map[int]float64{}
	for _, n := range []int{1 << 10, 64 << 10, 1 << 20} {
		snap := snapshotOf(n)
		if _, err := cp.Put(ctx, "thread", snap); err != nil {
			t.Fatal(err)
		}
		if &sent[0] != &snap[0] {
			t.Errorf("%d bytes: the driver got a copy of the snapshot, not the caller's bytes", n)
		}
		allocs[n] = testing.AllocsPerRun(50, func() {
			if _, err := cp.Put(ctx, "thread", snap); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("put of %d bytes: %.0f allocs", len(snap), allocs[n])
	}
	if allocs[1<<20] != allocs[1<<10] || allocs[64<<10] != allocs[1<<10] {
		t.Errorf("allocations grow with the snapshot size: %v", allocs)
	}
	// O(1): database/sql itself takes about 20 for a QueryRow and its Scan; pgcheckpoint's own share is
	// the id string, the arguments and the error-free bookkeeping.
	if allocs[1<<10] > 40 {
		t.Errorf("a put allocates %.0f times; want at most 40", allocs[1<<10])
	}
}

// TestGetReturnsDriverBytes: Get returns exactly the bytes the driver produced (no decode and re-encode,
// so also not normalised), with the same number of allocations whatever their size: database/sql's one
// copy into the caller's slice is the only per-byte work.
func TestGetReturnsDriverBytes(t *testing.T) {
	ctx := context.Background()
	allocs := map[int]float64{}
	for _, n := range []int{1 << 10, 1 << 20} {
		// Deliberately not JSONB's normal form: spaces and key order a re-encode would change.
		stored := []byte(`{"z": 1,   "version":2, "a":"` + strings.Repeat("y", n) + `"}`)
		db := sql.OpenDB(fakeConnector{snapshot: stored})
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pgcheckpoint.AssumeRetention(cp, pgcheckpoint.DefaultMaxCheckpointsPerThread)
		got, err := cp.Latest(ctx, "thread")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Snapshot, stored) {
			t.Errorf("%d bytes: Get changed the bytes the driver returned", n)
		}
		allocs[n] = testing.AllocsPerRun(50, func() {
			if _, err := cp.Latest(ctx, "thread"); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("get of %d bytes: %.0f allocs", len(stored), allocs[n])
		db.Close()
	}
	if allocs[1<<20] != allocs[1<<10] {
		t.Errorf("get allocations grow with the snapshot size: %v", allocs)
	}
}

// BenchmarkPutFakeDriver shows the Go-side cost of a put (validation, id, arguments) per size, without a
// server: go test -run '^$' -bench FakeDriver -benchmem .
func BenchmarkPutFakeDriver(b *testing.B) {
	db := sql.OpenDB(fakeConnector{})
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pgcheckpoint.AssumeRetention(cp, pgcheckpoint.DefaultMaxCheckpointsPerThread)
	for _, sz := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}} {
		snap := snapshotOf(sz.n)
		b.Run("size="+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(snap)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cp.Put(context.Background(), "thread", snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
