package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// forkSnapshotSize is the snapshot the fork is measured with: 400 KB, the size issue 15 names.
const forkSnapshotSize = 400_000

// snapshotOf returns the 1 MiB fixture cut to at most size bytes by keeping its first messages: an
// agent snapshot of the same shape and content, only shorter.
func snapshotOf(b *testing.B, size int) []byte {
	b.Helper()
	full := fixture(b, 1<<20)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(full, &doc); err != nil {
		b.Fatal(err)
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(doc["messages"], &msgs); err != nil {
		b.Fatal(err)
	}
	// The longest prefix of the messages that keeps the snapshot within size.
	lo, hi := 0, len(msgs)
	var best []byte
	for lo <= hi {
		mid := (lo + hi) / 2
		m, _ := json.Marshal(msgs[:mid])
		doc["messages"] = m
		out, err := json.Marshal(doc)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) <= size {
			best, lo = out, mid+1
		} else {
			hi = mid - 1
		}
	}
	return best
}

// walLSN reads the server's current WAL position.
func walLSN(b testing.TB, db *sql.DB) string {
	b.Helper()
	var lsn string
	if err := db.QueryRow(`SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	return lsn
}

// walSince is the WAL the server wrote since lsn, in bytes (every session's: run nothing else beside).
func walSince(b testing.TB, db *sql.DB, lsn string) float64 {
	b.Helper()
	var n float64
	if err := db.QueryRow(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, lsn).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkFork400KB measures a fork of one 400 KB checkpoint on each storage next to what a client
// without Fork does: Get the snapshot and Put it into the new thread; on full storage also next to its
// raw floor, the same INSERT ... SELECT without the checks and the lock. Each reports its WAL bytes per
// operation (pg_current_wal_lsn before and after the loop, divided by b.N). On delta storage the fork
// copies the head and the items it holds (items are keyed by thread): O(snapshot) as on full storage.
//
//	PGCHECKPOINT_TEST_DSN=... go test -run '^$' -bench BenchmarkFork400KB -benchtime 40x -count 5 ./integration
func BenchmarkFork400KB(b *testing.B) {
	snap := snapshotOf(b, forkSnapshotSize)
	for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
		for _, drv := range benchDrivers {
			b.Run("storage="+storage.String()+"/driver="+drv.name, func(b *testing.B) {
				benchFork(b, drv.name, drv.driver, storage, snap)
			})
		}
	}
}

func benchFork(b *testing.B, name, driver string, storage pgcheckpoint.Storage, snap []byte) {
	tg := target{name: name, driver: driver, dsn: postgresDSN(b), dialect: pgcheckpoint.PostgreSQL}
	db := tg.open(b)
	schema := newSchema(b, db)
	cp := tg.newCheckpointer(b, db, pgcheckpoint.Options{Schema: schema, Storage: storage})
	table := `"` + schema + `"."ziro_checkpoints"`
	ctx := context.Background()
	id, err := cp.Put(ctx, "source", snap)
	if err != nil {
		b.Fatal(err)
	}
	var stored int64
	size := `SELECT pg_column_size(snapshot) FROM ` + table + ` WHERE thread_id = 'source'`
	if storage == pgcheckpoint.StorageDelta {
		size = `SELECT (SELECT pg_column_size(snapshot) FROM ` + table[:len(table)-1] + `_heads" WHERE thread_id = 'source') +
		(SELECT sum(pg_column_size(item)) FROM ` + table[:len(table)-1] + `_items" WHERE thread_id = 'source')`
	}
	if err := db.QueryRow(size).Scan(&stored); err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot: %d bytes as JSON, %d bytes stored (%s)", len(snap), stored, storage)
	raw := `INSERT INTO ` + table + ` (thread_id, checkpoint_id, snapshot, version, size_bytes, created_at, seq)
SELECT $3, checkpoint_id, snapshot, version, size_bytes, created_at, 1 FROM ` + table + `
WHERE thread_id = $1 AND checkpoint_id = $2`
	n := 0
	systems := []struct {
		name string
		run  func(to string) error
	}{
		{"pgcheckpoint", func(to string) error {
			_, err := cp.Fork(ctx, "source", id, to, pgcheckpoint.ForkOptions{})
			return err
		}},
		{"raw", func(to string) error {
			_, err := db.ExecContext(ctx, raw, "source", id, to)
			return err
		}},
		{"client-copy", func(to string) error {
			c, err := cp.Get(ctx, "source", id)
			if err != nil {
				return err
			}
			_, err = cp.Put(ctx, to, c.Snapshot)
			return err
		}},
	}
	for _, sys := range systems {
		if sys.name == "raw" && storage == pgcheckpoint.StorageDelta {
			continue // the view takes no insert; the fork is the floor there
		}
		b.Run("system="+sys.name, func(b *testing.B) {
			lsn := walLSN(b, db)
			b.ResetTimer()
			for range b.N {
				n++
				if err := sys.run(fmt.Sprintf("to-%d", n)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(walSince(b, db, lsn)/float64(b.N), "wal-B/op")
		})
	}
}
