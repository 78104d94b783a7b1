package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/ziroagent/pgcheckpoint"
)

// The benchmarks compare each operation with its raw floor: the same row written or read with one plain
// statement through the same driver and the same pool, on a scratch table with identical columns
// (compression included). Sibling names differ only in system=pgcheckpoint / system=raw, so
// `benchstat -col /system` shows the ratio; docs/benchmarks.md has the method and the figures.
//
// They need the server: without PGCHECKPOINT_TEST_DSN they skip.

// benchConns bounds every benchmark pool: 8 workers need 8 connections, and nothing else runs beside a
// benchmark run.
const benchConns = 8

// benchWorkers is the number of concurrent writers (each on its own thread) of the parallel variants.
const benchWorkers = 8

var benchDrivers = []struct{ name, driver string }{{"pgx", "pgx"}, {"pq", "postgres"}}

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// benchEnv is one driver's pool with a checkpointer table and its raw twins, in a schema of its own that
// is dropped when the top-level benchmark ends.
type benchEnv struct {
	db     *sql.DB
	schema string
	mu     sync.Mutex
	cps    map[int]*pgcheckpoint.Checkpointer // by cap
	pcps   map[int]*pgcheckpoint.Checkpointer // by cap, on prepared
	prep   *pgcheckpoint.PreparedDB
	table  string // the checkpointer's table, quoted
	raw    string // same columns and compression (lz4), primary key only
	pglz   string // same, with the default pglz compression
	seeded map[string]bool
}

func newBenchEnv(b *testing.B, driver string) *benchEnv {
	b.Helper()
	dsn := postgresDSN(b)
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(benchConns)
	db.SetMaxIdleConns(benchConns)
	b.Cleanup(func() { db.Close() })
	var e *benchEnv
	b.Cleanup(func() { e.prep.Close() })
	e = &benchEnv{db: db, schema: newSchema(b, db), cps: map[int]*pgcheckpoint.Checkpointer{}, pcps: map[int]*pgcheckpoint.Checkpointer{}, prep: pgcheckpoint.Prepared(db), seeded: map[string]bool{}}
	e.checkpointer(b, pgcheckpoint.DefaultMaxCheckpointsPerThread)
	q := func(name string) string { return `"` + e.schema + `".` + name }
	e.table, e.raw, e.pglz = q("ziro_checkpoints"), q("raw_lz4"), q("raw_pglz")
	for _, s := range []string{
		`CREATE TABLE ` + e.raw + ` (LIKE ` + e.table + ` INCLUDING DEFAULTS INCLUDING COMPRESSION, PRIMARY KEY (thread_id, checkpoint_id))`,
		`CREATE TABLE ` + e.pglz + ` (LIKE ` + e.table + ` INCLUDING DEFAULTS, PRIMARY KEY (thread_id, checkpoint_id))`,
		`ALTER TABLE ` + e.pglz + ` ALTER COLUMN snapshot SET COMPRESSION pglz`,
	} {
		if _, err := db.Exec(s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
	var lz4 string
	if err := db.QueryRow(`SELECT attcompression FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'snapshot'`, e.raw).Scan(&lz4); err != nil || lz4 != "l" {
		b.Fatalf("raw table compression %q (%v), want lz4 like the checkpointer's", lz4, err)
	}
	return e
}

// checkpointer returns the env's Checkpointer with the given cap (one table per cap).
func (e *benchEnv) checkpointer(b *testing.B, cap int) *pgcheckpoint.Checkpointer {
	return e.newCheckpointer(b, cap, false)
}

// newCheckpointer returns the env's Checkpointer with the given cap, on the *sql.DB or on the
// PreparedDB over it.
func (e *benchEnv) newCheckpointer(b *testing.B, cap int, prepared bool) *pgcheckpoint.Checkpointer {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, db := e.cps, pgcheckpoint.DBTX(e.db)
	if prepared {
		m, db = e.pcps, e.prep
	}
	if cp, ok := m[cap]; ok {
		return cp
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: e.schema, Table: tableName(cap), MaxCheckpointsPerThread: cap})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if err := cp.EnsureSchema(context.Background()); err != nil { // a table per cap: a table keeps one policy
		b.Fatalf("EnsureSchema: %v", err)
	}
	m[cap] = cp
	return cp
}

// tableName is the table of the Checkpointers with a cap: ziro_checkpoints for 100, else one of its own
// (a table has one retention policy).
func tableName(cap int) string {
	if cap == pgcheckpoint.DefaultMaxCheckpointsPerThread {
		return pgcheckpoint.DefaultTable
	}
	return fmt.Sprintf("%s_cap%d", pgcheckpoint.DefaultTable, cap)
}

// tableOf is the quoted table of the Checkpointers with a cap.
func (e *benchEnv) tableOf(cap int) string { return `"` + e.schema + `"."` + tableName(cap) + `"` }

// systems are the two ways of using the Checkpointer that are measured against the raw floor: on the
// *sql.DB, and on a PreparedDB over it.
var systems = []struct {
	name     string
	prepared bool
}{{"pgcheckpoint", false}, {"pgcheckpoint-prepared", true}}

// seed fills thread of table with n rows of snapshot, numbered 1..n, with UUIDv7 ids older than any a
// put will make, once per table and thread.
func (e *benchEnv) seed(b *testing.B, table, thread string, n int, snapshot []byte) {
	b.Helper()
	key := table + "\x00" + thread
	if e.seeded[key] {
		return
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	_, err := e.db.Exec(`INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
SELECT $1, u.id, $2::text::jsonb, 2, $3, u.n FROM unnest(string_to_array($4, ',')) WITH ORDINALITY AS u(id, n)`,
		thread, string(snapshot), len(snapshot), strings.Join(ids, ","))
	if err != nil {
		b.Fatalf("seed %s: %v", thread, err)
	}
	e.seeded[key] = true
}

// fixture returns the benchmark snapshot of exactly size bytes (1 KiB, 64 KiB or 1 MiB) from
// ../testdata/fixtures, the deterministic agent snapshots the design's peer figures were measured with.
func fixture(b testing.TB, size int) []byte {
	b.Helper()
	name := map[int]string{1 << 10: "1KiB", 64 << 10: "64KiB", 1 << 20: "1MiB"}[size]
	s, err := os.ReadFile("../testdata/fixtures/snapshot-" + name + ".json")
	if err != nil || len(s) != size {
		b.Fatalf("fixture of %d bytes: %d bytes, %v", size, len(s), err)
	}
	return s
}

// forEachDriver runs f for pgx and pq, each on an env of its own.
func forEachDriver(b *testing.B, f func(b *testing.B, e *benchEnv)) {
	for _, d := range benchDrivers {
		b.Run("driver="+d.name, func(b *testing.B) { f(b, newBenchEnv(b, d.driver)) })
	}
}

// rawInsert is the floor of a put: one plain INSERT of the same row.
func rawInsert(ctx context.Context, db *sql.DB, table, thread string, snapshot []byte) error {
	_, err := db.ExecContext(ctx, `INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes) VALUES ($1, $2, $3, $4, $5)`,
		thread, uuid.Must(uuid.NewV7()).String(), snapshot, int32(2), int32(len(snapshot)))
	return err
}

// BenchmarkPut: one writer putting to a thread at its cap (every put also trims one row), against a
// plain INSERT; at 1 MiB also against a plain INSERT into a pglz column (the default compression).
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	forEachDriver(b, func(b *testing.B, e *benchEnv) {
		for _, sz := range benchSizes {
			snap := fixture(b, sz.size)
			caps := []int{100, 1000}
			if sz.size == 1<<20 {
				caps = []int{100}
			}
			for _, cap := range caps {
				for _, sys := range systems {
					b.Run(fmt.Sprintf("size=%s/cap=%d/system=%s", sz.name, cap, sys.name), func(b *testing.B) {
						cp := e.newCheckpointer(b, cap, sys.prepared)
						thread := fmt.Sprintf("put-%s-%d-%s", sz.name, cap, sys.name)
						e.seed(b, e.tableOf(cap), thread, cap, snap)
						b.SetBytes(int64(len(snap)))
						b.ReportAllocs()
						b.ResetTimer()
						for b.Loop() {
							if _, err := cp.Put(ctx, thread, snap); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
				b.Run(fmt.Sprintf("size=%s/cap=%d/system=raw", sz.name, cap), func(b *testing.B) {
					thread := fmt.Sprintf("put-%s-%d", sz.name, cap)
					e.seed(b, e.raw, thread, cap, snap)
					b.SetBytes(int64(len(snap)))
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if err := rawInsert(ctx, e.db, e.raw, thread, snap); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			if sz.size == 1<<20 {
				b.Run(fmt.Sprintf("size=%s/cap=100/system=raw-pglz", sz.name), func(b *testing.B) {
					thread := "put-pglz"
					b.SetBytes(int64(len(snap)))
					b.ReportAllocs()
					for b.Loop() {
						if err := rawInsert(ctx, e.db, e.pglz, thread, snap); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	})
}

// parallelism makes b.RunParallel start benchWorkers goroutines whatever GOMAXPROCS is.
func parallelism() int {
	p := runtime.GOMAXPROCS(0)
	return (benchWorkers + p - 1) / p
}

// BenchmarkPutParallel: 8 writers, each putting to a thread of its own at its cap (100), against 8
// writers doing plain INSERTs.
func BenchmarkPutParallel(b *testing.B) {
	ctx := context.Background()
	forEachDriver(b, func(b *testing.B, e *benchEnv) {
		for _, sz := range benchSizes[:2] {
			snap := fixture(b, sz.size)
			run := func(b *testing.B, table, sys string, put func(thread string) error) {
				threads := make([]string, benchWorkers)
				for i := range threads {
					threads[i] = fmt.Sprintf("par-%s-%s-%d", sz.name, sys, i)
					e.seed(b, table, threads[i], 100, snap)
				}
				var next atomic.Int64
				b.SetBytes(int64(len(snap)))
				b.ReportAllocs()
				b.SetParallelism(parallelism())
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					thread := threads[int(next.Add(1)-1)%benchWorkers]
					for pb.Next() {
						if err := put(thread); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			for _, sys := range systems {
				b.Run(fmt.Sprintf("size=%s/workers=%d/system=%s", sz.name, benchWorkers, sys.name), func(b *testing.B) {
					cp := e.newCheckpointer(b, 100, sys.prepared)
					run(b, e.table, sys.name, func(thread string) error { _, err := cp.Put(ctx, thread, snap); return err })
				})
			}
			b.Run(fmt.Sprintf("size=%s/workers=%d/system=raw", sz.name, benchWorkers), func(b *testing.B) {
				run(b, e.raw, "raw", func(thread string) error { return rawInsert(ctx, e.db, e.raw, thread, snap) })
			})
		}
	})
}

// rawGetLatest is the floor of Get(thread, ""): one plain SELECT of the newest row, scanned like Get.
func rawGetLatest(ctx context.Context, db *sql.DB, table, thread string) ([]byte, error) {
	var (
		id        string
		created   sql.NullTime
		ver, size int32
		snapshot  []byte
	)
	err := db.QueryRowContext(ctx, `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM `+table+`
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`, thread).Scan(&id, &created, &ver, &size, &snapshot)
	return snapshot, err
}

// BenchmarkGetLatest: the newest checkpoint of a thread of 100, against the plain SELECT.
func BenchmarkGetLatest(b *testing.B) {
	ctx := context.Background()
	forEachDriver(b, func(b *testing.B, e *benchEnv) {
		for _, sz := range benchSizes {
			snap := fixture(b, sz.size)
			thread := "get-" + sz.name
			for _, workers := range []int{1, benchWorkers} {
				name := fmt.Sprintf("size=%s", sz.name)
				if workers > 1 {
					name += fmt.Sprintf("/workers=%d", workers)
				}
				for _, sys := range systems {
					b.Run(name+"/system="+sys.name, func(b *testing.B) {
						cp := e.newCheckpointer(b, 100, sys.prepared)
						e.seed(b, e.table, thread, 100, snap)
						loop(b, workers, int64(len(snap)), func() error {
							c, err := cp.Latest(ctx, thread)
							if err == nil && len(c.Snapshot) == 0 {
								err = fmt.Errorf("empty snapshot")
							}
							return err
						})
					})
				}
				b.Run(name+"/system=raw", func(b *testing.B) {
					e.seed(b, e.raw, thread, 100, snap)
					loop(b, workers, int64(len(snap)), func() error {
						s, err := rawGetLatest(ctx, e.db, e.raw, thread)
						if err == nil && len(s) == 0 {
							err = fmt.Errorf("empty snapshot")
						}
						return err
					})
				})
			}
		}
	})
}

// listRow is what List scans per row.
type listRow struct {
	id        string
	created   sql.NullTime
	ver, size int32
}

// rawList10 is the floor of List(limit 10): the plain 10-row metadata SELECT, scanned like List.
func rawList10(ctx context.Context, db *sql.DB, table, thread string) ([]listRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT checkpoint_id, created_at, version, size_bytes FROM `+table+`
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2`, thread, 10)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]listRow, 0, 10)
	for rows.Next() {
		var r listRow
		if err := rows.Scan(&r.id, &r.created, &r.ver, &r.size); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// BenchmarkList10: the 10 newest checkpoints' metadata of a thread of 100, against the plain SELECT.
func BenchmarkList10(b *testing.B) {
	ctx := context.Background()
	forEachDriver(b, func(b *testing.B, e *benchEnv) {
		for _, sz := range benchSizes {
			snap := fixture(b, sz.size)
			thread := "list-" + sz.name
			for _, workers := range []int{1, benchWorkers} {
				name := fmt.Sprintf("size=%s", sz.name)
				if workers > 1 {
					name += fmt.Sprintf("/workers=%d", workers)
				}
				for _, sys := range systems {
					b.Run(name+"/system="+sys.name, func(b *testing.B) {
						cp := e.newCheckpointer(b, 100, sys.prepared)
						e.seed(b, e.table, thread, 100, snap)
						loop(b, workers, 0, func() error {
							l, err := cp.List(ctx, thread, pgcheckpoint.ListOptions{Limit: 10})
							if err == nil && len(l) != 10 {
								err = fmt.Errorf("listed %d", len(l))
							}
							return err
						})
					})
				}
				b.Run(name+"/system=raw", func(b *testing.B) {
					e.seed(b, e.raw, thread, 100, snap)
					loop(b, workers, 0, func() error {
						l, err := rawList10(ctx, e.db, e.raw, thread)
						if err == nil && len(l) != 10 {
							err = fmt.Errorf("listed %d", len(l))
						}
						return err
					})
				})
			}
		}
	})
}

// loop runs op b.N times, on one goroutine or on workers goroutines.
func loop(b *testing.B, workers int, bytes int64, op func() error) {
	b.SetBytes(bytes)
	b.ReportAllocs()
	if workers <= 1 {
		b.ResetTimer()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(parallelism())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRetentionRead: what reading the table's retention policy costs a put. cached is every put of
// a long-lived Checkpointer (the policy is read once a minute); fresh is the worst case, a new
// Checkpointer per put, so that every put reads the policy first (two small queries).
func BenchmarkRetentionRead(b *testing.B) {
	ctx := context.Background()
	snap := []byte(`{"version": 2, "step": 1}`)
	forEachDriver(b, func(b *testing.B, e *benchEnv) {
		b.Run("policy=cached", func(b *testing.B) {
			cp := e.checkpointer(b, pgcheckpoint.DefaultMaxCheckpointsPerThread)
			for b.Loop() {
				if _, err := cp.Put(ctx, "retention-cached", snap); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("policy=fresh", func(b *testing.B) {
			for b.Loop() {
				cp, err := pgcheckpoint.New(e.db, pgcheckpoint.Options{Schema: e.schema})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cp.Put(ctx, "retention-fresh", snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
