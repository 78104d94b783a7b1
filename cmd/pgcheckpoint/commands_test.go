package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var uuidLine = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`)

// TestCommands walks every data command through its normal use with both drivers.
func TestCommands(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := conn(t, driver, newSchema(t))
			out := cli(t, "", args("migrate", c)...).must(t, exitOK)
			if !strings.Contains(out.stdout, "is ready: created (postgres") {
				t.Fatalf("migrate said %q", out.stdout)
			}
			// idempotent, and says so
			if out := cli(t, "", args("migrate", c)...).must(t, exitOK).stdout; !strings.Contains(out, "is ready: no change (postgres") {
				t.Fatalf("second migrate said %q", out)
			}

			// put from stdin and from a file
			first := cli(t, `{"version": 3, "step": 1}`, args("put", c, []string{"t1"})...).must(t, exitOK).stdout
			if !uuidLine.MatchString(first) {
				t.Fatalf("put printed %q, want a UUIDv7 and a newline", first)
			}
			file := filepath.Join(t.TempDir(), "snap.json")
			if err := os.WriteFile(file, []byte(`{"step": 2, "note": "from a file"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			second := strings.TrimSpace(cli(t, "", args("put", c, []string{"t1", file})...).must(t, exitOK).stdout)
			// flags after the arguments are accepted too
			third := strings.TrimSpace(cli(t, `{"step": 3}`, append([]string{"put", "t1", "-"}, c...)...).must(t, exitOK).stdout)
			first = strings.TrimSpace(first)
			if !(first < second && second < third) {
				t.Fatalf("ids not increasing: %s %s %s", first, second, third)
			}

			// get: newest, by id, unknown, malformed
			if got := cli(t, "", args("get", c, []string{"t1"})...).must(t, exitOK).stdout; got != "{\"step\": 3}\n" {
				t.Fatalf("get newest = %q", got)
			}
			if got := cli(t, "", args("get", c, []string{"t1", first})...).must(t, exitOK).stdout; got != "{\"step\": 1, \"version\": 3}\n" {
				t.Fatalf("get first = %q", got)
			}
			cli(t, "", args("get", c, []string{"nope"})...).must(t, exitNotFound)
			cli(t, "", args("get", c, []string{"t1", "not-a-uuid"})...).must(t, exitUsage) // ErrInvalidCheckpointID
			cli(t, "", args("get", c, []string{"t1", "01a22823-b2f8-72cd-9625-d6aa73b0fac7"})...).must(t, exitNotFound)

			// ls: human and --json
			human := cli(t, "", args("ls", c, []string{"t1"})...).must(t, exitOK).stdout
			lines := strings.Split(strings.TrimSpace(human), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], third) || !strings.Contains(lines[1], "just now") {
				t.Fatalf("ls human output:\n%s", human)
			}
			objs := jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "t1"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes")
			if len(objs) != 3 || objs[0]["id"] != third || objs[2]["id"] != first || objs[2]["version"] != float64(3) ||
				objs[2]["thread_id"] != "t1" || objs[2]["size_bytes"] != float64(len(`{"version": 3, "step": 1}`)) {
				t.Fatalf("ls --json: %v", objs)
			}
			if _, err := time.Parse(time.RFC3339, objs[0]["created_at"].(string)); err != nil {
				t.Fatalf("created_at is not RFC 3339: %v", err)
			}
			page := jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "--limit", "1", "--before", third, "t1"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes")
			if len(page) != 1 || page[0]["id"] != second {
				t.Fatalf("ls --limit 1 --before: %v", page)
			}
			if out := cli(t, "", args("ls", c, []string{"--json", "empty-thread"})...).must(t, exitOK).stdout; out != "" {
				t.Fatalf("ls --json of an empty thread printed %q", out)
			}

			// threads
			cli(t, `{"a": 1}`, args("put", c, []string{"t2"})...).must(t, exitOK)
			ths := jsonLines(t, cli(t, "", args("threads", c, []string{"--json"})...).must(t, exitOK).stdout,
				"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes")
			if len(ths) != 2 || ths[0]["thread_id"] != "t1" || ths[0]["checkpoints"] != float64(3) || ths[0]["newest_id"] != third {
				t.Fatalf("threads --json: %v", ths)
			}
			if h := cli(t, "", args("threads", c)...).must(t, exitOK).stdout; !strings.HasPrefix(h, "THREAD ") || !strings.Contains(h, "t2 ") {
				t.Fatalf("threads human output:\n%s", h)
			}

			// rm: one checkpoint, nothing, the whole thread
			if out := cli(t, "", args("rm", c, []string{"t1", third})...).must(t, exitOK).stdout; !strings.Contains(out, "removed checkpoint "+third+" of thread t1 from ") {
				t.Fatalf("rm of one checkpoint said %q", out)
			}
			if got := cli(t, "", args("get", c, []string{"t1"})...).must(t, exitOK).stdout; !strings.Contains(got, "from a file") {
				t.Fatalf("after rm of the newest, get = %q", got)
			}
			if out := cli(t, "", args("rm", c, []string{"t1", third})...).must(t, exitOK).stdout; !strings.HasPrefix(out, "removed nothing: thread t1 has no checkpoint") {
				t.Fatalf("rm of a removed checkpoint said %q", out)
			}
			cli(t, "", args("rm", c, []string{"t1", "garbage"})...).must(t, exitUsage) // ErrInvalidCheckpointID
			if out := cli(t, "", args("rm", c, []string{"--dry-run", "t1"})...).must(t, exitOK).stdout; !strings.HasPrefix(out, "would remove 2 checkpoints of thread t1 (the whole thread) from ") {
				t.Fatalf("rm --dry-run said %q", out)
			}
			if out := cli(t, "", args("rm", c, []string{"--dry-run", "t1", second})...).must(t, exitOK).stdout; !strings.HasPrefix(out, "would remove checkpoint "+second) {
				t.Fatalf("rm --dry-run of one checkpoint said %q", out)
			}
			cli(t, "", args("get", c, []string{"t1", second})...).must(t, exitOK) // the dry runs deleted nothing
			if out := cli(t, "", args("rm", c, []string{"t1"})...).must(t, exitOK).stdout; !regexp.MustCompile(`^removed 2 checkpoints of thread t1 \(the whole thread\) from pgcli_\w+\.ziro_checkpoints\n$`).MatchString(out) {
				t.Fatalf("rm of the thread said %q", out)
			}
			cli(t, "", args("get", c, []string{"t1"})...).must(t, exitNotFound)
			if out := cli(t, "", args("rm", c, []string{"never-was"})...).must(t, exitOK).stdout; !strings.HasPrefix(out, "removed nothing: thread never-was has no checkpoints in ") {
				t.Fatalf("rm of an unknown thread said %q", out)
			}
		})
	}
}

// TestFencedPut checks writer fencing through the CLI: a lost fence is exit 4 and writes nothing.
func TestFencedPut(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := conn(t, driver, newSchema(t))
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			head := strings.TrimSpace(cli(t, `{"n": 1}`, args("put", c, []string{"--expect-empty", "th"})...).must(t, exitOK).stdout)
			cli(t, `{"n": 2}`, args("put", c, []string{"--expect-empty", "th"})...).must(t, exitConflict)
			next := strings.TrimSpace(cli(t, `{"n": 2}`, args("put", c, []string{"--expect-head", head, "th"})...).must(t, exitOK).stdout)
			r := cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head", head, "th"})...).must(t, exitConflict)
			if !strings.Contains(r.stderr, "conflict") {
				t.Fatalf("stale head: stderr %q does not say conflict", r.stderr)
			}
			cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head", "not-an-id", "th"})...).must(t, exitUsage) // ErrInvalidCheckpointID
			// An empty --expect-head (a failed $(...)) is refused: it would otherwise be an unfenced put.
			if r := cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head", "", "th"})...).must(t, exitUsage); !strings.Contains(r.stderr, "--expect-empty") {
				t.Fatalf("empty --expect-head: %q", r.stderr)
			}
			cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head=", "th"})...).must(t, exitUsage)
			// head prints what --expect-head wants.
			if h := strings.TrimSpace(cli(t, "", args("head", c, []string{"th"})...).must(t, exitOK).stdout); h != next {
				t.Fatalf("head = %q, want %s", h, next)
			}
			cli(t, "", args("head", c, []string{"no-such-thread"})...).must(t, exitNotFound)
			cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head", "01a22823-b2f8-72cd-9625-d6aa73b0fac7", "th"})...).must(t, exitConflict)
			cli(t, `{"n": 3}`, args("put", c, []string{"--expect-head", head, "--expect-empty", "th"})...).must(t, exitUsage)
			objs := jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "th"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes")
			if len(objs) != 2 || objs[0]["id"] != next {
				t.Fatalf("after lost fences the thread holds %v, want 2 rows headed by %s", objs, next)
			}
		})
	}
}

// TestRetentionFlag checks --max-per-thread reaches the library.
func TestRetentionFlag(t *testing.T) {
	t.Parallel()
	c := conn(t, "pgx", newSchema(t))
	cli(t, "", args("migrate", c, []string{"--max-per-thread", "2"})...).must(t, exitOK)
	for i := 0; i < 5; i++ {
		r := cli(t, `{"i": 1}`, args("put", c, []string{"--max-per-thread", "2", "th"})...)
		if r.code != exitOK || (i >= 2) != strings.Contains(r.stderr, "trimmed 1 oldest checkpoint") {
			t.Fatalf("put %d: exit %d, stderr %q", i, r.code, r.stderr)
		}
	}
	if n := len(jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "th"})...).must(t, exitOK).stdout,
		"id", "thread_id", "created_at", "version", "size_bytes")); n != 2 {
		t.Fatalf("cap 2, 5 puts: %d rows", n)
	}
}

// TestRetentionBytesFlag: --max-bytes-per-thread records the table's byte budget (migrate), which puts
// trim by and say so; migrate changes one part of the policy and keeps the other; --print writes the
// policy statement after the DDL; a budget below -1 is bad input.
func TestRetentionBytesFlag(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			out := cli(t, "", args("migrate", c, []string{"--max-bytes-per-thread", "100"})...).must(t, exitOK).stdout
			if !strings.Contains(out, "it keeps 100 checkpoints and at most 100 bytes per thread") {
				t.Fatalf("migrate --max-bytes-per-thread 100: %q", out)
			}
			doc := `{"pad": "` + strings.Repeat("x", 40-11) + `"}` // 40 bytes: two fit in 100
			for i := 0; i < 4; i++ {
				r := cli(t, doc, args("put", c, []string{"th"})...)
				if r.code != exitOK || (i >= 2) != strings.Contains(r.stderr, "trimmed 1 oldest checkpoint") ||
					(i >= 2 && !strings.Contains(r.stderr, "which keeps 100 checkpoints and at most 100 bytes per thread")) {
					t.Fatalf("put %d: exit %d, stderr %q", i, r.code, r.stderr)
				}
			}
			if n := len(jsonLines(t, cli(t, "", args("ls", c, []string{"--json", "th"})...).must(t, exitOK).stdout,
				"id", "thread_id", "created_at", "version", "size_bytes")); n != 2 {
				t.Fatalf("budget 100, 4 puts of 40 bytes: %d rows", n)
			}
			// A client naming another budget is refused before it writes.
			if r := cli(t, doc, args("put", c, []string{"--max-bytes-per-thread", "1000", "th"})...); r.code != exitUsage || !strings.Contains(r.stderr, "retention policy mismatch") {
				t.Fatalf("put with another budget: exit %d, stderr %q", r.code, r.stderr)
			}
			out = cli(t, "", args("migrate", c, []string{"--max-per-thread", "5"})...).must(t, exitOK).stdout
			if !strings.Contains(out, "retention changed from 100 checkpoints and at most 100 bytes per thread to 5 checkpoints and at most 100 bytes per thread") {
				t.Fatalf("migrate --max-per-thread 5 on a budget: %q", out)
			}
			out = cli(t, "", args("migrate", c, []string{"--max-bytes-per-thread", "-1"})...).must(t, exitOK).stdout
			if !strings.Contains(out, "it keeps 5 checkpoints per thread") {
				t.Fatalf("migrate --max-bytes-per-thread -1: %q", out)
			}
		})
	}
	out := cli(t, "", "migrate", "--print", "--max-bytes-per-thread", "4096").must(t, exitOK).stdout
	for _, want := range []string{"total_bytes   BIGINT", "ADD COLUMN IF NOT EXISTS max_bytes_per_thread",
		"VALUES (100, 4096)\nON CONFLICT (singleton) DO UPDATE"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate --print --max-bytes-per-thread 4096 lacks %q:\n%s", want, out)
		}
	}
	if r := cli(t, "", "migrate", "--print", "--max-bytes-per-thread", "-5"); r.code != exitUsage || !strings.Contains(r.stderr, "--max-bytes-per-thread") {
		t.Fatalf("--max-bytes-per-thread -5: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestThreadsPaging pages through more threads than one page holds.
func TestThreadsPaging(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			// 25 threads of 3 rows each, straight into the table.
			if _, err := adminDB(t).ExecContext(testCtx(t), `INSERT INTO "`+schema+`".ziro_checkpoints
				(thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
				SELECT 'th-' || lpad(t::text, 3, '0'), '01a22823-0000-7000-8000-' || lpad(to_hex(r), 12, '0'), '{}', 0, 2, r
				FROM generate_series(1, 25) t, generate_series(1, 3) r`); err != nil {
				t.Fatal(err)
			}
			var seen []string
			after := ""
			for pages := 0; pages < 10; pages++ {
				a := []string{"--json", "--limit", "10"}
				if after != "" {
					a = append(a, "--after", after)
				}
				objs := jsonLines(t, cli(t, "", args("threads", c, a)...).must(t, exitOK).stdout,
					"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes")
				if len(objs) == 0 {
					break
				}
				for _, o := range objs {
					if o["checkpoints"] != float64(3) || o["total_bytes"] != float64(6) {
						t.Fatalf("thread %v", o)
					}
					seen = append(seen, o["thread_id"].(string))
				}
				after = seen[len(seen)-1]
			}
			if len(seen) != 25 || seen[0] != "th-001" || seen[24] != "th-025" {
				t.Fatalf("paged through %d threads: %v", len(seen), seen)
			}
			// The hint repeats the user's flags (--schema, --driver, --limit) and, pasted, prints the next
			// page; the last page has none.
			h := cli(t, "", args("threads", c, []string{"--limit", "10"})...).must(t, exitOK).stdout
			hint := regexp.MustCompile(`(?m)^next page: pgcheckpoint (.*)$`).FindStringSubmatch(h)
			if hint == nil || !strings.Contains(hint[1], "--schema "+schema) || !strings.Contains(hint[1], "--driver "+driver) ||
				!strings.Contains(hint[1], "--limit 10") || !strings.HasSuffix(hint[1], "--after th-010") {
				t.Fatalf("threads next-page hint lacks the user's flags:\n%s", h)
			}
			pasted := cli(t, "", shellSplit(t, hint[1])...).must(t, exitOK).stdout
			if !strings.Contains(pasted, "th-011") || !strings.Contains(pasted, "th-020") || strings.Contains(pasted, "th-010 ") {
				t.Fatalf("pasted hint printed:\n%s", pasted)
			}
			last := cli(t, "", args("threads", c, []string{"--limit", "5", "--after", "th-020"})...).must(t, exitOK).stdout
			if strings.Contains(last, "next page") || !strings.Contains(last, "th-025") {
				t.Fatalf("the last page (exactly --limit threads) has a hint or lacks th-025:\n%s", last)
			}
		})
	}
}

// TestMigratePrint writes the DDL without connecting (the DSN points nowhere).
func TestMigratePrint(t *testing.T) {
	t.Parallel()
	nowhere := []string{"--dsn", "postgres://u:pw@127.0.0.1:1/x"}
	pg := cli(t, "", args("migrate", nowhere, []string{"--print", "--schema", "app", "--table", "cps"})...).must(t, exitOK).stdout
	if !strings.Contains(pg, `CREATE TABLE IF NOT EXISTS "app"."cps"`) || !strings.Contains(pg, `COLLATE "C"`) || !strings.Contains(pg, "lz4") {
		t.Fatalf("migrate --print (postgres):\n%s", pg)
	}
	crdb := cli(t, "", args("migrate", nowhere, []string{"--print", "--dialect", "cockroach"})...).must(t, exitOK).stdout
	if !strings.Contains(crdb, `CREATE TABLE IF NOT EXISTS "public"."ziro_checkpoints"`) || strings.Contains(crdb, `COLLATE "C"`) {
		t.Fatalf("migrate --print --dialect cockroach:\n%s", crdb)
	}
	cli(t, "", args("migrate", nowhere, []string{"--print", "--table", "bad-name"})...).must(t, exitUsage)
}

// TestHelp: -h prints usage on stdout and exits 0, for the program and for a command.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, a := range [][]string{{"-h"}, {"--help"}, {"help"}, {"put", "-h"}, {"bench", "--help"}} {
		r := cli(t, "", a...).must(t, exitOK)
		if !strings.Contains(r.stdout, "usage: pgcheckpoint") {
			t.Fatalf("%v printed %q", a, r.stdout)
		}
	}
	if r := cli(t, ""); r.code != exitUsage || !strings.Contains(r.stderr, "usage:") {
		t.Fatalf("no arguments: exit %d, stderr %q", r.code, r.stderr)
	}
}
