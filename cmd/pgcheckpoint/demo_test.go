package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// buildCLI compiles the command into a temporary directory, so the demo runs as users run it: a real
// process that re-executes itself for its agent.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgcheckpoint")
	cmd := exec.CommandContext(testCtx(t), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func tableRows(t *testing.T, schema string) int {
	t.Helper()
	var n int
	if err := adminDB(t).QueryRowContext(testCtx(t), `SELECT count(*) FROM "`+schema+`".ziro_checkpoints`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkDemoOutput asserts the walkthrough's conclusions, common to every path.
func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"step  1 done, checkpoint ",
		"step 12 done, checkpoint ",
		"the resumed result equals the uninterrupted run: yes",
		"4. the thread's checkpoints",
		"5. time travel (",
		"replaying steps 4-12 from it reaches the same result: yes",
		"demo finished in ",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoOnPostgres runs the built binary against the real server: the database path is taken, the
// first agent process dies by SIGKILL, and a fresh process resumes it.
func TestDemoOnPostgres(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t) // empty: the demo creates its table
			keep := driver == "pq"
			a := args("demo", conn(t, driver, schema))
			if keep {
				a = append(a, "--keep")
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(testCtx(t), bin, a...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if stderr.Len() != 0 {
				t.Fatalf("demo wrote on stderr: %s", stderr.String())
			}
			if strings.Contains(out, "no database reachable") || strings.Contains(out, "NewMemory") {
				t.Fatalf("demo fell back to memory:\n%s", out)
			}
			for _, want := range []string{
				"database: postgres via " + driver + " at ",
				"table " + schema + ".ziro_checkpoints",
				"SIGKILL -> pid ",
				"wait status: signal: killed;", // the first child really died by SIGKILL
				"resumes from checkpoint ",
				"wait status: exit status 0",
			} {
				if !strings.Contains(out, want) {
					t.Fatalf("demo output lacks %q:\n%s", want, out)
				}
			}
			checkDemoOutput(t, out)
			// The hints carry the demo's connection flags (not --keep), so they read the demo's table.
			for _, h := range regexp.MustCompile(`pgcheckpoint (ls|get) [^)\n]*`).FindAllString(out, -1) {
				if !strings.Contains(h, "--schema "+schema) || !strings.Contains(h, "--driver "+driver) || strings.Contains(h, "--keep") {
					t.Fatalf("demo hint %q lacks the demo's flags", h)
				}
			}
			if keep {
				h := regexp.MustCompile(`kept thread \S+ \(--keep\): pgcheckpoint (.*)`).FindStringSubmatch(out)
				if h == nil || !strings.Contains(cli(t, "", shellSplit(t, h[1])...).must(t, exitOK).stdout, "CREATED") {
					t.Fatalf("--keep hint does not list the thread:\n%s", out)
				}
			}
			if keep {
				if n := tableRows(t, schema); n != 12 || !strings.Contains(out, "kept thread ") {
					t.Fatalf("--keep: %d rows left, want 12", n)
				}
			} else if n := tableRows(t, schema); n != 0 || !strings.Contains(out, "removed thread ") {
				t.Fatalf("demo left %d rows behind", n)
			}
		})
	}
}

// TestDemoInProcess runs the demo through run(): its agent child is this test binary (see TestMain).
func TestDemoInProcess(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	r := cli(t, "", args("demo", conn(t, "pgx", schema))...).must(t, exitOK)
	if !strings.Contains(r.stdout, "wait status: signal: killed;") {
		t.Fatalf("no SIGKILL in:\n%s", r.stdout)
	}
	checkDemoOutput(t, r.stdout)
}

// TestDemoOwnSchema: without --schema the demo works in a schema of its own and drops it at the end,
// leaving nothing in public (issue 12, point 8).
func TestDemoOwnSchema(t *testing.T) {
	t.Parallel()
	r := cli(t, "", "demo", "--dsn", testDSN(t)).must(t, exitOK)
	m := regexp.MustCompile(`table (pgcheckpoint_demo_[0-9a-f]+)\.ziro_checkpoints`).FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(r.stdout, "dropped schema "+m[1]+", the demo's own") || !strings.Contains(r.stdout, "--schema "+m[1]) {
		t.Fatalf("demo without --schema:\n%s", r.stdout)
	}
	var n int
	if err := adminDB(t).QueryRowContext(testCtx(t), `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, m[1]).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s left behind (%d, %v)", m[1], n, err)
	}
}

// TestDemoInMemory: with no DSN given and no server at libpq's defaults the demo says so in one line
// and runs on NewMemory, printing no hint that could not work; with a DSN given explicitly and
// unreachable it fails (exit 3), so a smoke test catches a broken DSN (issue 12, point 8).
func TestDemoInMemory(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rSecretPw"
	r := cli(t, "", "demo", "--dsn", "postgres://root:"+secret+"@127.0.0.1:1/test?sslmode=disable").must(t, exitDatabase)
	if strings.Contains(r.stdout+r.stderr, secret) || !strings.Contains(r.stderr, "cannot reach the database") {
		t.Fatalf("explicit unreachable DSN: stdout %q stderr %q", r.stdout, r.stderr)
	}

	bin := buildCLI(t)
	cmd := exec.CommandContext(testCtx(t), bin, "demo")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PGHOST=127.0.0.1", "PGPORT=1", "PGPASSWORD=" + secret}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo at unreachable libpq defaults: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out+stderr.String(), secret) {
		t.Fatalf("password printed:\n%s", out)
	}
	if n := strings.Count(out, "no database reachable"); n != 1 {
		t.Fatalf("the fallback is announced %d times:\n%s", n, out)
	}
	for _, want := range []string{"store: pgcheckpoint.NewMemory", "crash in the middle of step 6", "agent #2   resumes from checkpoint"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "signal: killed") {
		t.Fatalf("in-memory demo claims a killed process:\n%s", out)
	}
	if strings.Contains(out, "pgcheckpoint ls") || strings.Contains(out, "pgcheckpoint get") {
		t.Fatalf("in-memory demo prints hints no command can follow:\n%s", out)
	}
	checkDemoOutput(t, out)
}

// TestAgentResumesAnywhere: the demo's claim holds for every crash point, not only the one it shows.
func TestAgentResumesAnywhere(t *testing.T) {
	t.Parallel()
	want := uninterrupted(demoSteps)
	for crash := 1; crash < demoSteps; crash++ {
		store := newMemoryStore()
		_, err := runAgent(context.Background(), store, "t", demoSteps, 0, func(ev agentEvent) error {
			if ev.kind == "checkpoint" && ev.step == crash {
				return errSimulatedCrash
			}
			return nil
		})
		if !errors.Is(err, errSimulatedCrash) {
			t.Fatalf("crash at %d: %v", crash, err)
		}
		got, err := runAgent(context.Background(), store, "t", demoSteps, 0, func(agentEvent) error { return nil })
		if err != nil || !equalJSON(got, want) {
			t.Fatalf("crash at %d: resumed to %+v (%v), want %+v", crash, got, err, want)
		}
	}
}

func newMemoryStore() *pgcheckpoint.Memory { return pgcheckpoint.NewMemory(pgcheckpoint.Options{}) }
