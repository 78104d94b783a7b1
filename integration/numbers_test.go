package integration

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// boundaryNumbers sit on either side of PostgreSQL numeric's limits, which JSONB numbers have.
var boundaryNumbers = []string{
	"1e131071", "-1e131071", "9.9e131071", "0.01e131073", "1e131072", "10e131071", "0e200000", "0e1073741822",
	"0e1073741823", "1e-16383", "-0.5e-16382", "0e-16383", "1e-16384", "1.50e-16382", "0.0e-16383",
	"1e-1073741822", "1e99999999999999999999", "-0.00e-2", "1.0e1", "100e-2",
}

// serverPrints returns the length of the JSONB text PostgreSQL prints for doc, or ok false when the
// server refuses doc with SQLSTATE 22003 (value overflows numeric format).
func serverPrints(t *testing.T, db *sql.DB, doc string) (n int, ok bool) {
	t.Helper()
	err := db.QueryRowContext(testCtx(t), `SELECT length($1::text::jsonb::text)`, doc).Scan(&n)
	if pgcheckpoint.SQLState(err) == "22003" {
		return 0, false
	}
	if err != nil {
		t.Fatalf("server: %s: %v", doc, err)
	}
	return n, true
}

// TestNumberBoundaries: defect 2. Each boundary number is either refused with ErrInvalidSnapshot before
// anything is written (exactly when the server would refuse it: before the fix, a raw 22003) or stored
// and read back fine; the size limit counts the number as the server prints it, to the byte.
func TestNumberBoundaries(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
			ctx := testCtx(t)
			for k, num := range boundaryNumbers {
				doc := `{"a":` + num + `}`
				thread := fmt.Sprintf("n%d", k)
				printed, storable := serverPrints(t, db, doc)
				_, err := cp.Put(ctx, thread, []byte(doc))
				if !storable {
					if !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) || pgcheckpoint.SQLState(err) != "" {
						t.Errorf("%s: Put err = %v, want ErrInvalidSnapshot before anything is sent", num, err)
					}
					if n := count(t, db, `"`+schema+`".ziro_checkpoints`, thread); n != 0 {
						t.Errorf("%s: %d rows written", num, n)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: Put: %v, the server stores it", num, err)
					continue
				}
				got, err := cp.Latest(ctx, thread)
				if err != nil || len(got.Snapshot) != printed {
					t.Errorf("%s: Get = %d bytes, %v; the server prints %d", num, len(got.Snapshot), err, printed)
				}
				// The limit counts the snapshot as printed, less JSONB's space after the colon.
				exact := max(printed-1, len(doc))
				for _, limit := range []int{exact, exact - 1} {
					c := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxSnapshotBytes: limit})
					_, err := c.Put(ctx, thread+"-limit", []byte(doc))
					if want := limit == exact; (err == nil) != want || (err != nil && !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge)) {
						t.Errorf("%s at MaxSnapshotBytes %d (printed %d): err = %v", num, limit, printed, err)
					}
				}
			}
		})
	}
}

// TestPoisonNumbersRefused: defect 2. 8,200 copies of 1e131071 are 74 KB as sent and 1 GiB as the server
// prints them: stored, every read of the thread failed with out of memory (54000) after seconds. They
// are refused with ErrSnapshotTooLarge before anything is sent, also with no size limit, and the
// thread's earlier checkpoint stays readable.
func TestPoisonNumbersRefused(t *testing.T) {
	poison := []byte(`{"a":[` + strings.Repeat(`1e131071,`, 8199) + `1e131071]}`)
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			for _, limit := range []int{0, pgcheckpoint.NoLimit} {
				cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{MaxSnapshotBytes: limit})
				ctx := testCtx(t)
				first, err := cp.Put(ctx, "t", []byte(`{"version":1}`))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cp.Put(ctx, "t", poison); !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge) {
					t.Errorf("limit %d: Put err = %v, want ErrSnapshotTooLarge", limit, err)
				}
				if got, err := cp.Latest(ctx, "t"); err != nil || got.ID != first {
					t.Errorf("limit %d: Get = %s, %v; want the first checkpoint %s", limit, got.ID, err, first)
				}
			}
		})
	}
}
