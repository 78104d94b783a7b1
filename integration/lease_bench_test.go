package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// BenchmarkLeasePut measures a put through a lease next to a plain put and the raw INSERT floor, one
// writer, 1 KiB snapshots, cap 100, for each storage and driver. The lease put is one transaction around
// a put: BEGIN, the lease check (a locking read of the lease row), the put statement, COMMIT. On a delta
// table there is no raw INSERT (the view takes none); every put there stores the same snapshot, so it
// writes a head and no new items (its arrays are the head's before).
//
// The systems run interleaved, one of each per iteration, and each reports its median (raw-ms/op,
// put-ms/op, lease-put-ms/op); ns/op is the sum of them.
//
//	PGCHECKPOINT_TEST_DSN=... go test -run '^$' -bench BenchmarkLeasePut -benchtime 600x -count 5 ./integration
func BenchmarkLeasePut(b *testing.B) {
	snap := fixture(b, 1<<10)
	for _, storage := range []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta} {
		for _, drv := range benchDrivers {
			b.Run("storage="+storage.String()+"/driver="+drv.name, func(b *testing.B) {
				benchLeasePut(b, drv.name, drv.driver, storage, snap)
			})
		}
	}
}

func benchLeasePut(b *testing.B, name, driver string, storage pgcheckpoint.Storage, snap []byte) {
	tg := target{name: name, driver: driver, dsn: postgresDSN(b), dialect: pgcheckpoint.PostgreSQL, storage: storage}
	db := tg.open(b)
	schema := newSchema(b, db)
	cp := tg.newCheckpointer(b, db, pgcheckpoint.Options{Schema: schema, Storage: storage})
	ctx := context.Background()
	if err := cp.EnsureLeaseSchema(ctx); err != nil {
		b.Fatal(err)
	}
	lease, err := cp.Acquire(ctx, "leased", "bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	raw := fmt.Sprintf(`INSERT INTO "%s"."ziro_checkpoints" (thread_id, checkpoint_id, snapshot, version, size_bytes)
VALUES ($1, gen_random_uuid()::text, $2::text::jsonb, 2, $3)`, schema)
	systems := []struct {
		name string
		run  func() error
	}{
		{"raw", func() error { _, err := db.ExecContext(ctx, raw, "raw", string(snap), len(snap)); return err }},
		{"put", func() error { _, err := cp.Put(ctx, "plain", snap); return err }},
		{"lease-put", func() error { _, err := lease.Put(ctx, snap); return err }},
	}
	if storage == pgcheckpoint.StorageDelta {
		systems = systems[1:] // the view takes no insert
	}
	// Interleaved: each iteration runs all of them in turn, so the machine's load meets them alike;
	// each reports its median.
	took := make([][]time.Duration, len(systems))
	b.ResetTimer()
	for range b.N {
		for i, sys := range systems {
			start := time.Now()
			if err := sys.run(); err != nil {
				b.Fatal(err)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	b.StopTimer()
	for i, sys := range systems {
		slices.Sort(took[i])
		b.ReportMetric(float64(took[i][len(took[i])/2].Microseconds())/1000, sys.name+"-ms/op")
	}
}
