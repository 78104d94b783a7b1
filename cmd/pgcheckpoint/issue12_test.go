package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// shellSplit splits a hint the way sh would for the quoting shellQuote produces: words separated by
// spaces, single-quoted words with '\” for a quote.
func shellSplit(t testing.TB, s string) []string {
	t.Helper()
	var (
		out   []string
		cur   strings.Builder
		inQ   bool
		isArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\'':
			inQ = false
		case inQ:
			cur.WriteByte(c)
		case c == '\'':
			inQ, isArg = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			isArg = true
		case c == ' ':
			if isArg {
				out = append(out, cur.String())
			}
			cur.Reset()
			isArg = false
		default:
			cur.WriteByte(c)
			isArg = true
		}
	}
	if inQ {
		t.Fatalf("unterminated quote in %q", s)
	}
	if isArg {
		out = append(out, cur.String())
	}
	return out
}

// TestPutReportsTrim: a put that trims the thread to the cap says so on stderr (issue 12, point 1);
// stdout stays the id alone.
func TestPutReportsTrim(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	out := cli(t, "", args("migrate", c, []string{"--max-per-thread", "2"})...).must(t, exitOK).stdout
	if !strings.Contains(out, "it keeps 2 checkpoints per thread") {
		t.Fatalf("migrate --max-per-thread 2: %q", out)
	}
	for i := 0; i < 2; i++ {
		cli(t, `{"i": 1}`, args("put", c, []string{"th"})...).must(t, exitOK)
	}
	r := cli(t, `{"i": 3}`, args("put", c, []string{"th"})...)
	if r.code != exitOK || !uuidLine.MatchString(r.stdout) {
		t.Fatalf("third put: exit %d, stdout %q", r.code, r.stdout)
	}
	want := "pgcheckpoint: put: trimmed 1 oldest checkpoint of thread th in " + schema + ".ziro_checkpoints, which keeps 2 checkpoints per thread\n"
	if r.stderr != want {
		t.Fatalf("third put stderr %q, want %q", r.stderr, want)
	}
	// A client that names another cap than the table's is refused before it writes.
	r = cli(t, `{"i": 4}`, args("put", c, []string{"--max-per-thread", "-1", "th"})...)
	if r.code != exitUsage || !strings.Contains(r.stderr, "retention policy mismatch") {
		t.Fatalf("put --max-per-thread -1 on a table keeping 2: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestPutOnUnlimitedTable: on a table whose policy keeps every checkpoint, a put with default flags
// trims nothing and says so (issue 11), however long the thread.
func TestPutOnUnlimitedTable(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pq", schema)
	out := cli(t, "", args("migrate", c, []string{"--max-per-thread", "-1"})...).must(t, exitOK).stdout
	if !strings.Contains(out, "it keeps every checkpoint") {
		t.Fatalf("migrate --max-per-thread -1: %q", out)
	}
	const n = 105 // more than the default cap of 100
	cp, err := pgcheckpoint.New(adminDB(t), pgcheckpoint.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n-1; i++ {
		if _, err := cp.Put(context.Background(), "long", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	r := cli(t, `{"last": true}`, args("put", c, []string{"long"})...)
	want := "pgcheckpoint: put: trimmed nothing: " + schema + ".ziro_checkpoints keeps every checkpoint\n"
	if r.code != exitOK || r.stderr != want {
		t.Fatalf("put: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if got, err := cp.List(context.Background(), "long", pgcheckpoint.ListOptions{Limit: -1}); err != nil || len(got) != n {
		t.Fatalf("after %d puts the thread holds %d checkpoints (%v), want all", n, len(got), err)
	}
}

// TestLsHint: ls says when it cuts a list short and prints the next page's command with the user's
// flags; the last page has no hint (point 2).
func TestLsHint(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pq", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, strings.TrimSpace(cli(t, `{"i": 1}`, args("put", c, []string{"th"})...).must(t, exitOK).stdout))
	}
	out := cli(t, "", args("ls", c, []string{"--limit", "2", "th"})...).must(t, exitOK).stdout
	m := regexp.MustCompile(`(?m)^showing the newest 2; next page: pgcheckpoint (.*)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], "--schema "+schema) || !strings.Contains(m[1], "--before "+ids[1]) {
		t.Fatalf("ls --limit 2 of 3:\n%s", out)
	}
	pasted := cli(t, "", shellSplit(t, m[1])...).must(t, exitOK).stdout
	if !strings.Contains(pasted, ids[0]) || strings.Contains(pasted, ids[1]) || strings.Contains(pasted, "next page") {
		t.Fatalf("pasted ls hint printed:\n%s", pasted)
	}
	if out := cli(t, "", args("ls", c, []string{"--limit", "3", "th"})...).must(t, exitOK).stdout; strings.Contains(out, "next page") {
		t.Fatalf("ls of exactly --limit rows has a hint:\n%s", out)
	}
}

// TestHint: hints repeat every flag the user gave, mask the DSN's password, quote what needs quoting.
func TestHint(t *testing.T) {
	f := newFlags(env{}, "threads")
	f.Int("limit", 100, "")
	f.String("after", "", "")
	if _, err := f.parse([]string{"--dsn", "postgres://u:s3cret@h/db", "--schema", "s", "--limit", "2", "--after", "a"}, 0, 0); err != nil {
		t.Fatal(err)
	}
	got := f.hint([][2]string{{"after", "it's"}})
	want := `pgcheckpoint threads --dsn 'postgres://u:xxxxx@h/db' --limit 2 --schema s --after 'it'\''s'`
	if got != want {
		t.Fatalf("hint = %s\nwant   %s", got, want)
	}
	if w := shellSplit(t, got); w[len(w)-1] != "it's" {
		t.Fatalf("split %q", w)
	}
}

// TestPruneDryRun counts without deleting (point 4).
func TestPruneDryRun(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	// 3 threads of 4 rows, 10 days old.
	if _, err := adminDB(t).ExecContext(testCtx(t), `INSERT INTO "`+schema+`".ziro_checkpoints
		(thread_id, checkpoint_id, snapshot, version, size_bytes, seq, created_at)
		SELECT 'th-' || t, '01a22823-0000-7000-8000-' || lpad(to_hex(t * 16 + r), 12, '0'), '{}', 0, 2, r, now() - interval '10 days'
		FROM generate_series(1, 3) t, generate_series(1, 4) r`); err != nil {
		t.Fatal(err)
	}
	out := cli(t, "", args("prune", c, []string{"--older-than", "1w", "--dry-run"})...).must(t, exitOK).stdout
	if out != "would delete 9 checkpoints in 3 threads from "+schema+".ziro_checkpoints (dry run, nothing deleted)\n" {
		t.Fatalf("prune --dry-run: %q", out)
	}
	objs := jsonLines(t, cli(t, "", args("prune", c, []string{"--older-than", "1w", "--dry-run", "--include-newest", "--json"})...).must(t, exitOK).stdout,
		"deleted", "threads", "seconds", "dry_run")
	if objs[0]["deleted"] != float64(12) || objs[0]["dry_run"] != true {
		t.Fatalf("prune --dry-run --include-newest --json: %v", objs)
	}
	if n := tableRows(t, schema); n != 12 {
		t.Fatalf("dry runs left %d rows, want 12", n)
	}
	cli(t, "", args("prune", c, []string{"--older-than", "2w", "--dry-run"})...).must(t, exitOK)
	out = cli(t, "", args("prune", c, []string{"--older-than", "1w"})...).must(t, exitOK).stdout
	if !strings.HasPrefix(out, "deleted 9 checkpoints in 3 threads from "+schema+".ziro_checkpoints in ") {
		t.Fatalf("prune: %q", out)
	}
}

// TestHelpPerCommand: help COMMAND is COMMAND --help; each command's help has a description, its own
// flags with double dashes, the connection flags apart, examples, and only flags that mean something
// (point 5). docs/cli.md names every command's usage line as --help prints it.
func TestHelpPerCommand(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		h := cli(t, "", c.name, "--help").must(t, exitOK).stdout
		if h2 := cli(t, "", "help", c.name).must(t, exitOK).stdout; h2 != h {
			t.Fatalf("help %s differs from %s --help", c.name, c.name)
		}
		if !strings.HasPrefix(h, "usage: pgcheckpoint "+usageLine(c.name)+"\n\n") || !strings.Contains(h, c.desc) {
			t.Fatalf("%s --help lacks its usage line or description:\n%s", c.name, h)
		}
		if regexp.MustCompile(`(?m)^\s+-[a-z]`).MatchString(h) {
			t.Fatalf("%s --help has a single-dash flag:\n%s", c.name, h)
		}
		if !offlineCommands[c.name] && (!strings.Contains(h, "\nconnection flags:\n  --dsn S") || !strings.Contains(h, "\nexamples:\n  ")) {
			t.Fatalf("%s --help lacks connection flags or examples:\n%s", c.name, h)
		}
		if got := strings.Contains(h, "--max-per-thread"); got != retentionCommands[c.name] {
			t.Fatalf("%s --help lists --max-per-thread: %v", c.name, got)
		}
		if !strings.Contains(string(doc), "### `"+usageLine(c.name)+"`") {
			t.Fatalf("docs/cli.md has no section ### `%s`", usageLine(c.name))
		}
		f := regexp.MustCompile(`(?m)^  (--[a-z-]+)`)
		for _, m := range f.FindAllStringSubmatch(h, -1) {
			if !strings.Contains(string(doc), m[1]) {
				t.Fatalf("docs/cli.md does not mention %s of %s", m[1], c.name)
			}
		}
	}
	for _, a := range [][]string{{"--version"}, {"version"}} {
		if r := cli(t, "", a...).must(t, exitOK); !strings.HasPrefix(r.stdout, "pgcheckpoint ") {
			t.Fatalf("%v printed %q", a, r.stdout)
		}
	}
	if h := cli(t, "", "--help").must(t, exitOK).stdout; !strings.Contains(h, "130 interrupted") || !strings.Contains(h, "5 outcome unknown") {
		t.Fatalf("global help lacks the exit statuses:\n%s", h)
	}
}

// TestGetJSON: get --json carries the metadata and the snapshot (point 9).
func TestGetJSON(t *testing.T) {
	t.Parallel()
	c := conn(t, "pgx", newSchema(t))
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	id := strings.TrimSpace(cli(t, `{"version": 7, "a": [1]}`, args("put", c, []string{"th"})...).must(t, exitOK).stdout)
	o := jsonLines(t, cli(t, "", args("get", c, []string{"--json", "th"})...).must(t, exitOK).stdout,
		"id", "thread_id", "created_at", "version", "size_bytes", "snapshot")[0]
	if o["id"] != id || o["version"] != float64(7) || o["thread_id"] != "th" || fmt.Sprint(o["snapshot"]) != "map[a:[1] version:7]" {
		t.Fatalf("get --json: %v", o)
	}
	cli(t, "", args("get", c, []string{"th", ""})...).must(t, exitUsage)
}

// TestTerminalSafety: control characters in thread ids are escaped; wide characters align (point 6).
func TestTerminalSafety(t *testing.T) {
	t.Parallel()
	c := conn(t, "pgx", newSchema(t))
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	for _, th := range []string{"red\x1b[31mtext", "tab\there", "line\nbreak", "日本語スレッド", "plain"} {
		cli(t, `{}`, args("put", c, []string{"--", th})...).must(t, exitOK)
	}
	out := cli(t, "", args("threads", c)...).must(t, exitOK).stdout
	if strings.ContainsAny(out, "\x1b\t") || strings.Count(out, "\n") != 6 {
		t.Fatalf("threads output carries control characters:\n%q", out)
	}
	for _, want := range []string{`"red\x1b[31mtext"`, `"tab\there"`, `"line\nbreak"`, "日本語スレッド"} {
		if !strings.Contains(out, want) {
			t.Fatalf("threads output lacks %s:\n%s", want, out)
		}
	}
	// Every line's second column starts at the same display column.
	col := -1
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := regexp.MustCompile(`\S  +\S`).FindStringIndex(line)
		w := displayWidth(line[:i[1]-1])
		if col >= 0 && w != col {
			t.Fatalf("column 2 at %d, want %d:\n%s", w, col, out)
		}
		col = w
	}
	if displayWidth("日本") != 4 || displayWidth("e\u0301") != 1 || displayWidth("ab") != 2 {
		t.Fatal("displayWidth")
	}
}

// TestOutcomeUnknownExit: ErrOutcomeUnknown has its own exit status and an interrupt is 130.
func TestOutcomeUnknownExit(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("put: checkpoint x: %w: %w", pgcheckpoint.ErrOutcomeUnknown, errors.New("broken pipe"))
	if exitCode(err) != exitUnknown {
		t.Fatalf("ErrOutcomeUnknown: exit %d", exitCode(err))
	}
	if exitCode(interruptedf(err, "x")) != exitInterrupted {
		t.Fatal("interruptedError is not 130")
	}
	if exitCode(fmt.Errorf("x: %w", pgcheckpoint.ErrInvalidCheckpointID)) != exitUsage {
		t.Fatal("ErrInvalidCheckpointID is not 2")
	}
}

// TestMessages: the fence, size and missing-table messages say what happened (point 7).
func TestMessages(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	r := cli(t, `{}`, args("put", c, []string{"th"})...).must(t, exitDatabase)
	if !strings.Contains(r.stderr, "the checkpoint table does not exist in root@") || !strings.Contains(r.stderr, "/test (") {
		t.Fatalf("missing table: %q", r.stderr)
	}
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	head := strings.TrimSpace(cli(t, `{}`, args("put", c, []string{"th"})...).must(t, exitOK).stdout)
	if r := cli(t, `{}`, args("put", c, []string{"--expect-empty", "th"})...).must(t, exitConflict); !strings.Contains(r.stderr, "thread th already has checkpoints (--expect-empty); nothing was stored") {
		t.Fatalf("--expect-empty conflict: %q", r.stderr)
	}
	cli(t, `{}`, args("put", c, []string{"th"})...).must(t, exitOK)
	if r := cli(t, `{}`, args("put", c, []string{"--expect-head", head, "th"})...).must(t, exitConflict); !strings.Contains(r.stderr, head+" is not the newest checkpoint of thread th") ||
		!strings.Contains(r.stderr, "pgcheckpoint head --driver pgx --dsn") {
		t.Fatalf("--expect-head conflict: %q", r.stderr)
	}
	big := `{"pad": "` + strings.Repeat("x", 2000) + `"}`
	if r := cli(t, big, args("put", c, []string{"--max-bytes", "1024", "th"})...).must(t, exitUsage); !strings.Contains(r.stderr, "the snapshot is 2.0 KiB (2011 bytes), over the limit (--max-bytes raises it") {
		t.Fatalf("too large: %q", r.stderr)
	}
	cli(t, big, args("put", c, []string{"--max-bytes", "4096", "th"})...).must(t, exitOK)
	for in, want := range map[string]string{
		"":                   "the snapshot is empty",
		"\xef\xbb\xbf{}":     "byte-order mark",
		`{"a": 1,, "b": 2}`:  "at byte offset 9",
		`{"version": "abc"}`: `top-level "version" is "abc", want an integer within int32`,
		`{"version": 1.5}`:   `top-level "version" is 1.5, want`,
	} {
		if r := cli(t, in, args("put", c, []string{"th"})...).must(t, exitUsage); !strings.Contains(r.stderr, want) {
			t.Fatalf("put %q: %q, want %q", in, r.stderr, want)
		}
	}
	if r := cli(t, "", "ls", "--driver", "postgres", "--dsn", testDSN(t), "--schema", schema, "th").must(t, exitOK); !strings.Contains(r.stdout, "CREATED") {
		t.Fatalf("--driver postgres: %q", r.stdout)
	}
}

// TestServiceWithoutFile: PGSERVICE without a service file names the environment, not an empty DSN.
func TestServiceWithoutFile(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	cmd := exec.CommandContext(testCtx(t), bin, "ls", "th")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PGSERVICE=nosuch"}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "invalid connection settings from the environment (no --dsn, no $DATABASE_URL; PGSERVICE=nosuch)") {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestCompletion: the bash script completes commands and a command's flags (run in bash when there is
// one); zsh and fish scripts name every command.
func TestCompletion(t *testing.T) {
	t.Parallel()
	script := cli(t, "", "completion", "bash").must(t, exitOK).stdout
	if bash, err := exec.LookPath("bash"); err == nil {
		probe := script + `
COMP_WORDS=(pgcheckpoint pu); COMP_CWORD=1; _pgcheckpoint; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(pgcheckpoint prune --dr); COMP_CWORD=2; _pgcheckpoint; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(pgcheckpoint get --m); COMP_CWORD=2; _pgcheckpoint; echo "3:${COMPREPLY[*]}"
`
		out, err := exec.CommandContext(testCtx(t), bash, "--norc", "-c", probe).CombinedOutput()
		if err != nil || string(out) != "1:put\n2:--dry-run --driver\n3:\n" {
			t.Fatalf("bash completion: %v\n%s", err, out)
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		out := cli(t, "", "completion", sh).must(t, exitOK).stdout
		for _, c := range []string{"migrate", "put", "head", "prune", "completion"} {
			if !strings.Contains(out, c) {
				t.Fatalf("%s completion lacks %s:\n%s", sh, c, out)
			}
		}
	}
	if !strings.Contains(cli(t, "", "completion", "fish").must(t, exitOK).stdout, "'__fish_seen_subcommand_from put' -l expect-head") {
		t.Fatal("fish completion lacks put --expect-head")
	}
	cli(t, "", "completion", "tcsh").must(t, exitUsage)
}

// TestStats: rows, threads, sizes and the largest threads, human and --json (point 10).
func TestStats(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	cli(t, "", args("migrate", c)...).must(t, exitOK)
	for i, th := range []string{"small", "big", "big", "mid"} {
		pad := map[string]int{"small": 1, "mid": 100, "big": 1000}[th]
		cli(t, fmt.Sprintf(`{"i": %d, "pad": "%s"}`, i, strings.Repeat("x", pad)), args("put", c, []string{th})...).must(t, exitOK)
	}
	o := jsonLines(t, cli(t, "", args("stats", c, []string{"--json", "--top", "2"})...).must(t, exitOK).stdout,
		"table", "rows", "threads", "snapshot_bytes", "table_bytes", "index_bytes", "dead_rows", "encryption", "largest_threads")[0]
	largest := o["largest_threads"].([]any)
	if o["rows"] != float64(4) || o["encryption"] != "none" || o["threads"] != float64(3) || o["table"] != schema+".ziro_checkpoints" || len(largest) != 2 ||
		largest[0].(map[string]any)["thread_id"] != "big" || largest[0].(map[string]any)["checkpoints"] != float64(2) ||
		largest[1].(map[string]any)["thread_id"] != "mid" || o["table_bytes"].(float64) <= 0 || o["index_bytes"].(float64) <= 0 {
		t.Fatalf("stats --json: %v", o)
	}
	h := cli(t, "", args("stats", c)...).must(t, exitOK).stdout
	for _, want := range []string{"rows            4\n", "threads         3\n", "encryption      none\n", "largest 3 threads by snapshot bytes:", "  big "} {
		if !strings.Contains(h, want) {
			t.Fatalf("stats lacks %q:\n%s", want, h)
		}
	}
	cli(t, "", args("stats", conn(t, "pgx", schema+"x"))...).must(t, exitDatabase)
}

// TestErrorEscapes: a message naming a thread id with an escape sequence reaches stderr escaped.
func TestErrorEscapes(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	report(&b, usageErrorf("thread \x1b[31mred\x07 is bad"))
	if b.String() != "pgcheckpoint: thread \\x1b[31mred\\x07 is bad\n" {
		t.Fatalf("report wrote %q", b.String())
	}
}
