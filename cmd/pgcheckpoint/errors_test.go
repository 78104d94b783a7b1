package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: every kind of bad input or usage is exit 2 with one line on stderr, and writes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			c := conn(t, driver, newSchema(t))
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			missing := filepath.Join(t.TempDir(), "missing.json")
			cases := []struct {
				name  string
				stdin string
				args  []string
				says  string
			}{
				{"unknown command", "", args("frobnicate", c), "unknown command"},
				{"flag before the command", "", []string{"--dsn", "x", "get", "t"}, "flags go after the command"},
				{"unknown flag", "", args("get", c, []string{"--frob", "t"}), "flag provided but not defined"},
				{"flag without value", "", args("ls", c, []string{"t", "--limit"}), "needs an argument"},
				{"missing argument", "", args("get", c), "missing argument"},
				{"too many arguments", "", args("get", c, []string{"t", "a", "b"}), "unexpected argument"},
				{"invalid JSON", `{"a": `, args("put", c, []string{"t"}), "invalid snapshot"},
				{"invalid JSON, server down", `{"a": `, []string{"put", "--driver", driver, "--dsn", "postgres://u@127.0.0.1:1/x", "t"}, "not valid JSON"},
				{"not an object", `[1, 2]`, args("put", c, []string{"t"}), "invalid snapshot"},
				{"NUL in JSON", `{"a": "\u0000"}`, args("put", c, []string{"t"}), "invalid snapshot"},
				{"unreadable file", "", args("put", c, []string{"t", missing}), "cannot read the snapshot"},
				{"empty thread id", `{}`, args("put", c, []string{""}), "thread id is empty"},
				{"bad schema", "", args("ls", c, []string{"--schema", "bad-name", "t"}), "invalid identifier"},
				{"bad table", "", args("ls", c, []string{"--table", "x; DROP TABLE y", "t"}), "invalid identifier"},
				{"too long table", "", args("ls", c, []string{"--table", strings.Repeat("t", 60), "t"}), "too long"},
				{"bad driver", "", args("ls", c, []string{"--driver", "mysql", "t"}), "--driver must be"},
				{"bad dialect", "", args("ls", c, []string{"--dialect", "oracle", "t"}), "--dialect must be"},
				{"bad cap", "", args("ls", c, []string{"--max-per-thread", "-5", "t"}), "--max-per-thread"},
				{"bad cursor", "", args("ls", c, []string{"--before", "zzz", "t"}), "invalid checkpoint id"},
				{"negative limit", "", args("threads", c, []string{"--limit", "-1"}), "--limit"},
				{"prune without age", "", args("prune", c), "--older-than is required"},
				{"prune bad age", "", args("prune", c, []string{"--older-than", "7 days"}), "not a duration"},
				{"prune zero age", "", args("prune", c, []string{"--older-than", "0s"}), "positive"},
				{"rm empty id", "", args("rm", c, []string{"t", ""}), "id is empty"},
				{"bench bad size", "", args("bench", c, []string{"--sizes", "3KiB"}), "no payload"},
				{"bench bad workers", "", args("bench", c, []string{"--workers", "0"}), "--workers"},
				{"malformed DSN", "", args("ls", c, []string{"--dsn", "postgres://%zz", "t"}), "invalid connection string"},
			}
			for _, tc := range cases {
				r := cli(t, tc.stdin, tc.args...)
				if r.code != exitUsage {
					t.Errorf("%s: exit %d, want 2 (stderr %q)", tc.name, r.code, r.stderr)
					continue
				}
				r.oneLineStderr(t)
				if r.stdout != "" {
					t.Errorf("%s: wrote %q on stdout", tc.name, r.stdout)
				}
				if !strings.Contains(r.stderr, tc.says) {
					t.Errorf("%s: stderr %q does not say %q", tc.name, r.stderr, tc.says)
				}
			}
			if out := cli(t, "", args("threads", c, []string{"--json"})...).must(t, exitOK).stdout; out != "" {
				t.Fatalf("bad input wrote something: %s", out)
			}
		})
	}
}

// TestDatabaseErrors: an unreachable server and a missing table are exit 3 with one line that says what
// to do, and no password ever reaches the output.
func TestDatabaseErrors(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rSecretPw"
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			nowhere := []string{
				"postgres://root:" + secret + "@127.0.0.1:1/test?sslmode=disable",
				"host=127.0.0.1 port=1 user=root password=" + secret + " dbname=test sslmode=disable",
			}
			for _, dsn := range nowhere {
				for _, cmd := range [][]string{{"get", "t"}, {"ls", "t"}, {"threads"}, {"migrate"}, {"prune", "--older-than", "1d"}, {"bench", "--duration", "10ms"}} {
					r := cli(t, `{}`, append([]string{cmd[0], "--driver", driver, "--dsn", dsn}, cmd[1:]...)...)
					if r.code != exitDatabase {
						t.Fatalf("%v on %s: exit %d, want 3: %s", cmd, dsn, r.code, r.stderr)
					}
					r.oneLineStderr(t)
					if strings.Contains(r.stderr+r.stdout, secret) {
						t.Fatalf("password printed: %q", r.stderr)
					}
					if !strings.Contains(r.stderr, "cannot reach the database at root@127.0.0.1:1/test") {
						t.Fatalf("%v: stderr %q does not name the target", cmd, r.stderr)
					}
				}
			}
			// A wrong password on the real server: whatever the server or driver says, not the password.
			r := cli(t, "", "ls", "--driver", driver, "--dsn", "postgres://nosuchrole:"+secret+"@127.0.0.1:5432/test?sslmode=disable", "t")
			if r.code != exitDatabase || strings.Contains(r.stderr, secret) {
				t.Fatalf("unknown role: exit %d, stderr %q", r.code, r.stderr)
			}
			r.oneLineStderr(t)

			// The table is missing: say to run migrate.
			c := conn(t, driver, newSchema(t))
			for _, cmd := range [][]string{{"get", "t"}, {"ls", "t"}, {"put", "t"}, {"rm", "t"}, {"threads"}, {"prune", "--older-than", "1h"}} {
				r := cli(t, `{"a": 1}`, args(cmd[0], c, cmd[1:])...)
				if r.code != exitDatabase || !strings.Contains(r.stderr, "run `pgcheckpoint migrate`") {
					t.Fatalf("%v without a table: exit %d, stderr %q", cmd, r.code, r.stderr)
				}
				r.oneLineStderr(t)
			}
		})
	}
}

// TestRedact covers the forms a password can take in a message.
func TestRedact(t *testing.T) {
	t.Parallel()
	rememberSecrets("host=x password='p w\\'d!' user=u")
	for in, want := range map[string]string{
		"postgres://bob:hunter22@h/db":           "postgres://bob:xxxxx@h/db",
		"postgres://bob:p@ss@h/db":               "postgres://bob:xxxxx@h/db",
		"postgres://bob:p/ss@h/db":               "postgres://bob:xxxxx@h/db",
		"dsn host=h password=hunter22 user=bob":  "dsn host=h password=xxxxx user=bob",
		"dsn host=h PASSWORD = 'a b c' user=bob": "dsn host=h PASSWORD = xxxxx user=bob",
		"auth failed for p w\\'d!":               "auth failed for xxxxx",
		"nothing secret here":                    "nothing secret here",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPasswordWithAt: defect 10. A password with an unencoded @ (postgres://user:p@ss@host/db) had its
// tail printed: redact stopped at the first @, and pgx took the tail for part of the host name, which the
// CLI printed as the target. It is now refused as bad input, and no part of the password is printed.
func TestPasswordWithAt(t *testing.T) {
	t.Parallel()
	const tail = "Tail0fSecret"
	for _, driver := range []string{"pgx", "pq"} {
		for _, dsn := range []string{"postgres://u:pw@" + tail + "@127.0.0.1:1/db", "postgres://u:pw@x@" + tail + "@127.0.0.1:1/db?sslmode=disable"} {
			r := cli(t, "", "ls", "--driver", driver, "--dsn", dsn, "t")
			if r.code != exitUsage || strings.Contains(r.stderr, tail) || strings.Contains(r.stderr, "pw") {
				t.Errorf("%s %s: exit %d, stderr %q; want a usage error that prints no part of the password", driver, dsn, r.code, r.stderr)
			}
		}
	}
	rememberSecrets("postgres://u:p1@" + tail + "@h/db")
	if got := redact("lookup " + tail + "@h: no such host"); strings.Contains(got, tail) {
		t.Errorf("redact left a piece of the password: %q", got)
	}
}
