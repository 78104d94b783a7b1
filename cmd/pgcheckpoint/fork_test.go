package main

import (
	"strings"
	"testing"
)

// TestFork: exit 0 printing the new thread's newest id, 1 for a checkpoint that does not exist, 4 for a
// target thread that has checkpoints, 2 for a malformed id; --history copies the older ones too.
func TestFork(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := conn(t, driver, newSchema(t))
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			var ids []string
			for _, snap := range []string{`{"step": 1}`, `{"step": 2}`, `{"step": 3}`} {
				ids = append(ids, strings.TrimSpace(cli(t, snap, args("put", c, []string{"src"})...).must(t, exitOK).stdout))
			}
			if out := cli(t, "", args("fork", c, []string{"src", ids[1], "branch"})...).must(t, exitOK).stdout; out != ids[1]+"\n" {
				t.Fatalf("fork printed %q, want %s and a newline", out, ids[1])
			}
			if got := cli(t, "", args("get", c, []string{"branch"})...).must(t, exitOK).stdout; got != "{\"step\": 2}\n" {
				t.Fatalf("get branch = %q", got)
			}
			if ls := jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "branch"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes"); len(ls) != 1 {
				t.Fatalf("fork without --history copied %d checkpoints", len(ls))
			}
			cli(t, "", args("fork", c, []string{"--history", "src", ids[2], "full"})...).must(t, exitOK)
			if ls := jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "full"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes"); len(ls) != 3 || ls[2]["id"] != ids[0] {
				t.Fatalf("fork --history: %v", ls)
			}
			r := cli(t, "", args("fork", c, []string{"src", ids[0], "branch"})...).must(t, exitConflict)
			if !strings.Contains(r.stderr, "has checkpoints already") || r.stdout != "" {
				t.Fatalf("fork into an existing thread: %+v", r)
			}
			cli(t, "", args("fork", c, []string{"src", "01a22823-b2f8-72cd-9625-d6aa73b0fac7", "other"})...).must(t, exitNotFound)
			cli(t, "", args("fork", c, []string{"no-such-thread", ids[0], "other"})...).must(t, exitNotFound)
			cli(t, "", args("fork", c, []string{"src", "not-a-uuid", "other"})...).must(t, exitUsage)
			cli(t, "", args("fork", c, []string{"src", ids[0]})...).must(t, exitUsage)
			cli(t, "", args("get", c, []string{"other"})...).must(t, exitNotFound) // nothing was written
		})
	}
}
