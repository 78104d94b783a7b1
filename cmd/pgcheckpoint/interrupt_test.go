//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: what the child gets as its terminal (slave) and our end.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// terminalOutput collects what the child writes to its terminal.
type terminalOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // signalled after every read
	done chan struct{} // closed when the terminal is closed
}

func readTerminal(master *os.File) *terminalOutput {
	o := &terminalOutput{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			o.mu.Unlock()
			select {
			case o.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *terminalOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor blocks until the terminal shows want (the synchronisation point: the child printed it, so it
// is past that point). The timeout only bounds a broken run.
func (o *terminalOutput) waitFor(t *testing.T, want string) {
	t.Helper()
	limit := time.After(time.Minute)
	for !strings.Contains(o.String(), want) {
		select {
		case <-o.more:
		case <-o.done:
			if !strings.Contains(o.String(), want) {
				t.Fatalf("terminal closed without %q:\n%s", want, o.String())
			}
		case <-limit:
			t.Fatalf("no %q on the terminal within a minute:\n%s", want, o.String())
		}
	}
}

// startOnTerminal starts the built CLI with the pty as stdin and stderr (stdout a buffer).
func startOnTerminal(t *testing.T, bin string, stdout *bytes.Buffer, args ...string) (*exec.Cmd, *terminalOutput) {
	t.Helper()
	master, slave := openPTY(t)
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, stdout, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the child holds it now: the master reads EOF/EIO when the child exits
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, readTerminal(master)
}

// interrupt sends SIGINT and returns the exit status.
func interrupt(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

// TestInterruptPutOnTerminal: put reading a terminal says it waits for JSON; SIGINT ends it with 130
// and one line saying nothing was stored (point 3).
func TestInterruptPutOnTerminal(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	bin := buildCLI(t)
	var stdout bytes.Buffer
	cmd, term := startOnTerminal(t, bin, &stdout, args("put", c, []string{"th"})...)
	term.waitFor(t, "waiting for the JSON snapshot on stdin")
	if code := interrupt(t, cmd); code != exitInterrupted {
		t.Fatalf("exit %d, want 130; terminal:\n%s", code, term.String())
	}
	<-term.done
	if !strings.Contains(term.String(), "pgcheckpoint: put: interrupted while reading the snapshot from stdin; nothing was stored") || stdout.Len() != 0 {
		t.Fatalf("terminal:\n%s\nstdout %q", term.String(), stdout.String())
	}
	if n := tableRows(t, schema); n != 0 {
		t.Fatalf("%d rows after an interrupted put", n)
	}
}

// TestInterruptPrune: SIGINT during a prune exits 130 and says how much it had deleted. The second
// batch is held by a row lock the test takes, so the signal reaches a prune that has deleted exactly
// the first batch (the progress line says so) and waits.
func TestInterruptPrune(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			interruptPrune(t, bin, driver)
		})
	}
}

// interruptPrune is TestInterruptPrune with one driver: both drivers cancel the waiting statement on the
// server (pgx through the CLI's CancelRequestContextWatcherHandler), so the held batch never commits.
func interruptPrune(t *testing.T, bin, driver string) {
	schema := newSchema(t)
	c := conn(t, driver, schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	ctx := testCtx(t)
	db := adminDB(t)
	// 150 threads of 3 old rows: the first batch (100 threads) deletes 200 rows.
	if _, err := db.ExecContext(ctx, `INSERT INTO "`+schema+`".ziro_checkpoints
		(thread_id, checkpoint_id, snapshot, version, size_bytes, seq, created_at)
		SELECT 'th-' || lpad(t::text, 4, '0'), '01a22823-0000-7000-8000-' || lpad(to_hex(t * 16 + r), 12, '0'), '{}', 0, 2, r, now() - interval '10 days'
		FROM generate_series(1, 150) t, generate_series(1, 3) r`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM "`+schema+`".ziro_checkpoints WHERE thread_id = 'th-0120' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd, term := startOnTerminal(t, bin, &stdout, args("prune", c, []string{"--older-than", "1w"})...)
	term.waitFor(t, "prune: 200 checkpoints deleted in 100 threads...")
	code := interrupt(t, cmd)
	<-term.done
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130; terminal:\n%q", code, term.String())
	}
	want := "pgcheckpoint: prune: interrupted after deleting 200 checkpoints in 100 threads from " + schema + ".ziro_checkpoints; rerun to continue"
	if !strings.Contains(term.String(), want) || strings.Count(term.String(), "pgcheckpoint: ") != 1 {
		t.Fatalf("terminal:\n%q\nwant %q", term.String(), want)
	}
	tx.Rollback()
	if n := tableRows(t, schema); n != 450-200 {
		t.Fatalf("%d rows after the interrupted prune, want 250", n)
	}
}

// TestInterruptBench: SIGINT during a bench exits 130 with one line (no doubled prefix, not exit 3)
// and drops the scratch tables.
func TestInterruptBench(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	bin := buildCLI(t)
	var stdout bytes.Buffer
	// --duration 10m bounds nothing in a passing run: the signal comes as soon as measuring starts.
	cmd, term := startOnTerminal(t, bin, &stdout, args("bench", c, []string{"--sizes", "1KiB", "--workers", "1", "--duration", "10m"})...)
	term.waitFor(t, "(1/3)...")
	code := interrupt(t, cmd)
	<-term.done
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130; terminal:\n%q", code, term.String())
	}
	out := term.String()
	if !strings.Contains(out, "pgcheckpoint: bench: interrupted after 0 of 3 measurements; the scratch tables are dropped") ||
		strings.Count(out, "pgcheckpoint: ") != 1 {
		t.Fatalf("terminal:\n%q", out)
	}
	var n int
	if err := adminDB(t).QueryRowContext(testCtx(t), `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d scratch tables left in %s", n, schema)
	}
}

// TestInterruptConvert: SIGINT during a convert exits 130 and says how many threads it had copied; the
// copied threads stay whole, and --resume copies the rest. The second batch waits on a heads row of the
// same key that the test inserts and holds uncommitted, so the signal reaches a convert that has copied
// exactly the first batch (the progress line says so).
func TestInterruptConvert(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			cli(t, "", args("migrate", c, []string{"--table", "cp_delta", "--storage", "delta"})...).must(t, exitOK)
			ctx := testCtx(t)
			db := adminDB(t)
			// 150 threads of 3 rows: the first batch (100 threads) copies 300 checkpoints.
			if _, err := db.ExecContext(ctx, `INSERT INTO "`+schema+`".ziro_checkpoints
				(thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
				SELECT 'th-' || lpad(t::text, 4, '0'), '01a22823-0000-7000-8000-' || lpad(to_hex(t * 16 + r), 12, '0'),
				       jsonb_build_object('m', (SELECT jsonb_agg(x) FROM generate_series(1, r) x)), 0, 10, r
				FROM generate_series(1, 150) t, generate_series(1, 3) r`); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `INSERT INTO "`+schema+`".cp_delta_heads
				(thread_id, checkpoint_id, seq, snapshot, arrays, alloc, lo, hi, version, size_bytes)
				VALUES ('th-0120', '01a22823-0000-7000-8000-'||lpad(to_hex(120 * 16 + 1), 12, '0'), 1, '{}', '{}', '{}', '{}', '{}', 0, 2)`); err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			cmd, term := startOnTerminal(t, bin, &stdout, args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_delta", "--storage", "delta"})...)
			term.waitFor(t, "convert: 100 threads, 300 checkpoints copied")
			code := interrupt(t, cmd)
			<-term.done
			if code != exitInterrupted {
				t.Fatalf("exit %d, want 130; terminal:\n%q", code, term.String())
			}
			want := "pgcheckpoint: convert: interrupted after copying 100 threads (300 checkpoints) into " + schema + ".cp_delta; rerun with --resume to continue"
			if !strings.Contains(term.String(), want) || strings.Count(term.String(), "pgcheckpoint: ") != 1 {
				t.Fatalf("terminal:\n%q\nwant %q", term.String(), want)
			}
			tx.Rollback()
			var heads int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+schema+`".cp_delta_heads`).Scan(&heads); err != nil || heads != 300 {
				t.Fatalf("%d heads after the interrupted convert (%v), want 300", heads, err)
			}
			out := cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_delta", "--storage", "delta", "--resume"})...).must(t, exitOK).stdout
			if !strings.HasPrefix(out, "copied 50 threads (150 checkpoints)") {
				t.Fatalf("convert --resume printed %q", out)
			}
			if got, want := cli(t, "", args("get", c, []string{"--table", "cp_delta", "--storage", "delta", "th-0150"})...).must(t, exitOK).stdout, "{\"m\": [1, 2, 3]}\n"; got != want {
				t.Fatalf("get th-0150 from the converted table = %q, want %q", got, want)
			}
		})
	}
}
