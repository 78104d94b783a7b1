package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestConvert: convert copies a full table into a new delta table and back (the snapshots, ids and
// lists read the same through each), says what it copied (human and --json); a target with
// checkpoints is exit 4, a target or source of the wrong layout exit 3, missing or contradictory flags
// exit 2; --resume after a complete run copies nothing.
func TestConvert(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := conn(t, driver, newSchema(t))
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			snaps := []string{`{"step": 1, "messages": ["a"]}`, `{"step": 2, "messages": ["a", "b"]}`, `{"step": 3, "messages": ["c"]}`}
			for _, th := range []string{"t1", "t2", "t3"} {
				for _, s := range snaps {
					cli(t, s, args("put", c, []string{th})...).must(t, exitOK)
				}
			}
			res := jsonLines(t, cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_delta", "--storage", "delta", "--batch", "2", "--json"})...).must(t, exitOK).stdout,
				"threads", "checkpoints", "items", "last_thread", "seconds")
			if res[0]["threads"] != float64(3) || res[0]["checkpoints"] != float64(9) || res[0]["items"] != float64(9) || res[0]["last_thread"] != "t3" {
				t.Fatalf("convert --json: %v", res[0])
			}
			dl := []string{"--table", "cp_delta", "--storage", "delta"}
			for _, th := range []string{"t1", "t2", "t3"} {
				if got, want := cli(t, "", args("get", c, dl, []string{th})...).must(t, exitOK).stdout,
					cli(t, "", args("get", c, []string{th})...).must(t, exitOK).stdout; got != want {
					t.Fatalf("get %s from the delta table = %q, want %q", th, got, want)
				}
				if got, want := cli(t, "", args("ls", c, dl, []string{"--json", th})...).must(t, exitOK).stdout,
					cli(t, "", args("ls", c, []string{"--json", th})...).must(t, exitOK).stdout; got != want {
					t.Fatalf("ls %s of the delta table = %q, want %q", th, got, want)
				}
			}
			out := cli(t, "", args("convert", c, []string{"--from", "cp_delta", "--to", "cp_back", "--storage", "full"})...).must(t, exitOK).stdout
			if !regexp.MustCompile(`^copied 3 threads \(9 checkpoints\) from \S+\.cp_delta into \S+\.cp_back \(full\) in \S+\n$`).MatchString(out) {
				t.Fatalf("convert printed %q", out)
			}
			if got, want := cli(t, "", args("ls", c, []string{"--table", "cp_back", "--json", "t2"})...).must(t, exitOK).stdout,
				cli(t, "", args("ls", c, []string{"--json", "t2"})...).must(t, exitOK).stdout; got != want {
				t.Fatalf("ls t2 of the table converted back = %q, want %q", got, want)
			}
			out = cli(t, "", args("convert", c, []string{"--from", "cp_delta", "--to", "cp_back", "--storage", "full", "--resume"})...).must(t, exitOK).stdout
			if !strings.HasPrefix(out, "copied 0 threads (0 checkpoints)") {
				t.Fatalf("convert --resume of a finished conversion printed %q", out)
			}

			r := cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_delta", "--storage", "delta"})...).must(t, exitConflict)
			if !strings.Contains(r.stderr, "--resume") && !strings.Contains(r.stderr, "Resume") {
				t.Fatalf("convert into a table with checkpoints: %q", r.stderr)
			}
			cli(t, "", args("convert", c, []string{"--from", "cp_delta", "--to", "cp_other", "--storage", "delta"})...).must(t, exitDatabase)
			cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_back", "--storage", "delta"})...).must(t, exitDatabase)
			cli(t, "", args("convert", c, []string{"--from", "nothing", "--to", "cp_other", "--storage", "delta"})...).must(t, exitDatabase)
			cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--storage", "delta"})...).must(t, exitUsage)
			cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_x"})...).must(t, exitUsage)
			cli(t, "", args("convert", c, []string{"--from", "a", "--to", "a", "--storage", "delta"})...).must(t, exitUsage)
			if r := cli(t, "", args("convert", c, []string{"--table", "ziro_checkpoints", "--from", "a", "--to", "cp_x", "--storage", "delta"})...).must(t, exitUsage); !strings.Contains(r.stderr, "not --table") {
				t.Fatalf("convert --table: %q", r.stderr)
			}
			cli(t, "", args("convert", c, []string{"--from", "bad-name", "--to", "cp_x", "--storage", "delta"})...).must(t, exitUsage)
			cli(t, "", args("convert", c, []string{"--from", "ziro_checkpoints", "--to", "cp_x", "--storage", "delta", "extra"})...).must(t, exitUsage)
		})
	}
}
