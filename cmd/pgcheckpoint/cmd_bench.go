package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/testdata/fixtures"
)

// benchRounds is how many slices each measurement is cut into; the checkpointer and the raw floor take
// turns (ABBA order), so drift of the machine (other load, autovacuum, cache) hits both alike.
const benchRounds = 4

// benchListLimit is the page size of the list op, for both systems.
const benchListLimit = 10

// benchResult is one line of `bench --json`.
type benchResult struct {
	System    string  `json:"system"`
	Driver    string  `json:"driver"`
	Op        string  `json:"op"`
	SizeBytes int     `json:"size_bytes"`
	Workers   int     `json:"workers"`
	Ops       int     `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerS   float64 `json:"ops_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// cmdBench measures put/get/list of the checkpointer next to plain SQL on a table with the same columns.
func cmdBench(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "bench")
	sizesFlag := f.String("sizes", "1KiB,64KiB", "snapshot sizes: 1KiB, 64KiB, 1MiB (the fixtures)")
	workersFlag := f.String("workers", "1,8", "concurrent workers, each on its own thread")
	duration := f.Duration("duration", 3*time.Second, "measuring time of each system for each size, worker count and op")
	asJSON := f.Bool("json", false, "one JSON object per line")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		return err
	}
	workers, err := parseInts("--workers", *workersFlag, 1, 64)
	if err != nil {
		return err
	}
	if *duration <= 0 {
		return usageErrorf("bench: --duration must be positive, got %s", *duration)
	}
	maxWorkers := workers[0]
	for _, w := range workers {
		maxWorkers = max(maxWorkers, w)
	}
	s, err := f.conn.connect(ctx, maxWorkers+2)
	if err != nil {
		return err
	}
	defer s.Close()
	b, err := newBench(ctx, s, f.conn)
	if err != nil {
		return err
	}
	defer b.drop(ctx)
	measured := 0
	// interrupted ends the run on SIGINT/SIGTERM: the rows measured so far are printed, the scratch
	// tables dropped (deferred), and one line says so (exit 130).
	interrupted := func(t *table, err error) error {
		if isTerminal(e.stderr) {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
		if t != nil {
			_ = t.flush()
		}
		b.drop(ctx)
		return interruptedf(err, "bench: interrupted after %d of %d measurements; the scratch tables are dropped",
			measured, len(sizes)*len(workers)*3)
	}
	if !*asJSON {
		fmt.Fprintf(e.stdout, "bench: %s via %s at %s, retention cap %d, %s per system and measurement\n",
			s.dialect.Name(), s.driver, s.target, capOf(f.conn.maxPerThread), *duration)
		fmt.Fprintf(e.stdout, "raw: plain INSERT / latest SELECT / %d-row metadata SELECT on a table with the same columns\n\n", benchListLimit)
	}
	tty := isTerminal(e.stderr)
	total, done := len(sizes)*len(workers)*3, 0
	var t *table
	if !*asJSON {
		t = newTable(e.stdout, "SIZE", "WORKERS", "OP", "PGCHECKPOINT OPS/S", "P50", "P99", "RAW OPS/S", "P50", "P99", "RATIO")
	}
	for _, size := range sizes {
		payload, err := fixtures.Snapshot(size)
		if err != nil {
			return usageErrorf("bench: %v", err)
		}
		if err := b.seed(ctx, size, maxWorkers, payload); err != nil {
			if ctx.Err() != nil {
				return interrupted(t, err)
			}
			return err
		}
		for _, w := range workers {
			for _, op := range []string{"put", "get", "list"} {
				if tty {
					done++
					fmt.Fprintf(e.stderr, "\rbench: %s, %d workers, %s (%d/%d)...\033[K", size64(size), w, op, done, total)
				}
				cp, raw, err := b.measure(ctx, op, size, w, payload, *duration)
				if err != nil {
					if ctx.Err() != nil {
						return interrupted(t, err)
					}
					return err
				}
				measured++
				if *asJSON {
					enc := json.NewEncoder(e.stdout)
					if err := enc.Encode(cp); err != nil {
						return err
					}
					if err := enc.Encode(raw); err != nil {
						return err
					}
					continue
				}
				ratio := "-"
				if raw.OpsPerS > 0 {
					ratio = fmt.Sprintf("%.2fx", cp.OpsPerS/raw.OpsPerS)
				}
				t.row(size64(size), strconv.Itoa(w), op, fmt.Sprintf("%.0f", cp.OpsPerS), ms(cp.P50Ms), ms(cp.P99Ms),
					fmt.Sprintf("%.0f", raw.OpsPerS), ms(raw.P50Ms), ms(raw.P99Ms), ratio)
			}
		}
	}
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if t != nil {
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "\nratio: pgcheckpoint ops/s divided by raw ops/s (1.00x = as fast as the plain statement)")
	}
	return nil
}

// bench holds the scratch tables: the checkpointer's and the raw one beside it.
type bench struct {
	s        *session
	cp       *pgcheckpoint.Checkpointer
	raw      string // quoted, schema-qualified raw table
	cpTable  string // quoted, schema-qualified checkpointer table
	policy   string // quoted, schema-qualified retention policy table of cpTable
	driver   string
	putSQL   string
	getSQL   string
	listSQL  string
	dropOnce sync.Once
}

func newBench(ctx context.Context, s *session, cf connFlags) (*bench, error) {
	name := "pgcheckpoint_bench_" + randomHex(4)
	opts := cf.options(s.dialect)
	opts.Table = name
	cp, err := pgcheckpoint.New(s.db, opts)
	if err != nil {
		return nil, err
	}
	q := func(id string) string { return `"` + id + `"` }
	b := &bench{s: s, cp: cp, driver: s.driver,
		cpTable: q(cf.schema) + "." + q(name), policy: q(cf.schema) + "." + q(name+"_policy"), raw: q(cf.schema) + "." + q(name+"_raw")}
	if err := cp.EnsureSchema(ctx); err != nil {
		b.drop(ctx)
		return nil, err
	}
	// The same column definitions, compression included (PostgreSQL 14+), and the same primary key;
	// not the checkpointer's extra (thread_id, seq) index: the floor is the plain statement.
	like := `CREATE TABLE ` + b.raw + ` (LIKE ` + b.cpTable + ` INCLUDING DEFAULTS %s, PRIMARY KEY (thread_id, checkpoint_id))`
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(like, "INCLUDING COMPRESSION")); err != nil {
		if _, err2 := s.db.ExecContext(ctx, fmt.Sprintf(like, "")); err2 != nil {
			b.drop(ctx)
			return nil, fmt.Errorf("bench: create the raw table: %w", err)
		}
	}
	b.putSQL = `INSERT INTO ` + b.raw + ` (thread_id, checkpoint_id, snapshot, version, size_bytes) VALUES ($1, $2, $3::text::jsonb, $4, $5)`
	b.getSQL = `SELECT checkpoint_id, created_at, version, size_bytes, snapshot FROM ` + b.raw + `
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT 1`
	b.listSQL = `SELECT checkpoint_id, created_at, version, size_bytes FROM ` + b.raw + `
WHERE thread_id = $1 ORDER BY checkpoint_id DESC LIMIT $2`
	return b, nil
}

// drop removes the scratch tables (the raw one, the checkpoint table and its policy), also after an
// interrupt.
func (b *bench) drop(ctx context.Context) {
	b.dropOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = b.s.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+b.raw+`, `+b.cpTable+`, `+b.policy)
	})
}

func benchThread(size, worker int) string { return fmt.Sprintf("bench-%d-%d", size, worker) }

// seed gives every worker's thread enough rows in both tables for get and list to read.
func (b *bench) seed(ctx context.Context, size, workers int, payload []byte) error {
	for w := 0; w < workers; w++ {
		for i := 0; i < benchListLimit; i++ {
			if err := b.op(ctx, "pgcheckpoint", "put", benchThread(size, w), payload); err != nil {
				return err
			}
			if err := b.op(ctx, "raw", "put", benchThread(size, w), payload); err != nil {
				return err
			}
		}
	}
	return nil
}

// op runs one operation of one system.
func (b *bench) op(ctx context.Context, system, op, thread string, payload []byte) error {
	switch system + "/" + op {
	case "pgcheckpoint/put":
		_, err := b.cp.Put(ctx, thread, payload)
		return err
	case "pgcheckpoint/get":
		_, err := b.cp.Latest(ctx, thread)
		return err
	case "pgcheckpoint/list":
		_, err := b.cp.List(ctx, thread, pgcheckpoint.ListOptions{Limit: benchListLimit})
		return err
	case "raw/put":
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		_, err = b.s.db.ExecContext(ctx, b.putSQL, thread, id.String(), payload, 2, len(payload))
		return err
	case "raw/get":
		var (
			id, snap   []byte
			created    time.Time
			ver, bytes int32
		)
		return b.s.db.QueryRowContext(ctx, b.getSQL, thread).Scan(&id, &created, &ver, &bytes, &snap)
	case "raw/list":
		rows, err := b.s.db.QueryContext(ctx, b.listSQL, thread, benchListLimit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id         string
				created    time.Time
				ver, bytes int32
			)
			if err := rows.Scan(&id, &created, &ver, &bytes); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	return fmt.Errorf("bench: unknown op %s/%s", system, op)
}

// measure runs op for both systems in alternating slices and returns their results.
func (b *bench) measure(ctx context.Context, op string, size, workers int, payload []byte, d time.Duration) (cp, raw benchResult, err error) {
	lat := map[string][]time.Duration{}
	secs := map[string]float64{}
	slice := d / benchRounds
	for r := 0; r < benchRounds; r++ {
		order := []string{"raw", "pgcheckpoint"}
		if r%2 == 1 {
			order = []string{"pgcheckpoint", "raw"}
		}
		for _, system := range order {
			l, elapsed, err := b.run(ctx, system, op, size, workers, payload, slice)
			if err != nil {
				return cp, raw, fmt.Errorf("bench: %s %s: %w", system, op, err)
			}
			lat[system] = append(lat[system], l...)
			secs[system] += elapsed.Seconds()
		}
	}
	res := func(system string) benchResult {
		l := lat[system]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return benchResult{System: system, Driver: b.driver, Op: op, SizeBytes: size, Workers: workers, Ops: len(l),
			Seconds: round3(secs[system]), OpsPerS: round3(float64(len(l)) / secs[system]),
			P50Ms: quantileMs(l, 0.50), P99Ms: quantileMs(l, 0.99)}
	}
	return res("pgcheckpoint"), res("raw"), nil
}

// run has workers goroutines, each on its own thread, repeat op for d and returns every latency.
func (b *bench) run(ctx context.Context, system, op string, size, workers int, payload []byte, d time.Duration) ([]time.Duration, time.Duration, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  []time.Duration
		werr error
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(thread string) {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := b.op(ctx, system, op, thread, payload); err != nil {
					mu.Lock()
					werr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(benchThread(size, w))
	}
	wg.Wait()
	if werr == nil {
		werr = ctx.Err()
	}
	return all, time.Since(start), werr
}

func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return round3(float64(sorted[i]) / float64(time.Millisecond))
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func ms(x float64) string { return fmt.Sprintf("%.2fms", x) }

func size64(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return size(int64(n))
}

func capOf(n int) int {
	switch {
	case n == 0:
		return pgcheckpoint.DefaultMaxCheckpointsPerThread
	case n < 0:
		return 0
	}
	return n
}

// parseSizes parses a list like "1KiB,64KiB,1MiB" (also 1k, 64KB, 1m, plain bytes).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		num := strings.TrimRightFunc(p, func(r rune) bool { return r < '0' || r > '9' })
		unit := strings.ToLower(strings.TrimSpace(p[len(num):]))
		n, err := strconv.Atoi(num)
		mult := map[string]int{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}[unit]
		if err != nil || mult == 0 || n <= 0 {
			return nil, usageErrorf("bench: --sizes: %q is not a size (1KiB, 64KiB, 1MiB)", p)
		}
		if _, err := fixtures.Snapshot(n * mult); err != nil {
			return nil, usageErrorf("bench: --sizes: no fixture of %s: choose among 1KiB, 64KiB, 1MiB", p)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// parseInts parses a comma-separated list of integers within [lo, hi].
func parseInts(flag, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < lo || n > hi {
			return nil, usageErrorf("bench: %s: %q is not a number from %d to %d", flag, p, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}
