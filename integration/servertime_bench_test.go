package integration

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// BenchmarkServerTime measures what a put costs the server, apart from the round trip and the commit's
// WAL flush that dominate its wall-clock time: on a private cluster with pg_stat_statements (planning
// tracked too), it runs puts to a thread at its cap (every put trims one row) and plain INSERTs into a
// table with the same columns, then reports each statement's mean planning + execution time as
// server-us/op. pgx, 1 KiB, cap 100. Run it with
//
//	go test -C integration . -run '^$' -bench ServerTime -benchtime 2000x -count 5
func BenchmarkServerTime(b *testing.B) {
	c := startPrivateClusterWith(b, "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on")
	db, err := sql.Open("pgx", c.dsn(postgresDSN(b)))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	b.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		b.Fatal(err)
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{MaxCheckpointsPerThread: 100})
	if err != nil {
		b.Fatal(err)
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		b.Fatal(err)
	}
	const table, raw = `"public"."ziro_checkpoints"`, `"public"."raw_lz4"`
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+raw+` (LIKE `+table+` INCLUDING DEFAULTS INCLUDING COMPRESSION, PRIMARY KEY (thread_id, checkpoint_id))`); err != nil {
		b.Fatal(err)
	}
	snap := fixture(b, 1<<10)
	e := &benchEnv{db: db, seeded: map[string]bool{}}
	e.seed(b, table, "server-time", 100, snap)

	measure := func(b *testing.B, like string, op func() error) {
		if _, err := db.ExecContext(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		var calls int64
		var plan, exec float64
		err := db.QueryRowContext(ctx, `SELECT coalesce(sum(calls), 0), coalesce(sum(total_plan_time), 0), coalesce(sum(total_exec_time), 0)
			FROM pg_stat_statements WHERE query LIKE $1`, like).Scan(&calls, &plan, &exec)
		if err != nil {
			b.Fatal(err)
		}
		if calls < int64(b.N) {
			b.Fatalf("pg_stat_statements saw %d calls matching %q, want at least %d", calls, like, b.N)
		}
		b.ReportMetric((plan+exec)*1000/float64(b.N), "server-us/op")
		b.ReportMetric(exec*1000/float64(b.N), "exec-us/op")
	}
	b.Run("system=pgcheckpoint", func(b *testing.B) {
		measure(b, "WITH head AS%", func() error {
			_, err := cp.Put(ctx, "server-time", snap)
			return err
		})
	})
	b.Run("system=raw", func(b *testing.B) {
		n := 0
		measure(b, "INSERT INTO "+raw+"%", func() error {
			n++
			return rawInsert(ctx, db, raw, fmt.Sprintf("raw-%d", n%100), snap)
		})
	})
}
