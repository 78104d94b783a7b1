package integration

// TestLinearizable: a model-based linearizability checker in the spirit of Jepsen (issue 10). Clients
// run seeded random operations on a few threads with small caps while faults are injected; every call's
// invoke and return is recorded and porcupine checks each history against the model (model_test.go).
//
//	go test -C integration . -run TestLinearizable -v
//	PGCHECKPOINT_CHECKER_SEED=N        replays a seed (the operations each client draws; timing still varies)
//	PGCHECKPOINT_CHECKER_DURATION=30m  run time per target (default 10s)
//	PGCHECKPOINT_CHECKER_FAULTS=a,b    only these faults (default: defaultFaults; "all"; "none" for none)
//	PGCHECKPOINT_CHECKER_OUT=DIR       where the visualisation of a failing history goes (default the temp dir)
//
// See docs/checker.md.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ziroagent/pgcheckpoint"
)

// allFaults are the faults the checker knows: server-side kills, the proxy's cuts, lock waits, concurrent
// EnsureSchema, and per-operation ones: short context deadlines, a pool with a 25 ms statement_timeout,
// caller transactions at READ COMMITTED and REPEATABLE READ, SIGKILL of a client process during a call.
var allFaults = []string{"terminate", "proxy-commit", "proxy-stmt", "lock", "ensure", "deadline", "stmt-timeout", "tx-rc", "tx-rr", "kill", "rekey"}

// defaultFaults are the faults a run injects unless PGCHECKPOINT_CHECKER_FAULTS says otherwise ("all"
// for allFaults, "none"): every fault. The connection faults were left out while a put whose outcome was
// unknown ran its insert again and could bring back a checkpoint another client had deleted meanwhile;
// it now looks its id up instead (docs/checker.md, "Unknown outcomes").
var defaultFaults = allFaults

// checkerConfig is the run's configuration, from the environment.
type checkerConfig struct {
	seed            uint64
	duration, epoch time.Duration
	faults          map[string]bool
	out             string
}

func loadCheckerConfig(t *testing.T) checkerConfig {
	cfg := checkerConfig{seed: rand.Uint64() % 1_000_000, duration: 10 * time.Second, epoch: 2500 * time.Millisecond,
		faults: map[string]bool{}, out: os.Getenv("PGCHECKPOINT_CHECKER_OUT")}
	if s := os.Getenv("PGCHECKPOINT_CHECKER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PGCHECKPOINT_CHECKER_SEED: %v", err)
		}
		cfg.seed = v
	}
	for env, d := range map[string]*time.Duration{"PGCHECKPOINT_CHECKER_DURATION": &cfg.duration, "PGCHECKPOINT_CHECKER_EPOCH": &cfg.epoch} {
		if s := os.Getenv(env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			*d = v
		}
	}
	faults := defaultFaults
	if s, ok := os.LookupEnv("PGCHECKPOINT_CHECKER_FAULTS"); ok {
		faults = strings.Split(s, ",")
		if s == "all" {
			faults = allFaults
		}
	}
	for _, f := range faults {
		if f != "" && f != "none" {
			if !slices.Contains(allFaults, f) {
				t.Fatalf("PGCHECKPOINT_CHECKER_FAULTS: unknown fault %q (known: %v)", f, allFaults)
			}
			cfg.faults[f] = true
		}
	}
	if cfg.out == "" {
		cfg.out = os.TempDir()
	}
	return cfg
}

// TestLinearizable runs the checker against every driver x dialect with client goroutines, and once with
// client processes (one pgx, one lib/pq) beside a goroutine.
func TestLinearizable(t *testing.T) {
	t.Parallel()
	cfg := loadCheckerConfig(t)
	t.Logf("checker seed %d (replay: PGCHECKPOINT_CHECKER_SEED=%d), %v per target, faults %v", cfg.seed, cfg.seed, cfg.duration, slices.Sorted(mapKeys(cfg.faults)))
	storage := os.Getenv("PGCHECKPOINT_CHECKER_STORAGE") // "", "full" or "delta"
	if storage != "" && storage != "full" && storage != "delta" {
		t.Fatalf("PGCHECKPOINT_CHECKER_STORAGE: %q is neither full nor delta", storage)
	}
	if storage != "delta" {
		for i, tg := range postgresTargets(t) {
			t.Run(tg.name, func(t *testing.T) { runChecker(t, cfg, tg, uint64(i), 4, nil) })
		}
		tg := postgresTargets(t)[0]
		t.Run("procs/"+tg.name, func(t *testing.T) { runChecker(t, cfg, tg, 9, 1, []string{"pgx", "postgres"}) })
	}
	// Delta tables (docs/storage.md): every target with PGCHECKPOINT_CHECKER_STORAGE=delta; by default a
	// shorter run on two of them (one per driver and dialect), to keep CI time modest.
	dcfg := cfg
	targets := postgresTargets(t)
	if storage == "" {
		dcfg.duration = cfg.duration / 2
		targets = []target{targets[0], targets[3]}
	}
	if storage != "full" {
		for i, tg := range targets {
			tg.storage = pgcheckpoint.StorageDelta
			t.Run("delta/"+tg.name, func(t *testing.T) { runChecker(t, dcfg, tg, uint64(20+i), 4, nil) })
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkerStats counts what one target's run did.
type checkerStats struct {
	mu                          sync.Mutex
	ops                         map[string]int // "kind outcome" -> count
	faults                      map[string]int
	histories, unknownHistories int
	recorded, maxPerHistory     int
}

func (s *checkerStats) op(in mInput, out mOutput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops[string(in.Kind)+" "+out.Outcome.String()]++
}

func (s *checkerStats) fault(name string) { s.add(name, 1) }

// add counts n more of name among the faults.
func (s *checkerStats) add(name string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] += int(n)
}

// runChecker runs epochs on target tg until cfg.duration is used up: each epoch is a fresh table with a
// cap drawn from the seed, threads of its own and one history, checked at its end. The test fails at the
// first history that is not linearizable.
func runChecker(t *testing.T, cfg checkerConfig, tg target, salt uint64, local int, procs []string) {
	start := time.Now()
	admin := tg.open(t)
	admin.SetMaxOpenConns(3)
	schema := newSchema(t, admin)
	proxy := startDropProxy(t, dsnHost(t, tg.dsn))
	app := fmt.Sprintf("pgct-lin-%d-%d", os.Getpid(), salt)
	clientDSN := withParam(t, withProxy(t, tg.dsn, proxy.port()), "application_name", app)
	env := newExecutor(t, tg.driver, clientDSN, tg.dialect, schema)
	env.storage = tg.storage
	var workers []*checkerWorker
	for i, drv := range procs {
		spec := helperSpec{Mode: "checker", Driver: drv, DSN: withParam(t, clientDSN, "application_name", fmt.Sprintf("%s-p%d", app, i)),
			Dialect: tg.dialect.Name(), Schema: schema}
		workers = append(workers, &checkerWorker{h: startHelper(t, spec), spec: spec, name: fmt.Sprintf("proc%d-%s", i, drv)})
	}
	stats := &checkerStats{ops: map[string]int{}, faults: map[string]int{}}
	rng := rand.New(rand.NewPCG(cfg.seed, salt))
	var tags atomic.Int64
	for e := 0; time.Since(start) < cfg.duration; e++ {
		ep := &epoch{n: e, cap: 1 + rng.IntN(5), table: fmt.Sprintf("cp_e%d", e) + encryptedSuffixOf(e), base: time.Now(),
			ttl: time.Duration(100+rng.IntN(300)) * time.Millisecond}
		// Every other epoch also has a byte budget (checkerSnapshot's sizes are about 80-320 bytes: it keeps 1 to
		// about 8 checkpoints), half of those without a cap.
		if b := rng.IntN(4); b >= 2 {
			ep.budget = int64(120 + rng.IntN(600))
			if b == 3 {
				ep.cap = pgcheckpoint.NoLimit
			}
		}
		for i := range 2 + rng.IntN(2) {
			ep.threads = append(ep.threads, fmt.Sprintf("e%d-t%d", e, i))
		}
		ep.know = map[string]*knowledge{}
		for _, th := range ep.threads {
			ep.know[th] = &knowledge{}
		}
		// The epoch's table is made on the admin pool: the clients' pool goes through the proxy, and a cut
		// armed in the last epoch, or a connection killed there, must not fail the setup.
		setup := newExecutorOn(admin, tg.dialect, schema, tg.storage)
		setup.keyless = strings.HasSuffix(ep.table, migratedTable) // made plaintext: the first rekey encrypts it
		if err := ensureTables(testCtx(t), setup.checkpointer(ep.table, ep.cap, ep.budget, false)); err != nil {
			t.Fatalf("EnsureSchema: %v", err)
		}
		runEpoch(t, cfg, ep, env, workers, admin, proxy, app, schema, local, rng.Uint64(), &tags, stats)
		finalReads(t, ep, newExecutorOn(admin, tg.dialect, schema, tg.storage), stats)
		if !checkHistory(t, cfg, tg.name+fmt.Sprintf("-e%d", e), ep, stats) {
			t.Errorf("seed %d: %s epoch %d (cap %d, budget %d) is not linearizable after %v; replay: PGCHECKPOINT_CHECKER_SEED=%d go test -C integration . -run 'TestLinearizable/%s' -v",
				cfg.seed, tg.name, e, ep.cap, ep.budget, time.Since(start).Round(time.Millisecond), cfg.seed, tg.name)
			break
		}
	}
	stats.faults["proxy cuts made"] = int(proxy.cuts.Load())
	for _, w := range workers {
		stats.faults["client processes killed"] += w.gen
	}
	t.Logf("FIGURES checker %s (seed %d): %v; %d histories checked (%d inconclusive: checker timeout), %d operations recorded (at most %d in one history); operations %v; faults %v",
		tg.name, cfg.seed, time.Since(start).Round(time.Millisecond), stats.histories, stats.unknownHistories, stats.recorded, stats.maxPerHistory, stats.ops, stats.faults)
}

// ensureTables makes cp's table and its lease table.
func ensureTables(ctx context.Context, cp *pgcheckpoint.Checkpointer) error {
	if err := cp.EnsureSchema(ctx); err != nil {
		return err
	}
	return cp.EnsureLeaseSchema(ctx)
}

// epoch is one history: a table, its cap, its threads, what the clients learnt and what they did.
type epoch struct {
	n       int
	cap     int
	budget  int64         // the byte budget (0: none)
	ttl     time.Duration // every lease's TTL, short enough that leases expire during the epoch
	table   string
	threads []string
	base    time.Time
	know    map[string]*knowledge
	mu      sync.Mutex
	ops     []porcupine.Operation
	// targets are the fresh threads that forks copy into (under mu): each is named by one fork, drawn
	// before the fork is called; other calls only read it, put to it and fork into it without History
	// (never a delete: once it has a checkpoint it never is empty again).
	targets []string
}

// allThreads is the epoch's threads and the fork targets named so far.
func (ep *epoch) allThreads() []string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append(slices.Clone(ep.threads), ep.targets...)
}

// maxTargets bounds an epoch's fork targets: every Prune is one operation in each of them.
const maxTargets = 16

// newTarget names a fresh fork target ("" when the epoch has maxTargets).
func (ep *epoch) newTarget() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.targets) >= maxTargets {
		return ""
	}
	th := fmt.Sprintf("e%d-f%d", ep.n, len(ep.targets))
	ep.targets = append(ep.targets, th)
	return th
}

// pickTarget returns one of the fork targets named so far ("" when none).
func (ep *epoch) pickTarget(rng *rand.Rand) string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.targets) == 0 {
		return ""
	}
	return ep.targets[rng.IntN(len(ep.targets))]
}

// opTimeout bounds every operation (and so how far a client can run past the end of its epoch).
const opTimeout = 5 * time.Second

// pending marks an operation without return (unknown outcome) until the history is complete.
const pending = -1

// record adds one finished call to the history. Reads that failed say nothing and are left out; a write
// with an unknown outcome gets no return time; a Prune becomes one operation per thread (fork targets
// included: it prunes the whole table); a Fork becomes two, its source half (a read of the checkpoint's
// existence) and its target half (an insert into an empty thread), in their own threads' partitions.
func (ep *epoch) record(client int, in mInput, out mOutput, call, ret time.Time) {
	r := ret.Sub(ep.base).Nanoseconds()
	if out.Outcome == unknown {
		r = pending
	}
	if isLease(in.Kind) {
		in.At, out.Ret = call.Sub(ep.base).Nanoseconds(), r // the model bounds the lease's expiry by them
	}
	var ins []mInput
	switch in.Kind {
	case opPrune:
		for _, th := range ep.allThreads() {
			in.Thread = th
			ins = append(ins, in)
		}
	case opFork:
		from, into := in, in
		from.Kind, from.Thread = opForkFrom, in.From
		into.Kind, into.Thread = opForkInto, in.To
		ins = []mInput{from, into}
	default:
		ins = []mInput{in}
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, in := range ins {
		isRead := in.Kind == opGetLatest || in.Kind == opGetByID || in.Kind == opList || in.Kind == opForkFrom
		if isRead && out.Outcome == unknown {
			continue
		}
		ep.ops = append(ep.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call.Sub(ep.base).Nanoseconds(), Return: r})
		if k := ep.know[in.Thread]; k != nil && in.Kind != opPrune {
			k.learn(in, out)
		}
	}
}

// knowledge is what the clients have seen of one thread: ids, and the newest they saw.
type knowledge struct {
	mu   sync.Mutex
	ids  []string
	head string
}

func (k *knowledge) learn(in mInput, out mOutput) {
	k.mu.Lock()
	defer k.mu.Unlock()
	add := func(id string) {
		if id != "" && !slices.Contains(k.ids, id) {
			k.ids = append(k.ids, id)
		}
	}
	switch {
	case out.Outcome != done:
	case in.Kind == opPut || in.Kind == opPutAfter || in.Kind == opLeasePut || in.Kind == opGetLatest:
		add(out.ID)
		k.head = out.ID
	case in.Kind == opList:
		for _, e := range out.List {
			add(e.ID)
		}
		k.head = ""
		if len(out.List) > 0 {
			k.head = out.List[0].ID
		}
	case in.Kind == opDeleteThread:
		k.head = ""
	case in.Kind == opForkInto:
		add(in.ID) // a fork into this thread (it was empty): the copy is its only checkpoint
		k.head = in.ID
	}
}

// pick returns the newest id seen, and a random id among the last few seen ("" when none).
func (k *knowledge) pick(rng *rand.Rand) (head, some string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) == 0 {
		return k.head, ""
	}
	recent := k.ids[max(0, len(k.ids)-6):]
	return k.head, recent[rng.IntN(len(recent))]
}

// opRequest is one operation as a client runs it: the model's input and how to run it.
type opRequest struct {
	In          mInput
	Table       string
	Timeout     time.Duration // the call's context deadline
	StmtTimeout bool          // through the pool whose sessions have statement_timeout = 25ms
	Tx          string        // "", "rc" or "rr": inside a caller transaction (WithTx) at that level
	Kill        time.Duration // a client process is SIGKILLed this long after it was sent the request (0: not)
}

// draw makes the next random operation of a client.
func (ep *epoch) draw(cfg checkerConfig, rng *rand.Rand, tags *atomic.Int64) opRequest {
	th := ep.threads[rng.IntN(len(ep.threads))]
	head, some := ep.know[th].pick(rng)
	in := mInput{Thread: th, Cap: ep.cap, Budget: ep.budget}
	switch r := rng.IntN(100); {
	case r < 6:
		// A fork from one of the epoch's threads, of a checkpoint seen there (or of an id no put made),
		// mostly into a fresh thread, sometimes into another fork's target or another of the epoch's
		// threads (ErrThreadExists unless it is empty just then; without History there, so that the
		// copy is known exactly).
		in.Kind, in.From = opFork, th
		switch rng.IntN(10) {
		case 0:
		case 1, 2, 3, 4, 5, 6:
			in.ID = head
		default:
			in.ID = some
		}
		if in.ID == "" {
			in.ID = fmt.Sprintf("%08x-0000-7000-8000-%012x", rng.Uint32(), rng.Uint64()&(1<<48-1))
		}
		if rng.IntN(5) != 0 {
			// History only into a fresh target: what the model allows a History fork to copy stands on
			// a thread that is empty until the fork lands and then gets only puts, with higher ids
			// (completeForks; forked in model_test.go).
			history := rng.IntN(2) == 0
			if in.To = ep.newTarget(); in.To != "" {
				in.History = history
			}
		}
		if in.To == "" && rng.IntN(2) == 0 {
			in.To = ep.pickTarget(rng) // a target another fork named: ErrThreadExists, or the copy if that fork failed
		}
		if in.To == "" {
			others := slices.DeleteFunc(slices.Clone(ep.threads), func(o string) bool { return o == th })
			in.To = others[rng.IntN(len(others))]
		}
		if in.History {
			in.Via = "history"
		}
	case r < 14 && ep.pickTarget(rng) != "":
		// An operation on a fork target: a put, a list or a read of the newest (nothing that names an id:
		// see forked in model_test.go).
		in.Thread = ep.pickTarget(rng)
		switch r % 4 {
		case 0, 1:
			in.Kind = opPut
		case 2:
			in.Kind = opList
		default:
			in.Kind = opGetLatest
		}
	case r < 22:
		in.Kind = opPut
	case r < 30:
		ep.drawLease(rng, &in)
	case r < 45:
		in.Kind = opPutAfter
		switch r % 3 {
		case 0:
			in.Head, in.Via = head, "right"
		case 1:
			in.Head, in.Via = some, "stale"
		default:
			in.Head, in.Via = "", "empty"
		}
	case r < 55:
		in.Kind = opGetLatest
	case r < 62:
		in.Kind, in.ID = opGetByID, some
	case r < 74:
		in.Kind = opList
	case r < 92:
		in.Kind, in.ID = opDeleteOne, some
	case r < 95:
		in.Kind = opDeleteThread
	default:
		in.Kind = opPrune
	}
	if in.Kind == opPut || in.Kind == opPutAfter || in.Kind == opLeasePut {
		in.Tag = int(tags.Add(1))
	}
	if (in.Kind == opGetByID || in.Kind == opDeleteOne) && in.ID == "" {
		in.Kind, in.ID = opGetLatest, ""
	}
	req := opRequest{In: in, Table: ep.table, Timeout: opTimeout}
	// A lease lives on the pool it was granted on (the main one) and runs its own transactions.
	plain := in.Kind != opPrune && !isLease(in.Kind)
	switch r := rng.IntN(100); {
	case r < 6 && cfg.faults["deadline"]:
		req.Timeout = time.Duration(1+rng.IntN(15)) * time.Millisecond
		req.In.Via = strings.TrimSpace(req.In.Via + " deadline")
	case r < 11 && cfg.faults["stmt-timeout"] && !isLease(in.Kind):
		req.StmtTimeout = true
		req.In.Via = strings.TrimSpace(req.In.Via + " stmt-timeout")
	case r < 19 && cfg.faults["tx-rc"] && plain:
		req.Tx = "rc"
		req.In.Via = strings.TrimSpace(req.In.Via + " tx-rc")
	case r < 22 && cfg.faults["tx-rr"] && plain:
		req.Tx = "rr"
		req.In.Via = strings.TrimSpace(req.In.Via + " tx-rr")
	}
	if cfg.faults["kill"] && rng.IntN(200) == 0 {
		req.Kill = time.Duration(1+rng.IntN(20)) * time.Millisecond
	}
	return req
}

// drawLease makes in a lease operation on its thread, with the epoch's TTL: Acquire 20%, a put through
// the client's lease 50% (one in five of them through the lease it held before its last grant, which
// that grant superseded), Renew 20%, Release 10%. A client never gives a lease up: it goes on using a
// lease it lost or released until it is granted another; a client that stops using a lease it holds is
// an owner that crashed.
func (ep *epoch) drawLease(rng *rand.Rand, in *mInput) {
	in.TTL = ep.ttl
	switch r := rng.IntN(10); {
	case r < 2:
		in.Kind = opAcquire
	case r < 7:
		in.Kind, in.Prev = opLeasePut, r == 6
	case r < 9:
		in.Kind = opRenew
	default:
		in.Kind = opRelease
	}
	if in.Prev {
		in.Via = "prev"
	}
}

// ownLease names the client as the owner of a lease operation and makes one that goes through the
// client's lease an Acquire while the client was never granted the thread.
func ownLease(in *mInput, owner string, granted map[string]bool) {
	if !isLease(in.Kind) {
		return
	}
	in.Owner = owner
	if in.Kind != opAcquire && !granted[owner+"/"+in.Thread] {
		in.Kind, in.Prev, in.Tag, in.Via = opAcquire, false, 0, strings.TrimSpace(strings.TrimPrefix(in.Via, "prev"))
	}
}

// runEpoch runs the local client goroutines, the worker processes' clients and the fault injector until
// the epoch's time is up, and waits for all of them.
func runEpoch(t *testing.T, cfg checkerConfig, ep *epoch, env *executor, workers []*checkerWorker, admin *sql.DB, proxy *dropProxy,
	app, schema string, local int, seed uint64, tags *atomic.Int64, stats *checkerStats) {
	end := time.Now().Add(cfg.epoch)
	var wg sync.WaitGroup
	client := func(id int, owner func() string, run func(opRequest) mOutput) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, uint64(id)))
		granted := map[string]bool{} // owner/thread: the threads the client's owner was granted a lease of
		for time.Now().Before(end) && !t.Failed() {
			req := ep.draw(cfg, rng, tags)
			ownLease(&req.In, owner(), granted)
			call := time.Now()
			out := run(req)
			if req.In.Kind == opAcquire && out.Outcome == done {
				granted[req.In.Owner+"/"+req.In.Thread] = true
			}
			ep.record(id, req.In, out, call, time.Now())
			stats.op(req.In, out)
		}
	}
	for c := range local {
		wg.Add(1)
		go client(c, func() string { return fmt.Sprintf("c%d", c) }, func(req opRequest) mOutput { return env.run(context.Background(), req) })
	}
	for i, w := range workers {
		wg.Add(1)
		// Each incarnation of a worker process is an owner of its own: a killed one's leases are left to expire.
		go client(local+i, func() string { return fmt.Sprintf("c%d.%d", local+i, w.gen) }, func(req opRequest) mOutput {
			req.In.Via = strings.TrimSpace(w.name + " " + req.In.Via)
			return w.run(t, req)
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		injectFaults(cfg, ep, admin, proxy, app, schema, env, rand.New(rand.NewPCG(seed, 1000)), end, stats)
	}()
	wg.Wait()
}

// injectFaults injects one fault every 20-150 ms until end.
func injectFaults(cfg checkerConfig, ep *epoch, admin *sql.DB, proxy *dropProxy, app, schema string, env *executor,
	rng *rand.Rand, end time.Time, stats *checkerStats) {
	var kinds []string
	for _, f := range []string{"terminate", "proxy-commit", "proxy-stmt", "lock", "ensure"} {
		if cfg.faults[f] {
			kinds = append(kinds, f)
		}
	}
	if cfg.faults["rekey"] && checkerKeys(ep.table, "k1") != nil {
		// Rekey as often as all the others together.
		kinds = append(kinds, slices.Repeat([]string{"rekey"}, max(len(kinds), 1))...)
	}
	if len(kinds) == 0 {
		return
	}
	rekeys := 0 // rekeys run so far: each turns to the other key
	table := `"` + schema + `"."` + ep.table + `"`
	if env.storage == pgcheckpoint.StorageDelta {
		table = `"` + schema + `"."` + ep.table + `_heads"` // the lock fault holds the heads' row locks
	}
	for {
		pause := time.Duration(20+rng.IntN(130)) * time.Millisecond
		if time.Until(end) < pause {
			return
		}
		time.Sleep(pause) // the pace of the faults, not a synchronisation
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		kind := kinds[rng.IntN(len(kinds))]
		var err error
		switch kind {
		case "terminate":
			_, err = admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name LIKE $1 || '%' ORDER BY random() LIMIT 1`, app)
		case "proxy-commit":
			proxy.armedCommit.Add(1)
		case "proxy-stmt":
			proxy.armedAny.Add(1)
		case "lock":
			err = holdThreadLock(ctx, admin, table, ep.threads[rng.IntN(len(ep.threads))], time.Duration(5+rng.IntN(60))*time.Millisecond)
		case "ensure":
			err = ensureTables(ctx, env.checkpointer(ep.table, ep.cap, ep.budget, false))
		case "rekey":
			var n int64
			n, err = env.rekey(ctx, ep.table, rekeyTo[rekeys%2])
			rekeys++
			stats.add("rows resealed by rekey", n)
		}
		cancel()
		if err == nil {
			stats.fault(kind)
		}
	}
}

// holdThreadLock locks every row of a thread (FOR UPDATE) from another connection for d.
func holdThreadLock(ctx context.Context, db *sql.DB, table, thread string, d time.Duration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM `+table+` WHERE thread_id = $1 FOR UPDATE`, thread); err != nil {
		return err
	}
	time.Sleep(d) // the lock wait is the fault
	return tx.Commit()
}

// finalReads reads every thread once more after the clients stopped, without faults, so that the last
// state is in the history and unknown puts are resolved by what is there.
func finalReads(t *testing.T, ep *epoch, x *executor, stats *checkerStats) {
	for _, th := range ep.allThreads() {
		for _, kind := range []opKind{opList, opGetLatest} {
			req := opRequest{In: mInput{Thread: th, Kind: kind, Cap: ep.cap, Budget: ep.budget, Via: "final"}, Table: ep.table, Timeout: 30 * time.Second}
			call := time.Now()
			out := x.run(context.Background(), req)
			if out.Outcome == unknown {
				t.Fatalf("final read of %s failed without faults", th)
			}
			ep.record(-1, req.In, out, call, time.Now())
		}
	}
}

// checkHistory completes the epoch's history (the ids that reads revealed for unknown puts, "infinite"
// return times) and checks it; on a violation it writes the visualisation and reports false.
func checkHistory(t *testing.T, cfg checkerConfig, name string, ep *epoch, stats *checkerStats) bool {
	seen := map[int]string{} // tag -> id a read returned it under
	var last int64
	for _, op := range ep.ops {
		out := op.Output.(mOutput)
		if out.Outcome == done {
			if out.Tag != 0 {
				seen[out.Tag] = out.ID
			}
			for _, e := range out.List {
				seen[e.Tag] = e.ID
			}
		}
		last = max(last, op.Call, op.Return)
	}
	ops := dropIdlePrunes(ep.ops)
	completeForks(ops, seen)
	for i, op := range ops {
		if op.ClientId < 0 {
			ops[i].ClientId = 99 // final reads: a client of their own in the visualisation
		}
		if op.Return == pending {
			out := op.Output.(mOutput)
			if in := op.Input.(mInput); out.ID == "" && in.Tag != 0 {
				out.ID = seen[in.Tag]
			}
			ops[i].Output, ops[i].Return = out, last+1
		}
	}
	stats.histories++
	stats.recorded += len(ops)
	stats.maxPerHistory = max(stats.maxPerHistory, len(ops))
	res, info := porcupine.CheckOperationsVerbose(threadModel, ops, 60*time.Second)
	switch res {
	case porcupine.Unknown:
		stats.unknownHistories++
		t.Logf("%s: the checker timed out on %d operations: inconclusive", name, len(ops))
	case porcupine.Illegal:
		path := filepath.Join(cfg.out, fmt.Sprintf("pgcheckpoint-checker-seed%d-%s.html", cfg.seed, strings.ReplaceAll(name, "/", "-")))
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			t.Logf("output directory: %v", err)
		}
		if err := porcupine.VisualizePath(threadModel, info, path); err != nil {
			t.Logf("visualisation: %v", err)
		} else {
			t.Logf("NOT LINEARIZABLE: %s; visualisation: %s", name, path)
		}
		writeFailingThreads(t, strings.TrimSuffix(path, ".html")+".txt", ops)
		return false
	}
	return true
}

// dropIdlePrunes leaves out the prunes of a thread that returned before its first write (a put or a fork
// into it that succeeded or may have) was called: the thread was empty, the prune did nothing there.
// Most of the epoch's fork targets are made late or never written, and a prune is recorded in each.
func dropIdlePrunes(ops []porcupine.Operation) []porcupine.Operation {
	first := map[string]int64{}
	for _, op := range ops {
		in, out := op.Input.(mInput), op.Output.(mOutput)
		if (in.Kind == opPut || in.Kind == opPutAfter || in.Kind == opLeasePut || in.Kind == opForkInto) && (out.Outcome == done || out.Outcome == unknown) {
			if at, ok := first[in.Thread]; !ok || op.Call < at {
				first[in.Thread] = op.Call
			}
		}
	}
	var kept []porcupine.Operation
	for _, op := range ops {
		in := op.Input.(mInput)
		if at, ok := first[in.Thread]; in.Kind == opPrune && op.Return != pending && (!ok || op.Return < at) {
			continue
		}
		kept = append(kept, op)
	}
	return kept
}

// completeForks fills in each fork's target half what the model needs and the client did not know: the
// tag of the checkpoint forked (ids are unique to a put, and a copy keeps its tag, so any call that
// revealed the id says it) and, for a fork with History, the older checkpoints it may have copied: those
// that reads of the target revealed with ids below the forked one (a put into the target after the fork
// gets a higher id, and one before it makes the fork fail with ErrThreadExists).
func completeForks(ops []porcupine.Operation, seen map[int]string) {
	tagOf := map[string]int{}
	for tag, id := range seen {
		tagOf[id] = tag
	}
	revealed := map[string][]mEntry{} // thread -> entries its reads returned
	for _, op := range ops {
		in, out := op.Input.(mInput), op.Output.(mOutput)
		if out.Outcome != done {
			continue
		}
		switch in.Kind {
		case opPut, opPutAfter, opLeasePut:
			tagOf[out.ID] = in.Tag
		case opGetLatest, opGetByID:
			revealed[in.Thread] = append(revealed[in.Thread], mEntry{ID: out.ID, Tag: out.Tag})
		case opList:
			revealed[in.Thread] = append(revealed[in.Thread], out.List...)
		}
	}
	for i, op := range ops {
		in := op.Input.(mInput)
		if in.Kind != opForkFrom && in.Kind != opForkInto {
			continue
		}
		in.Tag = -2 // an id nobody revealed: no checkpoint of it, the model accepts no copy with tag -2
		if tag, ok := tagOf[in.ID]; ok {
			in.Tag = tag
		}
		if in.Kind == opForkInto && in.History {
			in.Cands = nil
			for _, e := range revealed[in.Thread] {
				if e.ID < in.ID && !slices.Contains(in.Cands, e) {
					in.Cands = append(in.Cands, e)
				}
			}
			slices.SortFunc(in.Cands, func(a, b mEntry) int { return strings.Compare(a.ID, b.ID) })
		}
		ops[i].Input = in
	}
}

// executor runs operations for one client process: a bounded pool, a second one with a statement
// timeout, and a Checkpointer per table.
type executor struct {
	db, stDB *sql.DB
	dialect  pgcheckpoint.Dialect
	storage  pgcheckpoint.Storage
	schema   string
	// keyless: the Checkpointers of encrypted tables get no keys (the setup of a migratedTable).
	keyless bool
	mu      sync.Mutex
	cps     map[string]*pgcheckpoint.Checkpointer
	leases  map[string][2]*pgcheckpoint.Lease // table/thread/owner -> the client's lease, and the one before
}

func newExecutor(t testing.TB, driverName, dsn string, d pgcheckpoint.Dialect, schema string) *executor {
	x, err := openExecutor(driverName, dsn, d, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.db.Close(); x.stDB.Close() })
	return x
}

func openExecutor(driverName, dsn string, d pgcheckpoint.Dialect, schema string) (*executor, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	st, err := sql.Open(driverName, dsnWith(dsn, "statement_timeout", "25"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConnsPerPool)
	st.SetMaxOpenConns(2)
	return &executor{db: db, stDB: st, dialect: d, schema: schema, cps: map[string]*pgcheckpoint.Checkpointer{}}, nil
}

// newExecutorOn runs everything on db (the final reads, on the admin pool).
func newExecutorOn(db *sql.DB, d pgcheckpoint.Dialect, schema string, storage pgcheckpoint.Storage) *executor {
	return &executor{db: db, stDB: db, dialect: d, schema: schema, storage: storage, cps: map[string]*pgcheckpoint.Checkpointer{}}
}

// checkpointer returns the Checkpointer of a table, cap and byte budget, on the statement-timeout pool
// if st.
func (x *executor) checkpointer(table string, cap int, budget int64, st bool) *pgcheckpoint.Checkpointer {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := fmt.Sprintf("%s/%d/%d/%v", table, cap, budget, st)
	if cp := x.cps[key]; cp != nil {
		return cp
	}
	db := x.db
	if st {
		db = x.stDB
	}
	var keys pgcheckpoint.KeyProvider
	if !x.keyless {
		keys = checkerKeys(table, "k1")
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: x.dialect, Schema: x.schema, Table: table, MaxCheckpointsPerThread: cap,
		MaxBytesPerThread: budget, Storage: x.storage, Keys: keys})
	if err != nil {
		panic(err)
	}
	x.cps[key] = cp
	return cp
}

// Encrypted epochs (docs/checker.md, "Encryption"): every other epoch's table is encrypted, and its
// clients (goroutines, worker processes, the final reads) hold a ring of both keys, k1 current; the
// "rekey" fault runs Rekey on it with k2 or k1 current by turns, so rows move between keys while the
// clients put, delete, prune, fork and lease, and the connections are cut and killed. Half of those
// tables require encryption from the start; the other half (migratedTable) are made without keys, so
// the first rekey takes them from none through migrating to required under the same load. Rekey must
// change no checkpoint: the model has no operation for it, and an encryption error of any client is
// sealBroken, which no state allows.
const (
	encryptedTable = "_enc"  // made with keys: EncryptionRequired from the start
	migratedTable  = "_encm" // made without keys: EncryptionNone until the first rekey
)

// rekeyTo is the current key of each rekey by turns.
var rekeyTo = [2]string{"k2", "k1"}

// encryptedSuffixOf is epoch e's table suffix: odd epochs are encrypted, by turns from the start or
// by migration.
func encryptedSuffixOf(e int) string {
	switch e % 4 {
	case 1:
		return encryptedTable
	case 3:
		return migratedTable
	}
	return ""
}

// checkerKeys is the ring of an encrypted epoch's table with current first (nil for a plaintext
// table). Both keys are in every ring, so every client reads every row whichever key sealed it.
func checkerKeys(table, current string) pgcheckpoint.KeyProvider {
	if !strings.HasSuffix(table, encryptedTable) && !strings.HasSuffix(table, migratedTable) {
		return nil
	}
	key := func(id string) pgcheckpoint.Key {
		k, err := pgcheckpoint.NewKey(id, bytes.Repeat([]byte(id), pgcheckpoint.KeySize)[:pgcheckpoint.KeySize])
		if err != nil {
			panic(err)
		}
		return k
	}
	other := map[string]string{"k1": "k2", "k2": "k1"}[current]
	r, err := pgcheckpoint.NewKeyRing(key(current), key(other))
	if err != nil {
		panic(err)
	}
	return r
}

// rekey runs one small Rekey pass of the table with current the current key, on the clients' pool
// (through the proxy: its connections are cut too), following the table's policy.
func (x *executor) rekey(ctx context.Context, table, current string) (int64, error) {
	cp, err := pgcheckpoint.New(x.db, pgcheckpoint.Options{Dialect: x.dialect, Schema: x.schema, Table: table, Storage: x.storage,
		Keys: checkerKeys(table, current)})
	if err != nil {
		return 0, err
	}
	res, err := cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: 3})
	return res.Resealed, err
}

// run runs one operation and says what its result means for the model.
func (x *executor) run(ctx context.Context, req opRequest) mOutput {
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	cp := x.checkpointer(req.Table, req.In.Cap, req.In.Budget, req.StmtTimeout)
	if isLease(req.In.Kind) {
		return x.runLease(ctx, cp, req.Table, req.In)
	}
	if req.Tx == "" {
		out, err := callOp(ctx, cp, req.In)
		return classify(req.In, out, err)
	}
	db := x.db
	if req.StmtTimeout {
		db = x.stDB
	}
	level := sql.LevelReadCommitted
	if req.Tx == "rr" {
		level = sql.LevelRepeatableRead
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: level})
	if err != nil {
		return mOutput{Outcome: failed}
	}
	out, err := callOp(ctx, cp.WithTx(tx), req.In)
	res := classify(req.In, out, err)
	if res.Outcome != done && res.Outcome != notFound {
		if tx.Rollback() == nil {
			return mOutput{Outcome: failed} // rolled back: nothing was written
		}
		return mOutput{Outcome: unknown}
	}
	if err := tx.Commit(); err != nil {
		return mOutput{Outcome: unknown, ID: res.ID}
	}
	return res
}

// runLease runs a lease operation. A grant becomes the client's lease of the thread, and the lease it
// held until then its previous one; the other operations go through the client's lease (in.Prev: the
// previous one) and fail, with nothing done, when it holds none.
func (x *executor) runLease(ctx context.Context, cp *pgcheckpoint.Checkpointer, table string, in mInput) mOutput {
	key := table + "/" + in.Thread + "/" + in.Owner
	x.mu.Lock()
	if x.leases == nil {
		x.leases = map[string][2]*pgcheckpoint.Lease{}
	}
	mine := x.leases[key]
	x.mu.Unlock()
	if in.Kind == opAcquire {
		l, err := cp.Acquire(ctx, in.Thread, in.Owner, in.TTL)
		if err != nil {
			return classify(in, mOutput{}, err)
		}
		x.mu.Lock()
		x.leases[key] = [2]*pgcheckpoint.Lease{l, mine[0]}
		x.mu.Unlock()
		return mOutput{Outcome: done, Token: l.Token}
	}
	l := mine[0]
	if in.Prev {
		l = mine[1]
	}
	if l == nil {
		return mOutput{Outcome: failed}
	}
	var out mOutput
	var err error
	switch in.Kind {
	case opRenew:
		err = l.Renew(ctx, in.TTL)
	case opRelease:
		err = l.Release(ctx)
	case opLeasePut:
		out.ID, err = l.Put(ctx, checkerSnapshot(in.Tag))
	}
	out = classify(in, out, err)
	out.Token = l.Token
	return out
}

// checkerSnapshot is the snapshot a put of tag writes: the tag twice, as the version column and in the
// document, so a list (metadata only) and a get both say which put wrote the row; and padding of a
// length the tag decides (the snapshot is about 80-320 bytes), so that the model knows every checkpoint's size
// for the byte budget.
func checkerSnapshot(tag int) []byte {
	// steps gives delta tables items: a put whose tag is in the same group of five as the thread's last
	// one shares a prefix of its array, others start it afresh.
	steps := make([]string, 0, 5)
	for i := tag - tag%5; i <= tag; i++ {
		steps = append(steps, fmt.Sprintf(`"s%d"`, i))
	}
	return fmt.Appendf(nil, `{"version": %d, "tag": %d, "steps": [%s], "pad": "%s"}`, tag, tag, strings.Join(steps, ", "), strings.Repeat("x", 30+(tag*37)%200))
}

// readTag is the tag of a snapshot read back: -1 (a tag no put wrote, which the model accepts nowhere)
// unless the whole snapshot is the one checkerSnapshot makes for it, so a wrong item, a lost or doubled
// array element or a wrong head anywhere in it fails the history.
func readTag(c pgcheckpoint.Checkpoint) int {
	var doc struct{ Tag int }
	if json.Unmarshal(c.Snapshot, &doc) != nil || doc.Tag != int(c.Version) {
		return -1
	}
	var got, want any
	if json.Unmarshal(c.Snapshot, &got) != nil || json.Unmarshal(checkerSnapshot(doc.Tag), &want) != nil || !reflect.DeepEqual(got, want) {
		return -1
	}
	return doc.Tag
}

// callOp makes the library call of in.
func callOp(ctx context.Context, cp *pgcheckpoint.Checkpointer, in mInput) (mOutput, error) {
	var out mOutput
	var err error
	switch in.Kind {
	case opPut:
		out.ID, err = cp.Put(ctx, in.Thread, checkerSnapshot(in.Tag))
	case opPutAfter:
		out.ID, err = putAfter(cp, ctx, in.Thread, in.Head, checkerSnapshot(in.Tag))
	case opGetLatest, opGetByID:
		var c pgcheckpoint.Checkpoint
		if in.Kind == opGetLatest {
			c, err = cp.Latest(ctx, in.Thread)
		} else {
			c, err = cp.Get(ctx, in.Thread, in.ID)
		}
		if err == nil {
			out.ID, out.Tag = c.ID, readTag(c)
		}
	case opList:
		var cs []pgcheckpoint.Checkpoint
		cs, err = cp.List(ctx, in.Thread, pgcheckpoint.ListOptions{Limit: -1})
		out.List = []mEntry{}
		for _, c := range cs {
			out.List = append(out.List, mEntry{ID: c.ID, Tag: int(c.Version)})
		}
	case opDeleteOne:
		err = cp.Delete(ctx, in.Thread, in.ID)
	case opDeleteThread:
		err = cp.DeleteThread(ctx, in.Thread)
	case opPrune:
		_, err = cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: time.Microsecond})
	case opFork:
		_, err = cp.Fork(ctx, in.From, in.ID, in.To, pgcheckpoint.ForkOptions{History: in.History})
	}
	return out, err
}

// classify turns a call's error into the model's outcome. Only errors that say nothing was written are
// taken at their word (bad input, a fenced put's ErrConflict); every other error, the library's own
// ErrRetriesExhausted and context errors included, may hide a commit.
func classify(in mInput, out mOutput, err error) mOutput {
	switch {
	case err == nil:
		out.Outcome = done
	case errors.Is(err, pgcheckpoint.ErrDecryptFailed), errors.Is(err, pgcheckpoint.ErrKeyMissing), errors.Is(err, pgcheckpoint.ErrEncryptionRequired):
		out = mOutput{Outcome: sealBroken}
	case errors.Is(err, pgcheckpoint.ErrOutcomeUnknown):
		// Said in so many words: a fenced put's ErrConflict after an attempt with an unknown outcome
		// carries it too, and must not be read as "nothing written".
		out = mOutput{Outcome: unknown}
	case errors.Is(err, pgcheckpoint.ErrNotFound) && (in.Kind == opGetLatest || in.Kind == opGetByID || in.Kind == opFork):
		out = mOutput{Outcome: notFound}
	case errors.Is(err, pgcheckpoint.ErrThreadExists) && in.Kind == opFork:
		out = mOutput{Outcome: exists}
	case errors.Is(err, pgcheckpoint.ErrConflict) && in.Kind == opPutAfter:
		out = mOutput{Outcome: conflict}
	case errors.Is(err, pgcheckpoint.ErrLeaseHeld) && in.Kind == opAcquire:
		out = mOutput{Outcome: held}
	case errors.Is(err, pgcheckpoint.ErrLeaseLost) && (in.Kind == opRenew || in.Kind == opLeasePut):
		out = mOutput{Outcome: lost}
	case errors.Is(err, pgcheckpoint.ErrInvalidSnapshot), errors.Is(err, pgcheckpoint.ErrInvalidThreadID),
		errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge), errors.Is(err, pgcheckpoint.ErrInvalidOptions):
		out = mOutput{Outcome: failed}
	default:
		out = mOutput{Outcome: unknown}
	}
	return out
}

// dsnHost is the host:port of a URL DSN.
func dsnHost(t testing.TB, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("the checker needs a URL DSN, got %q", dsn)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// withProxy points a URL DSN at the proxy's port.
func withProxy(t testing.TB, dsn string, port int) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:" + strconv.Itoa(port)
	return u.String()
}

// dsnWith sets a parameter of a URL DSN (withParam without a testing.TB, for worker processes).
func dsnWith(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// checkerWorker is a client process (helper mode "checker"): it runs one operation per request line.
// The test takes the invoke and return times around each request, so the interval it records contains
// the real one: one clock for every process, and a wider interval only allows more orders.
type checkerWorker struct {
	h    *helper
	spec helperSpec
	name string
	gen  int // the processes killed so far (only its client's goroutine uses h and gen)
}

// run sends req to the worker and reads its answer. With req.Kill the process is SIGKILLed that long
// after the request was sent, and a new one started: a call it had not answered has an unknown outcome.
func (w *checkerWorker) run(t *testing.T, req opRequest) mOutput {
	raw, _ := json.Marshal(req)
	w.h.send(string(raw))
	var kill *time.Timer
	if req.Kill > 0 {
		h := w.h
		kill = time.AfterFunc(req.Kill, func() { _ = h.cmd.Process.Kill() })
	}
	line, ok := w.h.next()
	if kill != nil && !kill.Stop() {
		w.h.rest() // killed while it ran the request, or right after it answered
		w.h, w.gen = startHelper(t, w.spec), w.gen+1
		if !ok {
			return mOutput{Outcome: unknown}
		}
	}
	var out mOutput
	if !ok || json.Unmarshal([]byte(line), &out) != nil {
		t.Errorf("checker worker %s: %q, %s", w.name, line, w.h.diag())
		return mOutput{Outcome: unknown}
	}
	return out
}

// helperChecker is the worker process's side: one JSON opRequest per stdin line, one JSON mOutput per
// stdout line.
func helperChecker(s helperSpec) int {
	d := pgcheckpoint.PostgreSQL
	if s.Dialect == pgcheckpoint.CockroachDB.Name() {
		d = pgcheckpoint.CockroachDB
	}
	x, err := openExecutor(s.Driver, s.DSN, d, s.Schema)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var req opRequest
		if err := dec.Decode(&req); err != nil {
			return 0
		}
		if err := enc.Encode(x.run(context.Background(), req)); err != nil {
			return 2
		}
	}
}

// writeFailingThreads writes, for each thread whose history alone is not linearizable, its operations
// in call order (times in ms from the epoch's start; "inf": unknown outcome), for reading by hand.
func writeFailingThreads(t *testing.T, path string, ops []porcupine.Operation) {
	var b strings.Builder
	for _, part := range partitionByThread(ops) {
		if porcupine.CheckOperationsTimeout(threadModel, part, 10*time.Second) == porcupine.Ok {
			continue
		}
		part = slices.Clone(part)
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
		at := firstViolation(part)
		fmt.Fprintf(&b, "thread %s: not linearizable; the shortest prefix that is not ends with the return at %.3f ms (>>)\n",
			part[0].Input.(mInput).Thread, float64(at)/1e6)
		last := slices.MaxFunc(part, func(a, b porcupine.Operation) int { return int(a.Return - b.Return) }).Return
		for _, op := range part {
			if op.Return == at {
				b.WriteString(">>")
			} else {
				b.WriteString("  ")
			}
			ret := fmt.Sprintf("%.3f", float64(op.Return)/1e6)
			if op.Return >= last && op.Output.(mOutput).Outcome == unknown {
				ret = "inf"
			}
			fmt.Fprintf(&b, "c%-2d %9.3f %9s  %s\n", op.ClientId, float64(op.Call)/1e6, ret, describeOperation(op.Input, op.Output))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err == nil {
		t.Logf("failing threads' histories: %s", path)
	}
}

// firstViolation finds, by bisection, the earliest return time T such that the history as it stood at T
// is not linearizable: operations called after T left out, reads still running left out, writes still
// running turned into unknown outcomes. The operation returning at T is where the contract broke.
func firstViolation(part []porcupine.Operation) int64 {
	var times []int64
	for _, op := range part {
		if op.Output.(mOutput).Outcome != unknown {
			times = append(times, op.Return)
		}
	}
	slices.Sort(times)
	lo, hi := 0, len(times)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if porcupine.CheckOperationsTimeout(threadModel, prefixAt(part, times[mid]), 5*time.Second) == porcupine.Illegal {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return times[lo]
}

// prefixAt is the history as it stood at time at (see firstViolation).
func prefixAt(part []porcupine.Operation, at int64) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range part {
		o := op.Output.(mOutput)
		switch in := op.Input.(mInput); {
		case op.Call > at:
		case op.Return <= at && o.Outcome != unknown:
			out = append(out, op)
		case in.Kind == opGetLatest || in.Kind == opGetByID || in.Kind == opList || in.Kind == opForkFrom:
		default:
			op.Output, op.Return = mOutput{Outcome: unknown, ID: o.ID, Token: o.Token}, at+1
			out = append(out, op)
		}
	}
	return out
}
