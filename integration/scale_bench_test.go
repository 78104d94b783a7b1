package integration

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// BenchmarkScale compares put (thread at its cap) and get-latest latency on a table of 1,000,000
// checkpoints (10,000 threads x 100, 1 KiB each, writes and reads spread over random threads) with a
// table of 100 (one thread). It is a documented run, not a CI test: seeding writes over a gigabyte (about a
// minute here), so it runs only with PGCHECKPOINT_SCALE=1 (see docs/benchmarks.md):
//
//	PGCHECKPOINT_SCALE=1 go test ./integration -run '^$' -bench Scale -timeout 60m | sed -E 's/#[0-9]+//' > scale.txt
//	benchstat -col /rows scale.txt
//
// PGCHECKPOINT_SCALE_ROUNDS sets the number of interleaved rounds (default 5).
func BenchmarkScale(b *testing.B) {
	if os.Getenv("PGCHECKPOINT_SCALE") != "1" {
		b.Skip("set PGCHECKPOINT_SCALE=1 to seed 1M checkpoints and run the scale benchmark")
	}
	const threads, perThread = 10000, 100
	ctx := context.Background()
	tg := target{"pgx/postgres", "pgx", postgresDSN(b), pgcheckpoint.PostgreSQL}
	db := tg.open(b)
	schema := newSchema(b, db)
	snap := fixture(b, 1<<10)
	type table struct {
		name    string
		cp      *pgcheckpoint.Checkpointer
		threads []string
	}
	var tables []table
	for _, t := range []struct {
		name    string
		threads int
	}{{"100", 1}, {"1M", threads}} {
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema, Table: "scale_" + t.name})
		if err != nil {
			b.Fatal(err)
		}
		if err := cp.EnsureSchema(ctx); err != nil {
			b.Fatal(err)
		}
		qt := fmt.Sprintf(`"%s"."scale_%s"`, schema, t.name)
		// UUIDv7-shaped ids in time order within each thread (older than any new put), dense seq,
		// thread ids of the shape applications use.
		_, err = db.ExecContext(ctx, `WITH doc AS (SELECT $3::text::jsonb AS j)
INSERT INTO `+qt+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
SELECT 'conv-' || md5(th::text),
       substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12),
       doc.j, 2, $4, s
FROM doc, generate_series(1, $1::int) AS th, generate_series(1, $2::int) AS s,
     LATERAL (SELECT lpad(to_hex((extract(epoch FROM now())*1000)::bigint - 86400000 + s * 1000 + th % 1000), 12, '0') || '7' ||
                     lpad(to_hex(th % 4096), 3, '0') || '8' || lpad(to_hex(th::bigint * 1000 + s), 15, '0') AS h) AS x`,
			t.threads, perThread, string(snap), len(snap))
		if err != nil {
			b.Fatalf("seed %s: %v", t.name, err)
		}
		if _, err := db.ExecContext(ctx, `VACUUM ANALYZE `+qt); err != nil {
			b.Fatal(err)
		}
		ids := make([]string, t.threads)
		for i := range ids {
			ids[i] = fmt.Sprintf("conv-%x", md5.Sum([]byte(strconv.Itoa(i+1))))
		}
		tables = append(tables, table{t.name, cp, ids})
	}
	for _, t := range tables {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+schema+`"."scale_`+t.name+`" WHERE thread_id = $1`, t.threads[len(t.threads)-1]).Scan(&n); err != nil || n != perThread {
			b.Fatalf("seeded thread %s of %s holds %d rows (%v), want %d", t.threads[len(t.threads)-1], t.name, n, err, perThread)
		}
	}
	// Rounds interleave the two tables, so drifting load on the machine hits both alike. Sub-benchmark
	// names repeat (go test numbers the repeats "#01", "#02"...: strip that for benchstat).
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("PGCHECKPOINT_SCALE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	r := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < rounds; round++ {
		for _, op := range []string{"put", "get-latest"} {
			for _, t := range tables {
				b.Run("op="+op+"/rows="+t.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						thread := t.threads[r.IntN(len(t.threads))]
						var err error
						if op == "put" {
							_, err = t.cp.Put(ctx, thread, snap)
						} else {
							_, err = t.cp.Latest(ctx, thread)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
