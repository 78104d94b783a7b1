package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestPruneManyRows seeds 20,050 rows in one INSERT ... SELECT generate_series with created_at in the past
// and checks exactly what prune removes and what it keeps.
func TestPruneManyRows(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			db, table := adminDB(t), `"`+schema+`".ziro_checkpoints`
			// 200 threads of 100 rows, row r created (101-r) hours and 30 minutes ago: rows 1..53 are older
			// than 48h, rows 54..100 are not. 10 more threads of 5 rows, all 10 days old.
			seed := `INSERT INTO ` + table + ` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq, created_at)
				SELECT 'th-' || lpad(t::text, 4, '0'), '01a22823-0000-7000-8000-' || lpad(to_hex(r), 12, '0'),
				       '{"r": 1}', 0, 8, r, now() - make_interval(hours => %s, mins => 30)
				FROM generate_series(%d, %d) t, generate_series(1, %d) r`
			if _, err := db.ExecContext(testCtx(t), fmt.Sprintf(seed, "101 - r", 1, 200, 100)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(testCtx(t), fmt.Sprintf(seed, "240 - r", 201, 210, 5)); err != nil {
				t.Fatal(err)
			}
			rows := func() (n int) {
				t.Helper()
				if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := rows(); n != 20050 {
				t.Fatalf("seeded %d rows", n)
			}

			res := jsonLines(t, cli(t, "", args("prune", c, []string{"--older-than", "2d", "--json"})...).must(t, exitOK).stdout,
				"deleted", "threads", "seconds")
			if res[0]["deleted"] != float64(200*53+10*4) || res[0]["threads"] != float64(210) {
				t.Fatalf("prune --older-than 2d: %v, want 10640 deleted in 210 threads", res[0])
			}
			if n := rows(); n != 200*47+10 {
				t.Fatalf("%d rows left, want %d", n, 200*47+10)
			}
			// Every thread kept its newest; the 200 live threads kept exactly their rows 54..100.
			var bad int
			if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM (
				SELECT thread_id, min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM `+table+` GROUP BY thread_id) s
				WHERE NOT ((thread_id <= 'th-0200' AND lo = 54 AND hi = 100 AND n = 47) OR
				           (thread_id > 'th-0200' AND lo = 5 AND hi = 5 AND n = 1))`).Scan(&bad); err != nil {
				t.Fatal(err)
			}
			if bad != 0 {
				t.Fatalf("%d threads do not hold exactly what they should after prune", bad)
			}

			// Nothing left to do: 0 deleted; the human form says so.
			out := cli(t, "", args("prune", c, []string{"--older-than", "3d"})...).must(t, exitOK).stdout
			if !regexp.MustCompile(`^deleted 0 checkpoints in 0 threads from \S+\.ziro_checkpoints in \S+\n$`).MatchString(out) {
				t.Fatalf("second prune printed %q", out)
			}

			// --include-newest removes the old threads' last checkpoints, and with them the threads.
			res = jsonLines(t, cli(t, "", args("prune", c, []string{"--older-than", "7d", "--include-newest", "--json"})...).must(t, exitOK).stdout,
				"deleted", "threads", "seconds")
			if res[0]["deleted"] != float64(10) || res[0]["threads"] != float64(10) {
				t.Fatalf("prune --include-newest: %v", res[0])
			}
			ths := jsonLines(t, cli(t, "", args("threads", c, []string{"--json", "--limit", "1000"})...).must(t, exitOK).stdout,
				"thread_id", "checkpoints", "newest_id", "newest_at", "total_bytes")
			if len(ths) != 200 {
				t.Fatalf("%d threads left, want 200", len(ths))
			}
			newest, err := time.Parse(time.RFC3339, ths[0]["newest_at"].(string))
			if err != nil || time.Since(newest) < time.Hour || time.Since(newest) > 2*time.Hour {
				t.Fatalf("newest_at %v (%v), want about 1.5h ago", ths[0]["newest_at"], err)
			}
		})
	}
}

// TestParseAge covers the --older-than syntax: Go durations with an optional number of weeks, then of
// days, first.
func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"36h": 36 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute,
		"1w": 7 * 24 * time.Hour, "2w1d": 15 * 24 * time.Hour, "1w12h": 7*24*time.Hour + 12*time.Hour,
	} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7 days", "-1h", "0d", "w", "1d1w"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}
