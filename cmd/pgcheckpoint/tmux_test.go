//go:build linux

package main

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tmuxSession runs one shell command in a detached tmux session on a private server socket, in a real
// terminal: keys typed with send-keys go through the terminal driver (Ctrl-C becomes SIGINT for the
// foreground process, Ctrl-D ends the input).
type tmuxSession struct {
	t      *testing.T
	socket string
	done   string // wait-for channel the command signals when it has ended
}

func newTmux(t *testing.T, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &tmuxSession{t: t, socket: "pgcli-" + hex.EncodeToString(b[:]), done: "done-" + hex.EncodeToString(b[:])}
	// The trap keeps the shell alive when Ctrl-C reaches the whole foreground process group (a trapped
	// signal is reset to its default in the child, so the CLI sees SIGINT as from an interactive shell).
	shell := `trap 'true' INT; ` + command + `; echo "EXIT=$?"; tmux -L ` + s.socket + ` wait-for -S ` + s.done + `; read -r _`
	s.tmux("new-session", "-d", "-x", "200", "-y", "40", "sh", "-c", shell)
	s.tmux("has-session")
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.CommandContext(testCtx(s.t), "tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-p", "-J") }

// waitScreen polls the pane until it shows want: tmux offers no event for "this text is on screen".
// The loop waits for a condition, not for a time; the minute only bounds a broken run.
func (s *tmuxSession) waitScreen(want string) {
	s.t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(s.screen(), want); {
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q on the screen:\n%s", want, s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait blocks until the command has ended (tmux wait-for) and returns the screen.
func (s *tmuxSession) wait() string {
	s.tmux("wait-for", s.done)
	return s.screen()
}

// TestTmuxPut: put in a real terminal prompts for JSON; Ctrl-C exits 130 saying nothing was stored;
// typed JSON ended with Ctrl-D is stored (issue 12, point 3).
func TestTmuxPut(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	bin := buildCLI(t)
	cmd := bin + " put --dsn '" + testDSN(t) + "' --schema " + schema + " th"

	s := newTmux(t, cmd)
	s.waitScreen("waiting for the JSON snapshot on stdin")
	s.tmux("send-keys", "C-c")
	screen := s.wait()
	if !strings.Contains(screen, "pgcheckpoint: put: interrupted while reading the snapshot from stdin; nothing was stored") || !strings.Contains(screen, "EXIT=130") {
		t.Fatalf("Ctrl-C:\n%s", screen)
	}
	if n := tableRows(t, schema); n != 0 {
		t.Fatalf("%d rows after Ctrl-C", n)
	}

	s = newTmux(t, cmd)
	s.waitScreen("waiting for the JSON snapshot on stdin")
	s.tmux("send-keys", `{"typed": true}`, "Enter", "C-d")
	screen = s.wait()
	if !strings.Contains(screen, "EXIT=0") || tableRows(t, schema) != 1 {
		t.Fatalf("typed JSON and Ctrl-D:\n%s", screen)
	}
}

// TestTmuxPrune: Ctrl-C in a real terminal stops a prune held by a row lock after its first batch: exit
// 130, one line with what it deleted.
func TestTmuxPrune(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	ctx := testCtx(t)
	db := adminDB(t)
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
	s := newTmux(t, buildCLI(t)+" prune --older-than 1w --dsn '"+testDSN(t)+"' --schema "+schema)
	s.waitScreen("prune: 200 checkpoints deleted in 100 threads...")
	s.tmux("send-keys", "C-c")
	screen := s.wait()
	if !strings.Contains(screen, "pgcheckpoint: prune: interrupted after deleting 200 checkpoints in 100 threads from "+schema+".ziro_checkpoints; rerun to continue") ||
		!strings.Contains(screen, "EXIT=130") {
		t.Fatalf("Ctrl-C during prune:\n%s", screen)
	}
	tx.Rollback()
	if n := tableRows(t, schema); n != 250 {
		t.Fatalf("%d rows after the interrupted prune, want 250", n)
	}
}
