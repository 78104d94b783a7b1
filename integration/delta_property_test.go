package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestDeltaProperty drives a delta table with seeded random histories: appends, edited and removed
// messages, compactions, arrays that appear, vanish or change type, duplicate keys, the same content
// written with other whitespace, fenced puts, deletes of single checkpoints and threads, and prunes, by
// several writers whose caches go stale (and cold ones). After every operation every retained
// checkpoint must rebuild, by id and as the newest, to JSON equal to what was put as PostgreSQL's jsonb
// compares it; List must name exactly the retained checkpoints; no item may be left that no head holds;
// and the view must return the same snapshots. PGCHECKPOINT_DELTA_SEEDS sets the seeds per target
// (default 6), PGCHECKPOINT_DELTA_SEED one seed to replay.
func TestDeltaProperty(t *testing.T) {
	seeds := []uint64{}
	if s := os.Getenv("PGCHECKPOINT_DELTA_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PGCHECKPOINT_DELTA_SEED: %v", err)
		}
		seeds = append(seeds, n)
	} else {
		count := 6
		if s := os.Getenv("PGCHECKPOINT_DELTA_SEEDS"); s != "" {
			var err error
			if count, err = strconv.Atoi(s); err != nil {
				t.Fatalf("PGCHECKPOINT_DELTA_SEEDS: %v", err)
			}
		}
		for i := range count {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			for _, seed := range seeds {
				t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
					runDeltaProperty(t, tg, db, schema, seed)
				})
			}
		})
	}
}

// deltaModel is what the thread must hold: retained checkpoints oldest first.
type deltaModel struct {
	ids   []string
	snaps map[string][]byte
}

func (m *deltaModel) put(id string, snap []byte, cap int) {
	m.ids = append(m.ids, id)
	m.snaps[id] = snap
	if cap > 0 && len(m.ids) > cap {
		for _, old := range m.ids[:len(m.ids)-cap] {
			delete(m.snaps, old)
		}
		m.ids = slices.Clone(m.ids[len(m.ids)-cap:])
	}
}

func (m *deltaModel) remove(id string) {
	m.ids = slices.DeleteFunc(m.ids, func(s string) bool { return s == id })
	delete(m.snaps, id)
}

func runDeltaProperty(t *testing.T, tg target, db *sql.DB, schema string, seed uint64) {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	caps := []int{1, 2, 3, 5, pgcheckpoint.NoLimit}
	cap := caps[rng.IntN(len(caps))]
	opts := pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: fmt.Sprintf("d%d", seed),
		MaxCheckpointsPerThread: cap, Storage: pgcheckpoint.StorageDelta}
	newWriter := func() *pgcheckpoint.Checkpointer {
		cp, err := pgcheckpoint.New(db, opts)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	writers := []*pgcheckpoint.Checkpointer{newWriter(), newWriter()}
	if err := writers[0].EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if cap < 0 {
		cap = 0
	}
	thread := fmt.Sprintf("thread-%d", seed)
	model := &deltaModel{snaps: map[string][]byte{}}
	gen := newSnapGen(rng)
	steps := 40
	for step := range steps {
		w := writers[rng.IntN(len(writers))]
		if rng.IntN(10) == 0 {
			w = newWriter() // a cold writer
		}
		op := rng.IntN(100)
		var what string
		switch {
		case op < 70:
			snap := gen.next()
			what = "put"
			if rng.IntN(5) == 0 && len(model.ids) > 0 {
				// A fenced put: on the head, or on a stale checkpoint (conflict).
				head := model.ids[len(model.ids)-1]
				stale := rng.IntN(2) == 0 && len(model.ids) > 1
				if stale {
					head = model.ids[0]
				}
				id, err := putAfter(w, ctx, thread, head, snap)
				what = fmt.Sprintf("putAfter(stale=%v)", stale)
				if stale {
					if !errors.Is(err, pgcheckpoint.ErrConflict) {
						t.Fatalf("step %d: a put after a stale head: %v, want ErrConflict", step, err)
					}
					gen.undo()
					break
				}
				if err != nil {
					t.Fatalf("step %d: PutAfter: %v", step, err)
				}
				model.put(id, snap, cap)
				break
			}
			id, err := w.Put(ctx, thread, snap)
			if err != nil {
				t.Fatalf("step %d: Put: %v\n%s", step, err, snap)
			}
			model.put(id, snap, cap)
		case op < 85 && len(model.ids) > 0:
			id := model.ids[rng.IntN(len(model.ids))]
			what = "delete " + id
			if err := w.Delete(ctx, thread, id); err != nil {
				t.Fatalf("step %d: Delete: %v", step, err)
			}
			model.remove(id)
		case op < 95:
			include := rng.IntN(3) == 0
			what = fmt.Sprintf("prune(includeNewest=%v)", include)
			if _, err := w.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Nanosecond, IncludeNewest: include}); err != nil {
				t.Fatalf("step %d: Prune: %v", step, err)
			}
			keep := 1
			if include {
				keep = 0
			}
			for len(model.ids) > keep {
				model.remove(model.ids[0])
			}
		default:
			what = "delete thread"
			if err := w.DeleteThread(ctx, thread); err != nil {
				t.Fatalf("step %d: Delete thread: %v", step, err)
			}
			for len(model.ids) > 0 {
				model.remove(model.ids[0])
			}
		}
		checkDeltaThread(t, ctx, db, writers[rng.IntN(len(writers))], opts, thread, model, fmt.Sprintf("step %d (%s)", step, what))
	}
}

// checkDeltaThread compares the thread with the model.
func checkDeltaThread(t *testing.T, ctx context.Context, db *sql.DB, r *pgcheckpoint.Checkpointer, opts pgcheckpoint.Options, thread string, m *deltaModel, when string) {
	t.Helper()
	list, err := r.List(ctx, thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		t.Fatalf("%s: List: %v", when, err)
	}
	var got []string
	for _, cp := range list {
		got = append(got, cp.ID)
	}
	want := slices.Clone(m.ids)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: List = %v, want %v", when, got, want)
	}
	for _, id := range m.ids {
		cp, err := r.Get(ctx, thread, id)
		if err != nil {
			t.Fatalf("%s: Get(%s): %v", when, id, err)
		}
		if !jsonbEqual(t, ctx, db, cp.Snapshot, m.snaps[id]) {
			t.Fatalf("%s: checkpoint %s rebuilt as\n%s\nwant (as jsonb)\n%s", when, id, cp.Snapshot, m.snaps[id])
		}
	}
	latest, err := r.Latest(ctx, thread)
	switch {
	case len(m.ids) == 0:
		if !errors.Is(err, pgcheckpoint.ErrNotFound) {
			t.Fatalf("%s: Get newest of an empty thread: %v, want ErrNotFound", when, err)
		}
	case err != nil:
		t.Fatalf("%s: Get newest: %v", when, err)
	case latest.ID != m.ids[len(m.ids)-1] || !jsonbEqual(t, ctx, db, latest.Snapshot, m.snaps[latest.ID]):
		t.Fatalf("%s: newest = %s %s, want %s", when, latest.ID, latest.Snapshot, m.ids[len(m.ids)-1])
	}
	view := `"` + opts.Schema + `"."` + opts.Table + `"`
	var viewOK bool
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*), COALESCE(bool_and(s.snapshot = v.snapshot), true) FROM `+view+` AS v
		JOIN jsonb_each($2::text::jsonb) AS s(id, snapshot) ON s.id = v.checkpoint_id WHERE v.thread_id = $1`,
		thread, modelJSON(t, m)).Scan(&n, &viewOK); err != nil {
		t.Fatalf("%s: read the view: %v", when, err)
	}
	if n != len(m.ids) || !viewOK {
		t.Fatalf("%s: the view holds %d matching checkpoints (all equal: %v), want %d", when, n, viewOK, len(m.ids))
	}
	var orphans int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+opts.Schema+`"."`+opts.Table+`_items" AS i
		WHERE i.thread_id = $1 AND NOT EXISTS (
			SELECT 1 FROM "`+opts.Schema+`"."`+opts.Table+`_heads" AS h, unnest(h.lo, h.hi) AS u(lo, hi)
			WHERE h.thread_id = $1 AND u.lo <= i.pos AND i.pos < u.hi)`, thread).Scan(&orphans); err != nil {
		t.Fatalf("%s: count orphans: %v", when, err)
	}
	if orphans != 0 {
		t.Fatalf("%s: %d items no head holds", when, orphans)
	}
}

// modelJSON maps the model's ids to their snapshots, as one JSON object.
func modelJSON(t *testing.T, m *deltaModel) string {
	t.Helper()
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range m.ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", id, m.snaps[id])
	}
	b.WriteByte('}')
	return b.String()
}

// jsonbEqual compares two documents as PostgreSQL's jsonb does.
func jsonbEqual(t *testing.T, ctx context.Context, db *sql.DB, a, b []byte) bool {
	t.Helper()
	var eq bool
	if err := db.QueryRowContext(ctx, `SELECT $1::text::jsonb = $2::text::jsonb`, string(a), string(b)).Scan(&eq); err != nil {
		t.Fatalf("compare as jsonb: %v", err)
	}
	return eq
}

// snapGen makes a conversation's snapshots: each step changes the previous one the way agents do,
// and now and then the way they rarely do.
type snapGen struct {
	rng      *rand.Rand
	step     int
	messages []string // raw JSON elements
	steps    []string
	tags     []string // nil: no "tags" key
	oddSteps bool     // "steps" is a string this time
	prev     *snapGen
}

func newSnapGen(rng *rand.Rand) *snapGen { return &snapGen{rng: rng} }

var words = []string{"alpha", "beta", `quo"te`, `back\slash`, "é", "日本", "tab\t", "line\nbreak", "<tag>", "emoji 🎉"}

func (g *snapGen) text(n int) string {
	var parts []string
	for range n {
		parts = append(parts, words[g.rng.IntN(len(words))])
	}
	return strings.Join(parts, " ")
}

func (g *snapGen) elem(role string) string {
	b, _ := json.Marshal(map[string]any{"role": role, "content": g.text(1 + g.rng.IntN(6)), "n": g.rng.IntN(1000)})
	if g.rng.IntN(8) == 0 {
		// The same kind of element, written with other whitespace and a number JSONB rewrites.
		spaced := strings.ReplaceAll(string(b), `,"`, ` ,  "`)
		return spaced[:len(spaced)-1] + `, "score": 1.50e1 }`
	}
	return string(b)
}

// undo forgets the last step (its put was refused).
func (g *snapGen) undo() {
	if g.prev != nil {
		*g = *g.prev
	}
}

func (g *snapGen) next() []byte {
	saved := *g
	saved.messages = slices.Clone(g.messages)
	saved.steps = slices.Clone(g.steps)
	saved.tags = slices.Clone(g.tags)
	g.prev = &saved
	g.step++
	for range g.rng.IntN(4) {
		g.messages = append(g.messages, g.elem("user"))
	}
	if g.rng.IntN(3) > 0 {
		g.steps = append(g.steps, g.elem("step"))
	}
	r := g.rng.IntN(100)
	switch {
	case r < 12 && len(g.messages) > 0:
		g.messages[g.rng.IntN(len(g.messages))] = g.elem("edited")
	case r < 20 && len(g.messages) > 2:
		keep := g.rng.IntN(len(g.messages))
		g.messages = append([]string{g.elem("summary")}, g.messages[keep:]...)
	case r < 26 && len(g.messages) > 0:
		g.messages = g.messages[:len(g.messages)-1]
	case r < 32:
		if g.tags == nil {
			g.tags = []string{`"a"`, `"b"`}
		} else {
			g.tags = nil
		}
	case r < 36:
		g.oddSteps = !g.oddSteps
	case r < 40:
		g.messages = nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"version": 1, "step": %d, "createdAt": "2026-12-02T10:00:%02dZ", "messages": [%s]`,
		g.step, g.step%60, strings.Join(g.messages, ", "))
	if g.oddSteps {
		b.WriteString(`, "steps": "none"`)
	} else {
		fmt.Fprintf(&b, `,"steps":[%s]`, strings.Join(g.steps, ","))
	}
	if g.tags != nil {
		fmt.Fprintf(&b, `, "tags" : [ %s ]`, strings.Join(g.tags, " , "))
	}
	fmt.Fprintf(&b, `, "totalUsage": {"input": %d, "output": %d}, "pendingApprovals": []`, g.step*10, g.step*20)
	if g.rng.IntN(10) == 0 {
		// A duplicate key: JSONB keeps the last value.
		b.WriteString(`, "dup": [1], "dup": [2, 3]`)
	}
	if g.rng.IntN(10) == 0 {
		b.WriteString(`, "esc\u0061ped": ["x"]`)
	}
	b.WriteByte('}')
	return []byte(b.String())
}
