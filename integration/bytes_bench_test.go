package integration

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ziroagent/pgcheckpoint"
)

// BenchmarkPutByteBudget measures a put under a byte budget next to a put under the count cap and a put
// without retention, in the same run: one writer, 1 KiB snapshots, each policy on a table of its own
// whose thread is seeded to its steady state (100 rows, so every retained put also trims one row): no
// retention (the thread grows), cap 100, a budget of 100 snapshots' bytes, and both (cap 100 and the
// budget). For each driver and dialect (the CockroachDB dialect's insert and trim, two statements in
// one transaction, run on PostgreSQL). The four run interleaved, one of each per iteration, and each
// reports its median (none-ms/op, cap-ms/op, bytes-ms/op, cap+bytes-ms/op); ns/op is their sum.
//
//	PGCHECKPOINT_TEST_DSN=... go test -run '^$' -bench BenchmarkPutByteBudget -benchtime 400x -count 5 ./integration
func BenchmarkPutByteBudget(b *testing.B) {
	snap := fixture(b, 1<<10)
	const rows = 100
	budget := int64(rows * len(snap))
	for _, drv := range benchDrivers {
		for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
			b.Run(fmt.Sprintf("driver=%s/dialect=%s", drv.name, d.Name()), func(b *testing.B) {
				tg := target{name: drv.name, driver: drv.driver, dsn: postgresDSN(b), dialect: d}
				db := tg.open(b)
				schema := newSchema(b, db)
				ctx := context.Background()
				policies := []struct {
					name   string
					cap    int
					budget int64
				}{{"none", pgcheckpoint.NoLimit, 0}, {"cap", rows, 0}, {"bytes", pgcheckpoint.NoLimit, budget}, {"cap+bytes", rows, budget}}
				runs := make([]func() error, len(policies))
				for i, p := range policies {
					table := "cp_" + []string{"none", "cap", "bytes", "both"}[i]
					cp := tg.newCheckpointer(b, db, pgcheckpoint.Options{Schema: schema, Table: table, MaxCheckpointsPerThread: p.cap, MaxBytesPerThread: p.budget})
					seedTotals(b, db, `"`+schema+`"."`+table+`"`, "t", rows, snap)
					runs[i] = func() error { _, err := cp.Put(ctx, "t", snap); return err }
				}
				took := make([][]time.Duration, len(policies))
				b.ResetTimer()
				for range b.N {
					for i, run := range runs {
						start := time.Now()
						if err := run(); err != nil {
							b.Fatal(err)
						}
						took[i] = append(took[i], time.Since(start))
					}
				}
				b.StopTimer()
				for i, p := range policies {
					slices.Sort(took[i])
					b.ReportMetric(float64(took[i][len(took[i])/2].Microseconds())/1000, p.name+"-ms/op")
				}
			})
		}
	}
}

// seedTotals fills thread of table with n rows of snapshot, numbered 1..n with their running totals, with
// UUIDv7 ids older than any a put will make.
func seedTotals(b *testing.B, db *sql.DB, table, thread string, n int, snapshot []byte) {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	_, err := db.Exec(`INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, total_bytes)
SELECT $1, u.id, $2::text::jsonb, 2, $3::int, u.n, u.n * $3::int FROM unnest(string_to_array($4, ',')) WITH ORDINALITY AS u(id, n)`,
		thread, string(snapshot), len(snapshot), strings.Join(ids, ","))
	if err != nil {
		b.Fatalf("seed %s: %v", table, err)
	}
}
