package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestPrefixFlags: threads, prune and stats with --prefix cover only the threads whose id starts with
// it, with LIKE's metacharacters taken literally, for both drivers.
func TestPrefixFlags(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			for _, th := range []string{"acme/1", "acme/2", "acme%/3", "acme_/4", "acmex", "other/1"} {
				for range 2 {
					cli(t, `{"version": 2}`, args("put", c, []string{th})...).must(t, exitOK)
				}
			}
			// threads --prefix: exactly the tenant's threads, paged with the prefix kept in the hint.
			objs := jsonLines(t, cli(t, "", args("threads", c, []string{"--json", "--prefix", "acme/"})...).must(t, exitOK).stdout,
				"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes")
			if len(objs) != 2 || objs[0]["thread_id"] != "acme/1" || objs[1]["thread_id"] != "acme/2" {
				t.Fatalf("threads --prefix acme/: %v", objs)
			}
			if objs := jsonLines(t, cli(t, "", args("threads", c, []string{"--json", "--prefix", "acme%"})...).must(t, exitOK).stdout,
				"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes"); len(objs) != 1 || objs[0]["thread_id"] != "acme%/3" {
				t.Fatalf("threads --prefix acme%%: %v", objs)
			}
			h := cli(t, "", args("threads", c, []string{"--prefix", "acme", "--limit", "2"})...).must(t, exitOK).stdout
			if !strings.Contains(h, "next page: pgcheckpoint threads") || !strings.Contains(h, "--prefix acme") || !strings.Contains(h, "--after") {
				t.Fatalf("threads --prefix --limit 2 hint:\n%s", h)
			}
			// stats --prefix: the tenant's rows and threads.
			st := jsonLines(t, cli(t, "", args("stats", c, []string{"--json", "--prefix", "acme/"})...).must(t, exitOK).stdout,
				"table", "prefix", "rows", "threads", "snapshot_bytes", "table_bytes", "index_bytes", "dead_rows", "encryption", "largest_threads")
			if st[0]["rows"] != float64(4) || st[0]["threads"] != float64(2) || st[0]["snapshot_bytes"] != float64(4*len(`{"version": 2}`)) ||
				len(st[0]["largest_threads"].([]any)) != 2 || st[0]["prefix"] != "acme/" {
				t.Fatalf("stats --prefix acme/: %v", st[0])
			}
			// prune --prefix: age every row, count, then prune only acme_ (one thread, one checkpoint).
			if _, err := adminDB(t).ExecContext(testCtx(t), `UPDATE "`+schema+`".ziro_checkpoints SET created_at = now() - interval '3 days'`); err != nil {
				t.Fatal(err)
			}
			dry := cli(t, "", args("prune", c, []string{"--older-than", "1d", "--prefix", "acme_", "--dry-run"})...).must(t, exitOK).stdout
			if !strings.HasPrefix(dry, `would delete 1 checkpoint in 1 thread from `) || !strings.Contains(dry, `(threads starting with "acme_")`) {
				t.Fatalf("prune --dry-run --prefix acme_: %q", dry)
			}
			out := cli(t, "", args("prune", c, []string{"--older-than", "1d", "--prefix", "acme_"})...).must(t, exitOK).stdout
			if !regexp.MustCompile(`^deleted 1 checkpoint in 1 thread from \S+ \(threads starting with "acme_"\) in \S+\n$`).MatchString(out) {
				t.Fatalf("prune --prefix acme_: %q", out)
			}
			res := jsonLines(t, cli(t, "", args("prune", c, []string{"--older-than", "1d", "--prefix", "acme", "--json"})...).must(t, exitOK).stdout,
				"deleted", "threads", "seconds")
			if res[0]["deleted"] != float64(4) || res[0]["threads"] != float64(4) {
				t.Fatalf("prune --prefix acme: %v, want 4 deleted in 4 threads (acme/1, acme/2, acme%%/3, acmex)", res[0])
			}
			if ths := jsonLines(t, cli(t, "", args("threads", c, []string{"--json", "--prefix", "other/"})...).must(t, exitOK).stdout,
				"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes"); len(ths) != 1 || ths[0]["checkpoints"] != float64(2) {
				t.Fatalf("prune with prefixes touched other/1: %v", ths)
			}
			cli(t, "", args("threads", c, []string{"--prefix", "bad\xff"})...).must(t, exitUsage)
			cli(t, "", args("prune", c, []string{"--older-than", "1d", "--prefix", "bad\xff", "--dry-run"})...).must(t, exitUsage)
		})
	}
}
