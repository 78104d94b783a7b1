package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/testdata/fixtures"
)

// BenchmarkLeasePut measures a put through a lease next to a plain put and the raw INSERT floor, one
// writer, 1 KiB snapshots, cap 100, for each driver. The lease put is one transaction more than a put:
// BEGIN, the lease check (a locking read of the lease row), the put's check of the transaction's
// isolation level, the put statement, COMMIT.
//
//	PGCHECKPOINT_TEST_DSN=... go test -run '^$' -bench BenchmarkLeasePut -benchtime 2s -count 5 ./integration
func BenchmarkLeasePut(b *testing.B) {
	snap, err := fixtures.Snapshot(1 << 10)
	if err != nil {
		b.Fatal(err)
	}
	for _, drv := range benchDrivers {
		b.Run("driver="+drv.name, func(b *testing.B) {
			tg := target{name: drv.name, driver: drv.driver, dsn: postgresDSN(b), dialect: pgcheckpoint.PostgreSQL}
			db := tg.open(b)
			schema := newSchema(b, db)
			cp := tg.newCheckpointer(b, db, pgcheckpoint.Options{Schema: schema})
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
			for _, sys := range []struct {
				name string
				run  func() error
			}{
				{"raw", func() error { _, err := db.ExecContext(ctx, raw, "raw", string(snap), len(snap)); return err }},
				{"put", func() error { _, err := cp.Put(ctx, "plain", snap); return err }},
				{"lease-put", func() error { _, err := lease.Put(ctx, snap); return err }},
			} {
				b.Run("system="+sys.name, func(b *testing.B) {
					for range b.N {
						if err := sys.run(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
