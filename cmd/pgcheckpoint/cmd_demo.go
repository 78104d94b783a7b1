package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

const (
	// demoAgentCommand is the hidden subcommand the demo runs its agent with, in a child process.
	demoAgentCommand = "__demo-agent"
	// asMainEnv makes a test binary behave as the CLI (see TestMain), so the demo works in-process too.
	asMainEnv = "PGCHECKPOINT_CLI_AS_MAIN"

	demoSteps      = 12
	demoCrashAfter = 5                     // the parent kills the child once it reports this step
	demoThink      = 60 * time.Millisecond // a step's simulated model/tool latency
	demoTimeout    = 60 * time.Second      // upper bound for each child; the demo takes about 2s
)

// cmdDemo is the crash-and-resume walkthrough.
func cmdDemo(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "demo")
	keep := f.Bool("keep", false, "keep the demo's thread instead of removing it at the end")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	w := &walkthrough{e: e, start: time.Now(), thread: "pgcheckpoint-demo-" + randomHex(4), keep: *keep, f: f}
	fmt.Fprintf(e.stdout, "pgcheckpoint demo: a simulated agent takes %d steps and checkpoints after each; its process is\nkilled mid-run and a fresh process resumes from the newest checkpoint.\n", demoSteps)
	// Without --schema the demo works in a schema of its own, dropped at the end unless --keep, so it
	// leaves nothing in whatever database the libpq defaults reach. f.Set marks it as given: the hints
	// repeat it.
	ownSchema := ""
	if !f.set("schema") {
		ownSchema = "pgcheckpoint_demo_" + randomHex(4)
		_ = f.Set("schema", ownSchema)
	}
	s, err := f.conn.connect(ctx, 2)
	var unreachable *dbError
	if errors.As(err, &unreachable) && f.conn.resolvedDSN() != "" {
		// A DSN given explicitly (--dsn, $DATABASE_URL) must work: a smoke test catches a broken one.
		return err
	}
	if errors.As(err, &unreachable) {
		fmt.Fprintf(e.stdout, "no database reachable (%s); running the same walkthrough in memory\n",
			strings.Join(strings.Fields(redact(unreachable.Error())), " "))
		return w.inMemory(ctx, f.conn)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	if ownSchema != "" {
		w.dropSchema = func(ctx context.Context) error {
			_, err := s.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+quoteIdent(ownSchema)+" CASCADE")
			if err == nil {
				fmt.Fprintf(e.stdout, "dropped schema %s, the demo's own (--keep keeps it)\n", ownSchema)
			}
			return err
		}
	}
	return w.onDatabase(ctx, f.conn, s)
}

// walkthrough prints the demo's timeline.
type walkthrough struct {
	e      env
	start  time.Time
	thread string
	keep   bool
	f      *flags // the demo's flags, for the hints; nil hints in memory, where no command could work
	// dropSchema drops the demo's own schema (no --schema given) at the end unless --keep.
	dropSchema func(ctx context.Context) error
}

// hint is the command to look at the demo's thread with the same connection flags, "" in memory.
func (w *walkthrough) hint(cmd string, pos ...string) string {
	if w.f == nil {
		return ""
	}
	return w.f.hintAs(cmd, map[string]bool{"keep": true}, nil, pos...)
}

func (w *walkthrough) logf(who, format string, a ...any) {
	fmt.Fprintf(w.e.stdout, "  %5.2fs  %-10s %s\n", time.Since(w.start).Seconds(), who, fmt.Sprintf(format, a...))
}

func (w *walkthrough) logEvent(who string, ev agentEvent) {
	switch ev.kind {
	case "start":
		w.logf(who, "no checkpoint yet: starts the task from the beginning")
	case "resume":
		w.logf(who, "resumes from checkpoint %s (after step %d)", ev.id, ev.step)
	case "checkpoint":
		w.logf(who, "step %2d done, checkpoint %s", ev.step, ev.id)
	case "done":
		w.logf(who, "finished")
	}
}

// onDatabase runs the agent in child processes against the real table.
func (w *walkthrough) onDatabase(ctx context.Context, cf connFlags, s *session) error {
	out := w.e.stdout
	if err := s.cp.EnsureSchema(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "database: %s via %s at %s, table %s.%s, thread %s\n\n",
		s.dialect.Name(), s.driver, s.target, cf.schema, cf.table, w.thread)
	defer w.cleanup(ctx, s.cp)

	fmt.Fprintln(out, "1. the agent runs in a child process; the demo kills it with SIGKILL after step", demoCrashAfter)
	status, err := w.child(ctx, cf, true)
	if err != nil {
		return err
	}
	latest, err := s.cp.Latest(ctx, w.thread)
	if err != nil {
		return err
	}
	var st agentState
	if err := json.Unmarshal(latest.Snapshot, &st); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "   child process %s; the thread's newest checkpoint holds step %d\n\n", status, st.Step)

	fmt.Fprintln(out, "2. a fresh child process resumes from the newest checkpoint and finishes")
	status, err = w.child(ctx, cf, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   child process %s\n\n", status)
	return w.conclude(ctx, s.cp)
}

// child runs the agent in a child process (this executable, hidden subcommand) and prints its events.
// With kill set it sends SIGKILL once the child reports the crash step, waiting on that report (a line on
// the child's stdout), never on time. It returns the child's wait status as text.
func (w *walkthrough) child(ctx context.Context, cf connFlags, kill bool) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("demo: cannot find this executable to run the agent: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, demoAgentCommand,
		"--driver", cf.driver, "--dialect", cf.dialect, "--schema", cf.schema, "--table", cf.table,
		"--max-per-thread", strconv.Itoa(cf.maxPerThread), "--thread", w.thread)
	// The DSN travels in the environment, not on a command line other users can read.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+cf.resolvedDSN(), asMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("demo: start the agent process: %w", err)
	}
	who := fmt.Sprintf("pid %d", cmd.Process.Pid)
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		ev, ok := parseAgentLine(sc.Text())
		if !ok {
			continue
		}
		w.logEvent(who, ev)
		if kill && !killed && ev.kind == "checkpoint" && ev.step >= demoCrashAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return "", fmt.Errorf("demo: kill the agent process: %w", err)
			}
			killed = true
			w.logf("demo", "SIGKILL -> %s, in the middle of step %d", who, ev.step+1)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case kill && errors.As(err, &exitErr):
		ws, ok := exitErr.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			return "", fmt.Errorf("demo: the agent process ended with %v, not by SIGKILL: %s", err, lastLine(stderr.String()))
		}
		return fmt.Sprintf("%s wait status: %v", who, err), nil
	case kill:
		return "", fmt.Errorf("demo: the agent process finished before it could be killed (%v): %s", err, lastLine(stderr.String()))
	case err != nil:
		return "", fmt.Errorf("demo: the agent process failed (%v): %s", err, lastLine(stderr.String()))
	}
	return who + " wait status: exit status 0", nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// formatAgentLine and parseAgentLine are the child's report protocol: "KIND STEP ID", one per line.
func formatAgentLine(ev agentEvent) string {
	id := ev.id
	if id == "" {
		id = "-"
	}
	return fmt.Sprintf("%s %d %s\n", ev.kind, ev.step, id)
}

func parseAgentLine(line string) (agentEvent, bool) {
	parts := strings.Fields(line)
	if len(parts) != 3 {
		return agentEvent{}, false
	}
	step, err := strconv.Atoi(parts[1])
	if err != nil {
		return agentEvent{}, false
	}
	return agentEvent{kind: parts[0], step: step, id: strings.TrimPrefix(parts[2], "-")}, true
}

// cmdDemoAgent is the child process of the demo: the agent, reporting on stdout.
func cmdDemoAgent(ctx context.Context, e env, args []string) error {
	f := newFlags(e, demoAgentCommand)
	thread := f.String("thread", "", "thread")
	steps := f.Int("steps", demoSteps, "steps")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = runAgent(ctx, s.cp, *thread, *steps, demoThink, func(ev agentEvent) error {
		_, err := io.WriteString(e.stdout, formatAgentLine(ev))
		return err
	})
	return err
}

// errSimulatedCrash stops the in-memory agent where the database path kills its process.
var errSimulatedCrash = errors.New("simulated crash")

// inMemory runs the same walkthrough on pgcheckpoint.NewMemory, the crash simulated in-process.
func (w *walkthrough) inMemory(ctx context.Context, cf connFlags) error {
	out := w.e.stdout
	w.f = nil // the thread lives in this process only: no command can read it afterwards
	store := pgcheckpoint.NewMemory(cf.options(nil))
	fmt.Fprintf(out, "store: pgcheckpoint.NewMemory (in this process), thread %s\n\n", w.thread)

	fmt.Fprintln(out, "1. the agent runs; the demo crashes it after step", demoCrashAfter, "(simulated: its goroutine and state are dropped)")
	_, err := runAgent(ctx, store, w.thread, demoSteps, demoThink, func(ev agentEvent) error {
		w.logEvent("agent #1", ev)
		if ev.kind == "checkpoint" && ev.step >= demoCrashAfter {
			w.logf("demo", "crash in the middle of step %d (in-process simulation)", ev.step+1)
			return errSimulatedCrash
		}
		return nil
	})
	if !errors.Is(err, errSimulatedCrash) {
		return fmt.Errorf("demo: the agent did not crash as planned: %v", err)
	}
	fmt.Fprintln(out, "   agent #1 is gone; only the store remains")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "2. a fresh agent resumes from the newest checkpoint and finishes")
	if _, err := runAgent(ctx, store, w.thread, demoSteps, demoThink, func(ev agentEvent) error {
		w.logEvent("agent #2", ev)
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return w.conclude(ctx, store)
}

// conclude compares the result with an uninterrupted run, lists the checkpoints, reads an old one and
// removes the thread unless --keep.
func (w *walkthrough) conclude(ctx context.Context, store pgcheckpoint.Store) error {
	out := w.e.stdout
	final, _, err := pgcheckpoint.LatestJSON[agentState](ctx, store, w.thread)
	if err != nil {
		return err
	}
	want := uninterrupted(demoSteps)
	same := equalJSON(final, want)
	fmt.Fprintln(out, "3. result:", final.answer())
	fmt.Fprintln(out, "   uninterrupted run in this process:", want.answer())
	if !same {
		return fmt.Errorf("demo: the resumed result differs from the uninterrupted run")
	}
	fmt.Fprintln(out, "   the resumed result equals the uninterrupted run: yes")
	fmt.Fprintln(out)

	cps, err := store.List(ctx, w.thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		return err
	}
	if h := w.hint("ls", w.thread); h != "" {
		fmt.Fprintf(out, "4. the thread's checkpoints (%s), newest first:\n", h)
	} else {
		fmt.Fprintln(out, "4. the thread's checkpoints, newest first:")
	}
	t := newTable(&indent{w: out}, "STEP", "ID", "CREATED", "SIZE")
	byStep := map[int]pgcheckpoint.Checkpoint{}
	now := time.Now()
	for _, c := range cps {
		st, _, err := pgcheckpoint.GetJSON[agentState](ctx, store, w.thread, c.ID)
		if err != nil {
			return err
		}
		byStep[st.Step] = c
		t.row(strconv.Itoa(st.Step), c.ID, age(now, c.CreatedAt), size(int64(c.SizeBytes)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)

	if old, ok := byStep[3]; ok {
		st, _, err := pgcheckpoint.GetJSON[agentState](ctx, store, w.thread, old.ID)
		if err != nil {
			return err
		}
		if h := w.hint("get", w.thread, old.ID); h != "" {
			fmt.Fprintf(out, "5. time travel (%s):\n", h)
		} else {
			fmt.Fprintf(out, "5. time travel (the checkpoint after step 3, %s):\n", old.ID)
		}
		fmt.Fprintf(out, "   after step %d the agent had %d EUR left; its last message: %q\n", st.Step, st.Budget, st.Messages[len(st.Messages)-1].Content)
		replay := st
		for !replay.done() {
			replay = replay.next()
		}
		fmt.Fprintf(out, "   replaying steps %d-%d from it reaches the same result: %s\n\n", st.Step+1, demoSteps, yesNo(equalJSON(replay, want)))
	}
	fmt.Fprintf(out, "demo finished in %.1fs\n", time.Since(w.start).Seconds())
	return nil
}

// cleanup removes the demo's thread unless --keep.
func (w *walkthrough) cleanup(ctx context.Context, store pgcheckpoint.Store) {
	if w.keep {
		if h := w.hint("ls", w.thread); h != "" {
			fmt.Fprintf(w.e.stdout, "kept thread %s (--keep): %s\n", w.thread, h)
		} else {
			fmt.Fprintf(w.e.stdout, "kept thread %s (--keep) in memory; it ends with this process\n", w.thread)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if w.dropSchema != nil {
		if err := w.dropSchema(ctx); err != nil {
			fmt.Fprintf(w.e.stderr, "pgcheckpoint: demo: could not drop its schema: %s\n", redact(err.Error()))
		}
		return
	}
	if err := store.DeleteThread(ctx, w.thread); err != nil {
		fmt.Fprintf(w.e.stderr, "pgcheckpoint: demo: could not remove thread %s: %s\n", w.thread, redact(err.Error()))
		return
	}
	fmt.Fprintf(w.e.stdout, "removed thread %s (--keep keeps it)\n", w.thread)
}

// indent prefixes every line written through it with three spaces (tables inside the walkthrough).
type indent struct {
	w       io.Writer
	midLine bool
}

func (i *indent) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if !i.midLine {
			b.WriteString("   ")
		}
		b.WriteRune(c)
		i.midLine = c != '\n'
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
