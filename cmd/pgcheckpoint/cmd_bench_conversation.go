package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// The conversation workload (docs/benchmarks.md, the reference workload of issue 13): one thread of
// `steps` agent steps, retention cap 100; each step appends a user message (~300 B) and an assistant
// message (~1.5 KB) of English-like text, one steps[] entry (~190 B), and changes totalUsage,
// createdAt and step. It is generated from a fixed seed, so every run puts the same bytes. Full (lz4)
// and delta tables run it side by side (each step puts into both, in alternating order; the gets
// alternate too), `repeat` times, and every figure is the median of the runs.

// conversationResult is one line of `bench --workload conversation --json`.
type conversationResult struct {
	Mode          string  `json:"mode"`
	Dialect       string  `json:"dialect"`
	Driver        string  `json:"driver"`
	Steps         int     `json:"steps"`
	Runs          int     `json:"runs"`
	SnapshotBytes int     `json:"snapshot_bytes"` // of the last snapshot
	WALBytes      int64   `json:"wal_bytes"`      // all puts
	WALPut20      int64   `json:"wal_put_20"`
	WALPut200     int64   `json:"wal_put_200"` // the last put when steps < 200
	TableBytes    int64   `json:"table_bytes"`
	PutP50Ms      float64 `json:"put_p50_ms"`
	GetP50Ms      float64 `json:"get_p50_ms"`
	// The same WAL figures counting only the records of the puts' own transactions (--walinspect):
	// other sessions' WAL, which the LSN differences include, is left out.
	OwnWALBytes   int64   `json:"own_wal_bytes,omitempty"`
	OwnWALPut20   int64   `json:"own_wal_put_20,omitempty"`
	OwnWALPut200  int64   `json:"own_wal_put_200,omitempty"`
	GetRoundTrips float64 `json:"get_round_trips"` // statements per get-latest
	PutRoundTrips float64 `json:"put_round_trips"` // statements per put outside a transaction (mean)
	walPerPut     []int64 // per step, median over the runs (the plot)
	ownPerPut     []int64
}

// conversationGets is how many get-latest calls each run measures after its puts.
const conversationGets = 60

// cmdBenchConversation runs the conversation workload on both layouts.
func cmdBenchConversation(ctx context.Context, e env, s *session, cf connFlags, steps, repeat int, asJSON bool, plot string, walinspect bool) error {
	snaps := conversation(steps)
	if walinspect {
		if _, err := s.db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_walinspect`); err != nil {
			return fmt.Errorf("bench: --walinspect: %w", err)
		}
	}
	modes := []pgcheckpoint.Storage{pgcheckpoint.StorageFull, pgcheckpoint.StorageDelta}
	runs := map[pgcheckpoint.Storage][]conversationResult{}
	for r := range repeat {
		res, err := runConversationPair(ctx, s, cf, modes, snaps, walinspect, r)
		if err != nil {
			return err
		}
		for i, m := range modes {
			runs[m] = append(runs[m], res[i])
		}
	}
	var out []conversationResult
	for _, m := range modes {
		out = append(out, medianResult(runs[m]))
	}
	if plot != "" {
		full, delta := out[0].walPerPut, out[1].walPerPut
		if walinspect {
			full, delta = out[0].ownPerPut, out[1].ownPerPut
		}
		if err := writeWALPlot(plot, full, delta); err != nil {
			return err
		}
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range out {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "bench: conversation workload, %d steps, cap 100, %s via %s at %s, medians of %d runs\n\n",
		steps, s.dialect.Name(), s.driver, s.target, repeat)
	t := newTable(e.stdout, "MODE", "WAL", "WAL PUT #20", "WAL PUT #LAST", "TABLE", "PUT P50", "GET P50", "GET STMTS")
	for _, r := range out {
		t.row(r.Mode, size64(int(r.WALBytes)), size64(int(r.WALPut20)), size64(int(r.WALPut200)), size64(int(r.TableBytes)),
			ms(r.PutP50Ms), ms(r.GetP50Ms), fmt.Sprintf("%.0f", r.GetRoundTrips))
	}
	if err := t.flush(); err != nil {
		return err
	}
	f, d := out[0], out[1]
	if walinspect {
		fmt.Fprintf(e.stdout, "\nown WAL (the puts' transactions only): full %s (#20 %s, last %s), delta %s (#20 %s, last %s): %.1f%%\n",
			size64(int(f.OwnWALBytes)), size64(int(f.OwnWALPut20)), size64(int(f.OwnWALPut200)),
			size64(int(d.OwnWALBytes)), size64(int(d.OwnWALPut20)), size64(int(d.OwnWALPut200)),
			100*float64(d.OwnWALBytes)/float64(f.OwnWALBytes))
	}
	fmt.Fprintf(e.stdout, "\ndelta/full: WAL %.1f%%, put p50 %.2fx, get p50 %.2fx; WAL of the last put / put #20: full %.1fx, delta %.2fx\n",
		100*float64(d.WALBytes)/float64(f.WALBytes), d.PutP50Ms/f.PutP50Ms, d.GetP50Ms/f.GetP50Ms,
		float64(f.WALPut200)/float64(f.WALPut20), float64(d.WALPut200)/float64(d.WALPut20))
	return nil
}

// countingDB counts the statements a Checkpointer sends outside its own transactions.
type countingDB struct {
	*sql.DB
	n atomic.Int64
}

func (c *countingDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	c.n.Add(1)
	return c.DB.ExecContext(ctx, q, args...)
}

func (c *countingDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.n.Add(1)
	return c.DB.QueryContext(ctx, q, args...)
}

func (c *countingDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	c.n.Add(1)
	return c.DB.QueryRowContext(ctx, q, args...)
}

// convRun is one layout's scratch table during one run.
type convRun struct {
	s          *session
	cp         *pgcheckpoint.Checkpointer
	cdb        *countingDB
	conn       *sql.Conn // the LSN reads take no connection from the checkpointer's pool
	tables     []string
	rowTable   string // the table whose row's xmin names a put's transaction
	drop       func()
	walinspect bool
	puts, gets []time.Duration
	putStmts   int64
	getStmts   int64
	res        conversationResult
}

const convThread = "conversation"

// newConvRun creates a fresh scratch table of the given layout.
func newConvRun(ctx context.Context, s *session, cf connFlags, mode pgcheckpoint.Storage, snaps [][]byte, walinspect bool) (*convRun, error) {
	r := &convRun{s: s, walinspect: walinspect, res: conversationResult{Mode: mode.String(), Dialect: s.dialect.Name(),
		Driver: s.driver, Steps: len(snaps), Runs: 1, SnapshotBytes: len(snaps[len(snaps)-1])}}
	if mode == pgcheckpoint.StorageFull {
		r.res.Mode = "full-lz4"
	}
	name := "pgcheckpoint_bench_conv_" + randomHex(4)
	opts := cf.options(s.dialect)
	opts.Table, opts.Storage, opts.MaxCheckpointsPerThread = name, mode, 100
	r.cdb = &countingDB{DB: s.db}
	cp, err := pgcheckpoint.New(r.cdb, opts)
	if err != nil {
		return nil, err
	}
	r.cp = cp
	q := func(id string) string { return `"` + id + `"` }
	r.tables = []string{q(cf.schema) + "." + q(name)}
	if mode == pgcheckpoint.StorageDelta {
		r.tables = []string{q(cf.schema) + "." + q(name+"_heads"), q(cf.schema) + "." + q(name+"_items")}
	}
	r.rowTable = r.tables[0]
	r.drop = func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if r.conn != nil {
			r.conn.Close()
		}
		if mode == pgcheckpoint.StorageDelta {
			_, _ = s.db.ExecContext(ctx, `DROP VIEW IF EXISTS `+q(cf.schema)+"."+q(name))
		}
		_, _ = s.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+strings.Join(r.tables, ", "))
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		r.drop()
		return nil, err
	}
	if r.conn, err = s.db.Conn(ctx); err != nil {
		r.drop()
		return nil, err
	}
	return r, nil
}

func (r *convRun) lsn(ctx context.Context) (string, error) {
	var l string
	err := r.conn.QueryRowContext(ctx, `SELECT pg_current_wal_flush_lsn()::text`).Scan(&l)
	return l, err
}

// put stores step i's snapshot and records its latency and WAL.
func (r *convRun) put(ctx context.Context, i int, snap []byte) error {
	before, err := r.lsn(ctx)
	if err != nil {
		return err
	}
	n0 := r.cdb.n.Load()
	start := time.Now()
	id, err := r.cp.Put(ctx, convThread, snap)
	if err != nil {
		return err
	}
	r.puts = append(r.puts, time.Since(start))
	r.putStmts += r.cdb.n.Load() - n0
	after, err := r.lsn(ctx)
	if err != nil {
		return err
	}
	var d int64
	if err := r.conn.QueryRowContext(ctx, `SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint`, after, before).Scan(&d); err != nil {
		return err
	}
	res := &r.res
	res.walPerPut = append(res.walPerPut, d)
	res.WALBytes += d
	if i+1 == 20 {
		res.WALPut20 = d
	}
	res.WALPut200 = d
	if !r.walinspect {
		return nil
	}
	var own int64
	err = r.conn.QueryRowContext(ctx, `SELECT COALESCE(sum(w.record_length), 0)::bigint
FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn) AS w
WHERE w.xid = (SELECT xmin FROM `+r.rowTable+` WHERE thread_id = $3 AND checkpoint_id = $4)`, before, after, convThread, id).Scan(&own)
	if err != nil {
		return fmt.Errorf("bench: read the put's WAL records: %w", err)
	}
	res.ownPerPut = append(res.ownPerPut, own)
	res.OwnWALBytes += own
	if i+1 == 20 {
		res.OwnWALPut20 = own
	}
	res.OwnWALPut200 = own
	return nil
}

// get reads the newest checkpoint once and records its latency.
func (r *convRun) get(ctx context.Context) error {
	n0 := r.cdb.n.Load()
	start := time.Now()
	got, err := r.cp.Latest(ctx, convThread)
	if err != nil {
		return err
	}
	r.gets = append(r.gets, time.Since(start))
	r.getStmts += r.cdb.n.Load() - n0
	if len(got.Snapshot) == 0 {
		return fmt.Errorf("bench: empty snapshot read back")
	}
	return nil
}

// finish computes the run's figures.
func (r *convRun) finish(ctx context.Context) (conversationResult, error) {
	res := r.res
	res.PutP50Ms, res.GetP50Ms = medianMs(r.puts), medianMs(r.gets)
	res.PutRoundTrips = float64(r.putStmts) / float64(len(r.puts))
	res.GetRoundTrips = float64(r.getStmts) / float64(len(r.gets))
	for _, t := range r.tables {
		var n int64
		if err := r.conn.QueryRowContext(ctx, `SELECT pg_total_relation_size($1::text::regclass)`, t).Scan(&n); err != nil {
			return res, err
		}
		res.TableBytes += n
	}
	return res, nil
}

// runConversationPair runs both layouts at once: each step puts into both tables, in alternating order,
// and the gets alternate too, so both see the same load on the machine.
func runConversationPair(ctx context.Context, s *session, cf connFlags, modes []pgcheckpoint.Storage, snaps [][]byte, walinspect bool, round int) ([]conversationResult, error) {
	var rs []*convRun
	defer func() {
		for _, r := range rs {
			r.drop()
		}
	}()
	for _, m := range modes {
		r, err := newConvRun(ctx, s, cf, m, snaps, walinspect)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	for i, snap := range snaps {
		for k := range rs {
			if err := rs[(i+k+round)%len(rs)].put(ctx, i, snap); err != nil {
				return nil, err
			}
		}
	}
	for i := range conversationGets {
		for k := range rs {
			if err := rs[(i+k+round)%len(rs)].get(ctx); err != nil {
				return nil, err
			}
		}
	}
	var out []conversationResult
	for _, r := range rs {
		res, err := r.finish(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

func medianMs(ds []time.Duration) float64 {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return quantileMs(sorted, 0.5)
}

// medianResult takes the median of every figure over the runs of one layout.
func medianResult(rs []conversationResult) conversationResult {
	out := rs[0]
	out.Runs = len(rs)
	medI := func(f func(r conversationResult) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	medF := func(f func(r conversationResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return round3(v[len(v)/2])
	}
	out.WALBytes = medI(func(r conversationResult) int64 { return r.WALBytes })
	out.WALPut20 = medI(func(r conversationResult) int64 { return r.WALPut20 })
	out.WALPut200 = medI(func(r conversationResult) int64 { return r.WALPut200 })
	out.TableBytes = medI(func(r conversationResult) int64 { return r.TableBytes })
	out.PutP50Ms = medF(func(r conversationResult) float64 { return r.PutP50Ms })
	out.GetP50Ms = medF(func(r conversationResult) float64 { return r.GetP50Ms })
	out.GetRoundTrips = medF(func(r conversationResult) float64 { return r.GetRoundTrips })
	out.PutRoundTrips = medF(func(r conversationResult) float64 { return r.PutRoundTrips })
	out.OwnWALBytes = medI(func(r conversationResult) int64 { return r.OwnWALBytes })
	out.OwnWALPut20 = medI(func(r conversationResult) int64 { return r.OwnWALPut20 })
	out.OwnWALPut200 = medI(func(r conversationResult) int64 { return r.OwnWALPut200 })
	out.walPerPut = make([]int64, len(rs[0].walPerPut))
	for i := range out.walPerPut {
		out.walPerPut[i] = medI(func(r conversationResult) int64 { return r.walPerPut[i] })
	}
	if len(rs[0].ownPerPut) > 0 {
		out.ownPerPut = make([]int64, len(rs[0].ownPerPut))
		for i := range out.ownPerPut {
			out.ownPerPut[i] = medI(func(r conversationResult) int64 { return r.ownPerPut[i] })
		}
	}
	return out
}

// conversation generates the workload's snapshots, the same bytes on every run.
func conversation(steps int) [][]byte {
	rng := rand.New(rand.NewPCG(13, 2026))
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type step struct {
		StepNumber   int            `json:"stepNumber"`
		FinishReason string         `json:"finishReason"`
		Usage        map[string]int `json:"usage"`
		ToolCalls    []string       `json:"toolCalls"`
		Model        string         `json:"model"`
		Latency      int            `json:"latencyMs"`
	}
	var (
		messages []msg
		stepsLog []step
		out      [][]byte
		in, outT int
	)
	base := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= steps; i++ {
		messages = append(messages, msg{"user", englishish(rng, 300)}, msg{"assistant", englishish(rng, 1500)})
		u := map[string]int{"inputTokens": 60 + rng.IntN(40), "outputTokens": 300 + rng.IntN(100)}
		in, outT = in+u["inputTokens"], outT+u["outputTokens"]
		stepsLog = append(stepsLog, step{StepNumber: i, FinishReason: "stop", Usage: u, ToolCalls: []string{},
			Model: "example-model-2026-11", Latency: 800 + rng.IntN(900)})
		snap := map[string]any{
			"version":          1,
			"createdAt":        base.Add(time.Duration(i) * 17 * time.Second).Format(time.RFC3339Nano),
			"step":             i,
			"messages":         messages,
			"steps":            stepsLog,
			"totalUsage":       map[string]int{"inputTokens": in, "outputTokens": outT, "totalTokens": in + outT},
			"pendingApprovals": []string{},
			"threadId":         "conversation",
		}
		b, err := json.Marshal(snap)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// englishWords is a small vocabulary drawn with a skewed (Zipf-like) distribution: the text compresses
// about as English does.
var englishWords = strings.Fields(`the of and to a in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no what up out more can said who will
about them some could into time only other its then also than two first like over new these any may after most now people
just way where much through back years work well should between being each those because very three state how before great
both good under world same system government another while last might data must during program model agent answer question
result tool step token value request response message context memory search document table query index update change error
check retry plan report number field record server client thread history summary version order status simple`)

func englishish(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		// Zipf-like: small indexes far more often.
		i := int(float64(len(englishWords)) * rng.Float64() * rng.Float64() * rng.Float64())
		w := englishWords[i]
		if b.Len() == 0 || rng.IntN(14) == 0 {
			if b.Len() > 0 {
				b.WriteString(". ")
			}
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		if rng.IntN(9) == 0 {
			fmt.Fprintf(&b, " %d", rng.IntN(2000))
		}
	}
	b.WriteByte('.')
	return b.String()
}

// writeWALPlot draws the WAL of each put against its step: full in red, delta in blue, on a grid of
// 50 KB (horizontal) and 50 steps (vertical) lines.
func writeWALPlot(path string, full, delta []int64) error {
	const w, h, pad = 800, 400, 20
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.White)
		}
	}
	top := int64(1)
	for _, v := range append(append([]int64{}, full...), delta...) {
		top = max(top, v)
	}
	n := max(len(full), 2)
	px := func(i int) int { return pad + i*(w-2*pad)/(n-1) }
	py := func(v int64) int { return h - pad - int(v*int64(h-2*pad)/top) }
	grid := color.RGBA{220, 220, 220, 255}
	for v := int64(0); v <= top; v += 50 << 10 {
		for x := pad; x < w-pad; x++ {
			img.Set(x, py(v), grid)
		}
	}
	for i := 0; i < n; i += 50 {
		for y := pad; y < h-pad; y++ {
			img.Set(px(i), y, grid)
		}
	}
	for y := pad; y <= h-pad; y++ {
		img.Set(pad, y, color.Black)
	}
	for x := pad; x <= w-pad; x++ {
		img.Set(x, h-pad, color.Black)
	}
	line := func(vs []int64, c color.Color) {
		for i := 1; i < len(vs); i++ {
			x0, y0, x1, y1 := px(i-1), py(vs[i-1]), px(i), py(vs[i])
			steps := max(abs(x1-x0), abs(y1-y0), 1)
			for s := 0; s <= steps; s++ {
				x, y := x0+(x1-x0)*s/steps, y0+(y1-y0)*s/steps
				for d := -1; d <= 1; d++ {
					img.Set(x, y+d, c)
				}
			}
		}
	}
	line(full, color.RGBA{200, 30, 30, 255})
	line(delta, color.RGBA{30, 60, 200, 255})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
