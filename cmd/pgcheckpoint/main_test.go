package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestMain lets the test binary stand in for the CLI when the demo runs its agent in a child process
// (os.Executable is the test binary in in-process tests).
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	if admin.db != nil {
		admin.db.Close()
	}
	os.Exit(code)
}

// drivers is every driver the CLI offers; each test that talks to the server runs with both.
var drivers = []string{"pgx", "pq"}

// testDSN is the server the tests use: PGCHECKPOINT_TEST_DSN, like integration/harness_test.go. Tests
// skip only when it is unset; scripts/test sets it and CI fails on any skip.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PGCHECKPOINT_TEST_DSN")
	if dsn == "" {
		t.Skip("PGCHECKPOINT_TEST_DSN is not set; scripts/test sets it to the local PostgreSQL")
	}
	return dsn
}

// admin is one small pool the tests use to create schemas and look at tables behind the CLI's back.
var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func adminDB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := testDSN(t)
	admin.once.Do(func() {
		admin.db, admin.err = sql.Open("pgx", dsn)
		if admin.err == nil {
			// Bounded, but above the number of tests that hold a transaction (a row lock behind the
			// CLI's back) on it for their whole run: the interrupt tests of prune, convert and rekey
			// (one per driver each) and the tmux test. With 2 connections they starved each other
			// under load (a count after a rollback waited out its context).
			admin.db.SetMaxOpenConns(10)
			admin.db.SetMaxIdleConns(2)
		}
	})
	if admin.err != nil {
		t.Fatalf("open admin pool: %v", admin.err)
	}
	return admin.db
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newSchema creates a schema for one test and drops it at cleanup, even when the test fails.
func newSchema(t testing.TB) string {
	t.Helper()
	db := adminDB(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pgcli_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(testCtx(t), `CREATE SCHEMA "`+name+`"`); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA "`+name+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// result is what one in-process run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the CLI in-process with stdin.
func cli(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(testCtx(t), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// conn returns the connection flags for a driver and schema.
func conn(t testing.TB, driver, schema string) []string {
	return []string{"--dsn", testDSN(t), "--driver", driver, "--schema", schema}
}

// args joins a command, flags and arguments.
func args(cmd string, parts ...[]string) []string {
	out := []string{cmd}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func (r result) must(t testing.TB, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if code == exitOK && r.stderr != "" {
		t.Fatalf("exit 0 with stderr %q", r.stderr)
	}
	if code != exitOK {
		r.oneLineStderr(t)
	}
	return r
}

// oneLineStderr checks the error contract: exactly one line on stderr, prefixed with the program name.
func (r result) oneLineStderr(t testing.TB) {
	t.Helper()
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "pgcheckpoint: ") {
		t.Fatalf("stderr is not one line starting with \"pgcheckpoint: \": %q", r.stderr)
	}
}

// jsonLines decodes one JSON object per line, checking that each has exactly the keys given.
func jsonLines(t testing.TB, out string, keys ...string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object per line: %q: %v", line, err)
		}
		if len(m) != len(keys) {
			t.Fatalf("line %s has keys %v, want %v", line, keysOf(m), keys)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %s lacks key %q", line, k)
			}
		}
		objs = append(objs, m)
	}
	return objs
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
