package integration

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// helperEnv carries the JSON helperSpec of a worker process; TestMain runs the worker when it is set.
const helperEnv = "PGCHECKPOINT_HELPER"

// helperSpec tells a worker process what to do. Workers speak a line protocol on stdin/stdout, fields
// separated by tabs.
type helperSpec struct {
	// Mode is one of:
	//   fence:  for every stdin line "THREAD\tHEAD", Goroutines concurrent PutAfter(THREAD, HEAD); one line
	//           per goroutine ("win\tID", "conflict\tindex|head", "error\tMSG"), then "done".
	//   crash:  writes forever, PutAfter its own head on Threads[0] (retention Cap) and Put on Threads[1]
	//           (no retention, in UncappedSchema: a table has one policy); after each put returns,
	//           "ack\tTHREAD\tI\tID". Killed by the test.
	//   write:  Goroutines writers, each Puts puts to every thread of Threads in turn; "id\tG\tTHREAD\tID\tATTEMPTS"
	//           per put, exit status 1 after the first error ("error\tMSG").
	//   checker: one JSON opRequest per stdin line, one JSON result per stdout line (linearizability_test.go).
	//   rekey:  Rekey with batch Puts after After; "batch\tTHREAD\tID\tRESEALED" per batch, then
	//           "done\tSTATE\tRESEALED" or "error\tMSG".
	//   ensure: prints "ready", waits for a stdin line, runs EnsureSchema, prints "ok" or "error\tMSG".
	Mode    string
	Driver  string
	DSN     string
	Dialect string // "postgres" or "cockroach"
	Schema  string
	Cap     int
	// UncappedSchema (crash) holds the table of Threads[1], which keeps every checkpoint.
	UncappedSchema string
	Threads        []string
	Puts           int
	Goroutines     int
	Iteration      int           // crash: tags the snapshots of this run
	Seed           int64         // crash: snapshot sizes
	ClockLag       time.Duration // write: ids are made from a clock this far behind
	Attempts       int           // Options.MaxAttempts
	LeaseTTL       time.Duration // lease: the ttl of each grant (lease_test.go)
	Storage        string        // the table's storage: "" or "full", "delta"
	// Keys is the key ring (ParseKeyRing's format) of Options.Keys; rekey: After (THREAD/ID) and Puts
	// (the batch) are Rekey's options (rekey_test.go).
	Keys  string
	After pgcheckpoint.RekeyPosition
}

func (tg target) spec(mode, schema string) helperSpec {
	return helperSpec{Mode: mode, Driver: tg.driver, DSN: tg.dsn, Dialect: tg.dialect.Name(), Schema: schema, Goroutines: 1,
		Storage: tg.storage.String()}
}

// runHelper is the worker process's main; it returns the exit status.
func runHelper(raw string) int {
	var s helperSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, "bad helper spec:", err)
		return 2
	}
	db, err := sql.Open(s.Driver, s.DSN)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	defer db.Close()
	db.SetMaxOpenConns(min(max(s.Goroutines, 1), 2))
	d := pgcheckpoint.PostgreSQL
	if s.Dialect == pgcheckpoint.CockroachDB.Name() {
		d = pgcheckpoint.CockroachDB
	}
	storage, err := pgcheckpoint.ParseStorage(s.Storage)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storage:", err)
		return 2
	}
	opts := pgcheckpoint.Options{Dialect: d, Schema: s.Schema, MaxCheckpointsPerThread: s.Cap, MaxAttempts: s.Attempts,
		Observer: attemptsObserver, Storage: storage}
	if s.Keys != "" {
		if opts.Keys, err = pgcheckpoint.ParseKeyRing(s.Keys); err != nil {
			fmt.Fprintln(os.Stderr, "keys:", err)
			return 2
		}
	}
	if s.ClockLag != 0 {
		opts.Clock = func() time.Time { return time.Now().Add(-s.ClockLag) }
	}
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		return 2
	}
	out := &lineWriter{w: os.Stdout}
	ctx := context.Background()
	switch s.Mode {
	case "fence":
		return helperFence(ctx, cp, s, out)
	case "crash":
		return helperCrash(ctx, db, s, out)
	case "write":
		return helperWrite(ctx, cp, s, out)
	case "checker":
		return helperChecker(s) // linearizability_test.go
	case "lease":
		return helperLease(ctx, cp, s, out) // lease_test.go
	case "rekey":
		return helperRekey(ctx, cp, s, out) // rekey_test.go
	case "ensure":
		out.line("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 2
		}
		if err := cp.EnsureSchema(ctx); err != nil {
			out.line("error", err.Error())
			return 1
		}
		out.line("ok")
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", s.Mode)
	return 2
}

// lineWriter writes whole lines with one write each, so lines of concurrent goroutines never interleave
// and a killed process never leaves half a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(fields ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, strings.Join(fields, "\t")+"\n")
}

func helperFence(ctx context.Context, cp *pgcheckpoint.Checkpointer, s helperSpec, out *lineWriter) int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		thread, head, _ := strings.Cut(in.Text(), "\t")
		results := fencedRace(ctx, cp, thread, head, s.Goroutines, fmt.Sprintf("proc-%d", os.Getpid()))
		for _, r := range results {
			out.line(r...)
		}
		out.line("done")
	}
	return 0
}

// fencedRace starts n goroutines that PutAfter(thread, head) together and returns one result line each.
func fencedRace(ctx context.Context, cp *pgcheckpoint.Checkpointer, thread, head string, n int, who string) [][]string {
	start := make(chan struct{})
	results := make([][]string, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			snap := fmt.Sprintf(`{"writer": %q, "g": %d}`, who, g)
			c, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			id, err := putAfter(cp, c, thread, head, []byte(snap))
			switch {
			case err == nil:
				results[g] = []string{"win", id}
			case errors.Is(err, pgcheckpoint.ErrConflict) && pgcheckpoint.SQLState(err) == "23505":
				results[g] = []string{"conflict", "index"}
			case errors.Is(err, pgcheckpoint.ErrConflict):
				results[g] = []string{"conflict", "head"}
			default:
				results[g] = []string{"error", err.Error()}
			}
		}()
	}
	close(start)
	wg.Wait()
	return results
}

func helperCrash(ctx context.Context, db *sql.DB, s helperSpec, out *lineWriter) int {
	var wg sync.WaitGroup
	fail := make(chan int, 2)
	for w, thread := range s.Threads[:2] {
		cap, schema := s.Cap, s.Schema
		if w == 1 {
			cap, schema = pgcheckpoint.NoLimit, s.UncappedSchema
		}
		d := pgcheckpoint.PostgreSQL
		if s.Dialect == pgcheckpoint.CockroachDB.Name() {
			d = pgcheckpoint.CockroachDB
		}
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: d, Schema: schema, MaxCheckpointsPerThread: cap})
		if err != nil {
			fmt.Fprintln(os.Stderr, "new:", err)
			return 2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			head := ""
			if w == 0 {
				cur, err := cp.Latest(ctx, thread)
				if err != nil && !errors.Is(err, pgcheckpoint.ErrNotFound) {
					out.line("error", err.Error())
					fail <- 1
					return
				}
				head = cur.ID
			}
			for i := 0; ; i++ {
				snap := crashSnapshot(s.Seed, thread, s.Iteration, i)
				var id string
				var err error
				if w == 0 {
					id, err = putAfter(cp, ctx, thread, head, snap)
					head = id
				} else {
					id, err = cp.Put(ctx, thread, snap)
				}
				if err != nil {
					out.line("error", err.Error())
					fail <- 1
					return
				}
				out.line("ack", thread, fmt.Sprint(i), id)
			}
		}()
	}
	code := <-fail
	return code
}

// crashSnapshot is the snapshot a crash worker writes as put i of iteration it: its size, drawn from the
// seed, ranges from a few bytes to 256 KiB, so that kills also land while a snapshot is on the wire.
func crashSnapshot(seed int64, thread string, it, i int) []byte {
	h := uint64(seed) ^ uint64(it)*0x9e3779b97f4a7c15 ^ uint64(i)*0xbf58476d1ce4e5b9
	for _, c := range []byte(thread) {
		h = h*31 + uint64(c)
	}
	h ^= h >> 29
	pad := 0
	switch h % 8 {
	case 0:
		pad = 64 << 10
	case 1:
		pad = 256 << 10
	default:
		pad = int(h>>8) % 2048
	}
	return []byte(fmt.Sprintf(`{"version": %d, "it": %d, "thread": %q, "pad": "%s"}`, i, it, thread, strings.Repeat("x", pad)))
}

func helperWrite(ctx context.Context, cp *pgcheckpoint.Checkpointer, s helperSpec, out *lineWriter) int {
	var wg sync.WaitGroup
	var failed sync.Once
	code := 0
	for g := range s.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range s.Puts {
				for _, thread := range s.Threads {
					c, cancel := context.WithTimeout(ctx, time.Minute)
					var attempts int
					id, err := cp.Put(withAttempts(c, &attempts), thread, []byte(fmt.Sprintf(`{"pid": %d, "g": %d, "j": %d}`, os.Getpid(), g, j)))
					cancel()
					if err != nil {
						out.line("error", err.Error())
						failed.Do(func() { code = 1 })
						return
					}
					out.line("id", fmt.Sprint(g), thread, id, fmt.Sprint(attempts))
				}
			}
		}()
	}
	wg.Wait()
	return code
}

// helper is a worker process seen from the test.
type helper struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // closed at EOF
	stderr *bytes.Buffer
	waited chan struct{}
	err    error // exit status, once waited is closed
}

// startHelper starts a worker process running spec; it is killed (by its pid) at cleanup if still alive.
func startHelper(t testing.TB, spec helperSpec) *helper {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	h := &helper{t: t, cmd: cmd, lines: make(chan string, 1024), stderr: &bytes.Buffer{}, waited: make(chan struct{})}
	cmd.Stderr = h.stderr
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = cmd.Wait()
		close(h.waited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.waited:
		default:
			_ = cmd.Process.Kill()
			<-h.waited
		}
	})
	return h
}

// next returns the worker's next line; ok is false at EOF. It fails the test after a minute of silence.
func (h *helper) next() (line string, ok bool) {
	h.t.Helper()
	select {
	case line, ok = <-h.lines:
		return line, ok
	case <-time.After(time.Minute):
		h.t.Fatalf("worker %d said nothing for a minute (killed it); %s", h.cmd.Process.Pid, h.diag())
		return "", false
	}
}

// diag kills the worker if it still runs, waits for it and describes how it ended, for failure messages.
func (h *helper) diag() string {
	_ = h.cmd.Process.Kill()
	for range h.lines {
	}
	<-h.waited
	return fmt.Sprintf("exit: %v; stderr: %s", h.err, h.stderr.String())
}

// send writes one line to the worker's stdin.
func (h *helper) send(line string) {
	h.t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		h.t.Fatalf("write to worker: %v", err)
	}
}

// kill sends SIGKILL to the worker and returns every line it wrote before dying.
func (h *helper) kill() []string {
	h.t.Helper()
	_ = h.cmd.Process.Kill()
	return h.rest()
}

// rest reads the worker's remaining lines and waits for it to exit.
func (h *helper) rest() []string {
	h.t.Helper()
	var out []string
	for {
		line, ok := h.next()
		if !ok {
			break
		}
		out = append(out, line)
	}
	<-h.waited
	return out
}

type attemptsKey struct{}

// withAttempts returns a context under which attemptsObserver stores the attempts a put took in *n.
func withAttempts(ctx context.Context, n *int) context.Context {
	return context.WithValue(ctx, attemptsKey{}, n)
}

// attemptsObserver reports Event.Attempts to the put's caller (see withAttempts).
var attemptsObserver = pgcheckpoint.ObserverFunc(func(ctx context.Context, e pgcheckpoint.Event) {
	if n, ok := ctx.Value(attemptsKey{}).(*int); ok {
		*n = e.Attempts
	}
})
