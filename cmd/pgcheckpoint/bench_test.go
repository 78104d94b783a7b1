package main

import (
	"strings"
	"testing"
)

// TestBench runs a very short bench with both drivers: the --json shape, both systems for every op, the
// human table with ratios, and the scratch tables gone afterwards.
func TestBench(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			objs := jsonLines(t, cli(t, "", args("bench", c, []string{"--sizes", "1KiB,64KiB", "--workers", "1,2", "--duration", "80ms", "--json"})...).must(t, exitOK).stdout,
				"system", "driver", "op", "size_bytes", "workers", "ops", "seconds", "ops_per_s", "p50_ms", "p99_ms")
			if len(objs) != 2*2*3*2 {
				t.Fatalf("%d result lines, want 24", len(objs))
			}
			seen := map[string]bool{}
			for _, o := range objs {
				if o["driver"] != driver || o["ops"].(float64) < 1 || o["ops_per_s"].(float64) <= 0 || o["p99_ms"].(float64) < o["p50_ms"].(float64) {
					t.Fatalf("bad result %v", o)
				}
				key := o["system"].(string) + "/" + o["op"].(string)
				seen[key] = true
			}
			for _, k := range []string{"pgcheckpoint/put", "pgcheckpoint/get", "pgcheckpoint/list", "raw/put", "raw/get", "raw/list"} {
				if !seen[k] {
					t.Fatalf("no %s result in %v", k, objs)
				}
			}

			human := cli(t, "", args("bench", c, []string{"--sizes", "1KiB", "--workers", "1", "--duration", "40ms"})...).must(t, exitOK).stdout
			if !strings.Contains(human, "RATIO") || strings.Count(human, "x\n") != 3 {
				t.Fatalf("bench human output:\n%s", human)
			}

			var tables int
			if err := adminDB(t).QueryRowContext(testCtx(t),
				`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Fatalf("bench left %d scratch tables in %s", tables, schema)
			}
		})
	}
}

// TestParseSizes accepts the payload sizes in several spellings and nothing else.
func TestParseSizes(t *testing.T) {
	t.Parallel()
	got, err := parseSizes("1KiB, 64kb,1MiB,1024")
	if err != nil || len(got) != 4 || got[0] != 1024 || got[1] != 65536 || got[2] != 1<<20 || got[3] != 1024 {
		t.Fatalf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2KiB", "1GiB", "KiB", "-1KiB", "1 parsec"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

// TestOutputFormats pins the human formats of sizes and ages.
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 65536: "64.0 KiB", 1 << 20: "1.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
	now := mustTime(t, "2026-01-02T00:00:00Z")
	for ago, want := range map[string]string{
		"2026-01-02T00:00:00Z": "just now", "2026-01-01T23:59:18Z": "42s ago", "2026-01-01T23:57:00Z": "3m ago",
		"2026-01-01T19:00:00Z": "5h ago", "2025-12-30T00:00:00Z": "3d ago",
	} {
		if got := age(now, mustTime(t, ago)); got != want {
			t.Errorf("age(%s) = %q, want %q", ago, got, want)
		}
	}
}
