package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigratePrintTTL: migrate --print --dialect cockroach --ttl 720h prints the DDL and then the
// row-level TTL statement, exactly the golden text the library's TestGoldenSQL pins; --ttl anywhere else
// is bad usage.
func TestMigratePrintTTL(t *testing.T) {
	t.Parallel()
	nowhere := []string{"--dsn", "postgres://u:pw@127.0.0.1:1/x"}
	golden, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sql", "cockroach", "ttl_720h.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ddl := cli(t, "", args("migrate", nowhere, []string{"--print", "--dialect", "cockroach"})...).must(t, exitOK).stdout
	out := cli(t, "", args("migrate", nowhere, []string{"--print", "--dialect", "cockroach", "--ttl", "720h"})...).must(t, exitOK).stdout
	if want := ddl + "\n" + strings.TrimSuffix(string(golden), "\n") + ";\n"; out != want {
		t.Fatalf("migrate --print --dialect cockroach --ttl 720h printed\n%s\nwant\n%s", out, want)
	}
	// 30d is 720h; a cron of its own.
	if out30 := cli(t, "", args("migrate", nowhere, []string{"--print", "--dialect", "cockroach", "--ttl", "30d"})...).must(t, exitOK).stdout; out30 != out {
		t.Fatalf("--ttl 30d differs from --ttl 720h:\n%s", out30)
	}
	daily := cli(t, "", args("migrate", nowhere, []string{"--print", "--dialect", "cockroach", "--ttl", "7d", "--ttl-cron", "@daily"})...).must(t, exitOK).stdout
	if !strings.Contains(daily, `INTERVAL ''168 hours''`) || !strings.Contains(daily, `ttl_job_cron = '@daily'`) {
		t.Fatalf("--ttl 7d --ttl-cron @daily:\n%s", daily)
	}
	for _, bad := range [][]string{
		{"--print", "--ttl", "720h"},                          // auto prints PostgreSQL, which has no TTL
		{"--print", "--dialect", "postgres", "--ttl", "720h"}, // ditto
		{"--print", "--dialect", "cockroach", "--ttl", "soon"},
		{"--print", "--dialect", "cockroach", "--ttl-cron", "@daily"},
		{"--print", "--dialect", "cockroach", "--ttl", "1h", "--ttl-cron", "@daily'"},
		{"--ttl", "720h"}, // without --print: nothing to connect for
	} {
		cli(t, "", args("migrate", nowhere, bad)...).must(t, exitUsage)
	}
}
