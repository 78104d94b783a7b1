package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestCrashKill kills a writer process with SIGKILL again and again, at moments drawn from a seeded
// generator, while it writes two threads: one fenced (PutAfter its own head) with a retention cap, one
// without a cap. The worker's driver and dialect are drawn per run too. After every kill:
//   - every id the worker was told was stored is in the table, unless retention removed it, which is
//     computed exactly: the thread holds precisely the newest cap of what was there, the acknowledged
//     puts and at most the one put in flight when the process died;
//   - no torn rows: every row holds exactly the snapshot that was sent for it, size and version agree,
//     and the thread's numbering is dense;
//   - the next put (from this process) holds the cap.
//
// PGCHECKPOINT_CRASH_SEED replays a run; PGCHECKPOINT_CRASH_KILLS changes the number of kills (20).
func TestCrashKill(t *testing.T) {
	t.Parallel()
	const cap = 5
	seed := time.Now().UnixNano()
	if s := os.Getenv("PGCHECKPOINT_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("PGCHECKPOINT_CRASH_SEED: %v", err)
		}
	}
	kills := 20
	if s := os.Getenv("PGCHECKPOINT_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d (replay: PGCHECKPOINT_CRASH_SEED=%d go test -run TestCrashKill ./integration)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))

	targets := postgresTargets(t)
	db := targets[0].open(t)
	schema, uncappedSchema := newSchema(t, db), newSchema(t, db)
	targets[0].newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: cap})
	targets[0].newCheckpointer(t, db, pgcheckpoint.Options{Schema: uncappedSchema, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	capped, uncapped := "capped", "uncapped"
	v := &crashVerifier{t: t, db: db, schemas: map[string]string{capped: schema, uncapped: uncappedSchema}, seed: seed,
		known: map[string][]string{}, sent: map[string][]byte{}}

	for it := range kills {
		tg := targets[rng.IntN(len(targets))]
		spec := tg.spec("crash", schema)
		app := fmt.Sprintf("pgct-crash-%d-%d", os.Getpid(), it)
		spec.DSN = withParam(t, spec.DSN, "application_name", app)
		spec.Cap, spec.Threads, spec.Iteration, spec.Seed = cap, []string{capped, uncapped}, it, seed
		spec.UncappedSchema = uncappedSchema
		// The kill moment: after the worker acknowledged k puts, plus up to 3ms, so that it lands anywhere
		// in the next put (building it, on the wire, executing, committing, or printing the ack).
		k := rng.IntN(25)
		delay := time.Duration(rng.IntN(3000)) * time.Microsecond

		w := startHelper(t, spec)
		acks := map[string][]crashAck{}
		record := func(line string) {
			f := strings.Split(line, "\t")
			if f[0] != "ack" || len(f) != 4 {
				t.Fatalf("run %d (%s): worker said %q; %s", it, tg.name, line, w.diag())
			}
			i, _ := strconv.Atoi(f[2])
			acks[f[1]] = append(acks[f[1]], crashAck{i: i, id: f[3]})
		}
		for n := 0; n < k; n++ {
			line, ok := w.next()
			if !ok {
				t.Fatalf("run %d (%s): worker exited before the kill: %s", it, tg.name, w.diag())
			}
			record(line)
		}
		time.Sleep(delay) // chooses the kill moment; nothing is waited for
		for _, line := range w.kill() {
			record(line)
		}
		// A statement the dead worker had sent may still be running on the server: wait until its
		// sessions are gone, so that whatever it does (commit or roll back) is decided.
		waitFor(t, "the killed worker's sessions to end", func() bool {
			var n int
			err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
			return err == nil && n == 0
		})
		v.check(it, capped, cap, acks[capped])
		v.check(it, uncapped, 0, acks[uncapped])

		// The next put holds the cap.
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: cap})
		if err != nil {
			t.Fatal(err)
		}
		snap := crashSnapshot(seed, capped, -1-it, 0)
		id, err := cp.Put(testCtx(t), capped, snap)
		if err != nil {
			t.Fatalf("run %d: put after the kill: %v", it, err)
		}
		v.sent[id] = snap
		v.known[capped] = lastN(append(v.known[capped], id), cap)
		v.compare(it, capped)
	}
	t.Logf("FIGURES crash: %d kills survived (seed %d); %d puts acknowledged, %d of them found after the kills, %d removed "+
		"by retention as computed, 0 lost; %d unacknowledged in-flight puts found committed (complete), %d rows checked for tearing",
		kills, seed, v.acked, v.found, v.trimmed, v.inFlight, v.rowsChecked)
}

type crashAck struct {
	i  int
	id string
}

// crashVerifier holds what the table must contain and checks it after each kill.
type crashVerifier struct {
	t       *testing.T
	db      *sql.DB
	schemas map[string]string // thread -> the schema of its table
	seed    int64
	known   map[string][]string // thread -> ids the table holds, oldest first
	sent    map[string][]byte   // id -> the snapshot sent for it

	acked, found, trimmed, inFlight, rowsChecked int
}

// check verifies a thread after a kill, given the puts the worker acknowledged in run it.
func (v *crashVerifier) check(it int, thread string, cap int, acks []crashAck) {
	t := v.t
	t.Helper()
	expected := append([]string(nil), v.known[thread]...)
	for n, a := range acks {
		if a.i != n {
			t.Fatalf("run %d thread %q: acknowledgement %d is for put %d", it, thread, n, a.i)
		}
		v.sent[a.id] = crashSnapshot(v.seed, thread, it, a.i)
		expected = append(expected, a.id)
	}
	rows := readRows(t, v.db, v.schemas[thread], thread)
	// At most one put was in flight: the row it left, if it committed, sorts after everything else.
	var extra []storedRow
	last := ""
	if len(expected) > 0 {
		last = expected[len(expected)-1]
	}
	for _, r := range rows {
		if r.id > last {
			extra = append(extra, r)
		}
	}
	if len(extra) > 1 {
		t.Fatalf("run %d thread %q: %d rows newer than the last acknowledged put, at most 1 (the put in flight) may be", it, thread, len(extra))
	}
	if len(extra) == 1 {
		v.inFlight++
		v.sent[extra[0].id] = crashSnapshot(v.seed, thread, it, len(acks))
		expected = append(expected, extra[0].id)
	}
	if cap > 0 {
		expected = lastN(expected, cap)
	}
	v.known[thread] = expected
	got := v.compare(it, thread)
	present := map[string]bool{}
	for _, id := range got {
		present[id] = true
	}
	for _, a := range acks {
		v.acked++
		if present[a.id] {
			v.found++
		} else {
			v.trimmed++ // compare proved the thread is exactly the newest cap: a missing one was trimmed
		}
	}
}

// compare checks that the thread holds exactly v.known[thread], untorn and densely numbered.
func (v *crashVerifier) compare(it int, thread string) []string {
	t := v.t
	t.Helper()
	rows := readRows(t, v.db, v.schemas[thread], thread)
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = r.id
		sent, ok := v.sent[r.id]
		if !ok {
			t.Fatalf("run %d thread %q: row %s was never sent", it, thread, r.id)
		}
		var want, have any
		_ = json.Unmarshal(sent, &want)
		if err := json.Unmarshal(r.snapshot, &have); err != nil || !reflect.DeepEqual(want, have) || int(r.size) != len(sent) ||
			float64(r.version) != want.(map[string]any)["version"] {
			t.Fatalf("run %d thread %q: row %s is torn: size %d version %d (sent %d bytes, version %v), snapshot equal: %v",
				it, thread, r.id, r.size, r.version, len(sent), want.(map[string]any)["version"], reflect.DeepEqual(want, have))
		}
		v.rowsChecked++
	}
	if !slices.Equal(got, v.known[thread]) {
		t.Fatalf("run %d thread %q holds %v,\nwant %v", it, thread, got, v.known[thread])
	}
	checkSeq(t, thread, rows)
	return got
}

func lastN(s []string, n int) []string { return s[max(0, len(s)-n):] }
