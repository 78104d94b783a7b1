package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/ziroagent/pgcheckpoint"
)

// Exit statuses, as the CLI contract fixes them.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitDatabase = 3
	exitConflict = 4
	// exitUnknown: a put may or may not have stored its checkpoint (ErrOutcomeUnknown); read the thread.
	exitUnknown = 5
	// exitKeys: an encryption key is missing (no key ring, or not the key a row names), a snapshot does
	// not open with its key, or an encrypted table refused a plaintext write.
	exitKeys = 6
	// exitInterrupted: SIGINT or SIGTERM stopped the command (128 + SIGINT, as shells report it).
	exitInterrupted = 130
)

// env is what a command sees of the process: its arguments' streams. Commands never touch os.Std*.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand: its usage line, a summary for the program's help, and for its own help a
// description and examples.
type command struct {
	name, args, summary string
	desc                string
	examples            []string
	run                 func(ctx context.Context, e env, args []string) error
	hidden              bool
}

func commands() []command {
	return []command{
		{name: "migrate", args: "[--print [--ttl DURATION [--ttl-cron CRON]]] [--max-per-thread N] [--max-bytes-per-thread B]", summary: "create the table and index if missing (idempotent); --print writes the DDL",
			desc: "Creates the schema, table and index when missing and upgrades a table created by the TypeScript\npackage; says whether it changed anything. Idempotent and safe to run from several processes at once.\n" +
				"Records the table's retention policy: --max-per-thread N (-1: keep every checkpoint) sets it, also on a\ntable that records another; without it a table that records none gets 100. --max-bytes-per-thread B\n(-1: none) sets the byte budget: each thread keeps its newest checkpoints whose sizes sum to at most B\nbytes (always the newest); with both, whichever keeps fewer. Prints the policy.\n" +
				"--print --dialect cockroach --ttl D also prints CockroachDB's row-level TTL (checkpoints expire D after\ncreated_at, deleted by the cluster's TTL job; it may delete a thread's newest: docs/cockroachdb.md).",
			examples: []string{"pgcheckpoint migrate --dsn postgres://app@db:5432/app", "pgcheckpoint migrate --max-per-thread -1",
				"pgcheckpoint migrate --max-bytes-per-thread 10485760",
				"pgcheckpoint migrate --print --dialect cockroach > 0001_checkpoints.sql", "pgcheckpoint migrate --print --dialect cockroach --ttl 720h"},
			run: cmdMigrate},
		{name: "put", args: "[--expect-head ID | --expect-empty] THREAD [FILE]", summary: "store a JSON snapshot from FILE or stdin; prints the new id",
			desc:     "Stores the JSON object in FILE (or stdin; - also means stdin) as the thread's newest checkpoint and\nprints its id. It trims the thread by the table's retention policy, and stderr says how many it removed.",
			examples: []string{`id=$(echo '{"version": 2, "step": 1}' | pgcheckpoint put thread-42)`, `pgcheckpoint put --expect-head "$id" thread-42 next.json`},
			run:      cmdPut},
		{name: "get", args: "[--json] THREAD [ID]", summary: "print a snapshot (the newest when ID is omitted)",
			desc:     "Prints the stored snapshot and a newline: the newest, or checkpoint ID. --json wraps it with its\nmetadata: id, created_at, version, size_bytes, snapshot.",
			examples: []string{"pgcheckpoint get thread-42", "pgcheckpoint get --json thread-42 | jq .version"},
			run:      cmdGet},
		{name: "head", args: "THREAD", summary: "print the id of the thread's newest checkpoint (for --expect-head)",
			desc:     "Prints the id of the thread's newest checkpoint and a newline; exit 1 when the thread has none.",
			examples: []string{`head=$(pgcheckpoint head thread-42) && pgcheckpoint put --expect-head "$head" thread-42 next.json`},
			run:      cmdHead},
		{name: "ls", args: "[--limit N] [--before ID] [--json] THREAD", summary: "list a thread's checkpoints, newest first",
			desc:     "Lists the thread's checkpoints, newest first, --limit at a time (default: the retention cap). When\nmore remain, the human output ends with the command that prints the next page.",
			examples: []string{"pgcheckpoint ls thread-42", "pgcheckpoint ls --json --limit 10 thread-42"},
			run:      cmdLs},
		{name: "rm", args: "[--dry-run] THREAD [ID]", summary: "delete one checkpoint, or the whole thread; says what it removed",
			desc:     "Deletes checkpoint ID of the thread, or every checkpoint of the thread, and says how many it removed\nfrom which table. --dry-run says what it would remove and deletes nothing.",
			examples: []string{"pgcheckpoint rm --dry-run thread-42", "pgcheckpoint rm thread-42 01a22823-b5e6-753b-83c3-37f19afaa264"},
			run:      cmdRm},
		{name: "fork", args: "[--history] THREAD ID NEWTHREAD", summary: "start NEWTHREAD from checkpoint ID of THREAD; prints its newest id",
			desc:     "Copies checkpoint ID of THREAD (with --history also its older ones, up to the table's cap) into\nNEWTHREAD, on the server in one statement, and prints the new thread's newest id (ID: copies keep\ntheir ids). Exit 1 when the checkpoint does not exist, 4 when NEWTHREAD has checkpoints already.",
			examples: []string{"pgcheckpoint fork thread-42 01a22823-b5e6-753b-83c3-37f19afaa264 thread-42-retry", "pgcheckpoint fork --history thread-42 \"$(pgcheckpoint head thread-42)\" thread-42-copy"},
			run:      cmdFork},
		{name: "threads", args: "[--limit N] [--after THREAD] [--prefix P] [--json]", summary: "list threads in byte order of their ids",
			desc:     "Lists threads in byte order of their ids, one page at a time. When more remain, the human output\nends with the command that prints the next page. --prefix lists only the threads whose id starts\nwith P (a range scan of the primary key: one tenant's threads cost the same whatever the others).",
			examples: []string{"pgcheckpoint threads --limit 20", "pgcheckpoint threads --prefix tenant-42/", "pgcheckpoint threads --json | jq -r .thread_id"},
			run:      cmdThreads},
		{name: "prune", args: "--older-than DURATION [--include-newest] [--prefix P] [--dry-run] [--json]", summary: "delete old checkpoints of every thread, keeping each thread's newest",
			desc:     "Deletes, in every thread, the checkpoints older than DURATION (36h, 7d, 1w, 1d12h), in short batches;\neach thread keeps its newest unless --include-newest. Ctrl-C stops it and says how much it deleted;\nrerun to continue. --dry-run counts what it would delete (one read of the table) and deletes nothing.\n--prefix prunes only the threads whose id starts with P.",
			examples: []string{"pgcheckpoint prune --older-than 30d --dry-run", "pgcheckpoint prune --older-than 7d --json"},
			run:      cmdPrune},
		{name: "stats", args: "[--top N] [--prefix P] [--json]", summary: "how big the table is: rows, threads, sizes, dead rows, the largest threads",
			desc:     "Reports the table's rows, threads, snapshot bytes, table and index size and dead rows (the bloat\nestimate, PostgreSQL's statistics), and the largest threads by snapshot bytes. Two reads of the\ntable's heap (no snapshot is read); 0.5-0.7 s measured on 1,000,000 rows. --prefix counts only the\nthreads whose id starts with P, through the primary key; the table and index sizes stay the table's.",
			examples: []string{"pgcheckpoint stats", "pgcheckpoint stats --json --top 20 | jq .largest_threads"},
			run:      cmdStats},
		{name: "convert", args: "--from TABLE --to TABLE --storage delta|full [--resume] [--batch N] [--json]", summary: "copy a table into a new table of the other layout (full to delta, or back)",
			desc: "Copies every checkpoint of --from into --to, a table of the --storage layout (--from has the other):\nids, created_at, version, size, seq and snapshots as they are. --to is created when missing and must be\nempty. Offline: stop the writers first, then swap the names or point the application at --to\n(docs/storage.md, Converting). Threads are copied in byte order, --batch threads per statement; Ctrl-C\nstops it and says how far it got; --resume continues after the last thread copied.",
			examples: []string{"pgcheckpoint convert --from ziro_checkpoints --to ziro_checkpoints_delta --storage delta",
				"pgcheckpoint convert --from ziro_checkpoints_delta --to ziro_checkpoints_full --storage full --resume"},
			run: cmdConvert},
		{name: "rekey", args: "[--batch N] [--after THREAD/ID] [--json]", summary: "encrypt the table online, or move its rows to the current key",
			desc: "Seals every row of the table that is plaintext or sealed under an older key with the current key of\n$PGCHECKPOINT_KEYS or --keys-file (the first entry; keep the older ones in the ring until rekey ends),\nwhile writers keep running. A plaintext table is first made to refuse plaintext writes (state\nmigrating), and once every row is sealed it requires encryption (state required). --batch rows per\ntransaction; one progress line per batch on stderr. Ctrl-C stops it and prints the position to rerun\nwith --after. Exit 6 without keys, or when a row's key is not in the ring. Full tables only, for now.",
			examples: []string{`export PGCHECKPOINT_KEYS="$(pgcheckpoint keygen k1)"; pgcheckpoint rekey`,
				"pgcheckpoint rekey --keys-file ring.txt --batch 500 --after 'thread-42/01a22823-b5e6-753b-83c3-37f19afaa264'"},
			run: cmdRekey},
		{name: "keygen", args: "[ID]", summary: "print a new encryption key, id:base64, for $PGCHECKPOINT_KEYS or --keys-file",
			desc:     "Prints one line ID:SECRET: a new 256-bit key from the system's random source in standard base64,\nunder ID (1 to 64 of A-Za-z0-9._-; default k and the UTC time). Put the new key first in the ring to\nmake it current, keep the older ones after it, and run pgcheckpoint rekey.",
			examples: []string{"pgcheckpoint keygen k2 >> ring.txt", `export PGCHECKPOINT_KEYS="$(pgcheckpoint keygen k2),$PGCHECKPOINT_KEYS"`},
			run:      cmdKeygen},
		{name: "demo", args: "[--keep]", summary: "crash-and-resume walkthrough: an agent killed mid-run resumes from its checkpoint",
			desc:     "Runs a simulated agent in a child process, kills it with SIGKILL mid-run and resumes it from its\nnewest checkpoint. Without a reachable database it runs in memory.",
			examples: []string{"go run -C cmd/pgcheckpoint . demo"},
			run:      cmdDemo},
		{name: "bench", args: "[--sizes 1KiB,64KiB] [--workers 1,8] [--duration 3s] [--json] [--workload conversation [--steps 200] [--repeat 3] [--walinspect] [--plot FILE]]", summary: "the checkpointer next to the raw-driver floor",
			desc:     "Measures put, get-latest and list of the checkpointer next to plain SQL on a scratch table with the\nsame columns; the scratch tables are dropped at the end, also on Ctrl-C.",
			examples: []string{"pgcheckpoint bench --sizes 1KiB --workers 1 --duration 1s"},
			run:      cmdBench},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script",
			desc:     "Prints a completion script for bash, zsh or fish: the commands and each command's flags.",
			examples: []string{`eval "$(pgcheckpoint completion bash)"`, "pgcheckpoint completion fish > ~/.config/fish/completions/pgcheckpoint.fish"},
			run:      cmdCompletion},
		{name: "version", summary: "print the version", desc: "Prints the program's version (the module version it was built from).", run: cmdVersion},
		{name: demoAgentCommand, run: cmdDemoAgent, hidden: true},
	}
}

const usageHead = `pgcheckpoint stores AI-agent checkpoints (JSON snapshots per thread) in PostgreSQL or CockroachDB.

usage: pgcheckpoint <command> [flags] [args]
       pgcheckpoint help <command>    (or pgcheckpoint <command> --help)
       pgcheckpoint --version

commands:
`

const connUsage = `  --dsn S             connection string; default $DATABASE_URL, else libpq environment/defaults
                      (PGHOST, PGPORT, PGUSER, PGDATABASE, ...; without them the local socket, user and
                      database named after the OS user)
  --driver pgx|pq     database/sql driver (default pgx; postgres is lib/pq's name: pq)
  --dialect D         auto|postgres|cockroach (default auto: ask the server)
  --schema S          schema of the table (default public)
  --table S           table (default ziro_checkpoints)
  --keys-file FILE    encryption key ring: id:base64 entries, the current key first (default
                      $PGCHECKPOINT_KEYS); snapshots are sealed on put and opened on get
`

const retentionUsage = `  --max-per-thread N  retention cap per thread: the table records it (migrate --max-per-thread N sets
                      it; a new table gets 100); 0, the default, follows the table; N or -1 (keep all)
                      must match it
  --max-bytes-per-thread B  retention byte budget per thread (sizes as sent): the table records it
                      (migrate --max-bytes-per-thread B sets it; a new table gets none); 0, the
                      default, follows the table; B or -1 (none) must match it
`

const exitUsageText = `exit status: 0 ok, 1 not found, 2 bad input or usage, 3 database error, 4 conflict (fenced put lost,
fork target exists, convert target not empty), 5 outcome unknown (a put may or may not have been stored), 6 encryption key missing or wrong (or a
plaintext write to an encrypted table), 130 interrupted (Ctrl-C, SIGTERM)
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "%s\n           %s\n", strings.TrimRight(fmt.Sprintf("  %-8s %s", c.name, c.args), " "), c.summary)
		}
	}
	fmt.Fprint(w, "\nconnection flags (every command that connects):\n"+connUsage+retentionUsage+"\n"+exitUsageText)
}

// version is the module version the binary was built from ("(devel)" in a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func cmdVersion(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "version")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "pgcheckpoint %s %s\n", version(), runtime.Version())
	return err
}

// run is the whole CLI: it returns the exit status instead of exiting, so tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help":
		usage(stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		args = []string{args[1], "--help"}
	case "--version", "-version", "-V":
		args = []string{"version"}
	}
	if strings.HasPrefix(args[0], "-") {
		return report(stderr, usageErrorf("flags go after the command name: pgcheckpoint <command> [flags] [args] (see pgcheckpoint -h)"))
	}
	for _, c := range commands() {
		if c.name == args[0] {
			where := &targetHolder{}
			err := c.run(context.WithValue(ctx, targetKey{}, where), e, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			if err != nil && ctx.Err() != nil && exitCode(err) != exitInterrupted && exitCode(err) != exitUnknown {
				err = interruptedf(err, "%s: interrupted", c.name)
			}
			return reportAt(stderr, err, where.get())
		}
	}
	return report(stderr, usageErrorf("unknown command %q (see pgcheckpoint -h)", args[0]))
}

// usageError is bad usage or bad input found by the CLI itself: exit 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// interruptedError is a command stopped by SIGINT/SIGTERM: exit 130. msg says what was done.
type interruptedError struct {
	msg string
	err error
}

func (i *interruptedError) Error() string { return i.msg }
func (i *interruptedError) Unwrap() error { return i.err }

func interruptedf(err error, format string, a ...any) error {
	return &interruptedError{msg: fmt.Sprintf(format, a...), err: err}
}

// dbError is a database error the CLI explains itself (unreachable server, missing table): exit 3.
type dbError struct {
	msg string
	err error
}

func (d *dbError) Error() string { return d.msg }
func (d *dbError) Unwrap() error { return d.err }

// exitCode maps an error to the contract's exit status.
func exitCode(err error) int {
	var (
		u  *usageError
		ie *interruptedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ie):
		return exitInterrupted
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, pgcheckpoint.ErrOutcomeUnknown):
		return exitUnknown
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		return exitNotFound
	case errors.Is(err, pgcheckpoint.ErrKeyMissing), errors.Is(err, pgcheckpoint.ErrDecryptFailed), errors.Is(err, pgcheckpoint.ErrEncryptionRequired):
		return exitKeys
	case errors.Is(err, pgcheckpoint.ErrConflict), errors.Is(err, pgcheckpoint.ErrThreadExists), errors.Is(err, pgcheckpoint.ErrTableNotEmpty):
		return exitConflict
	case errors.Is(err, pgcheckpoint.ErrInvalidSnapshot),
		errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge),
		errors.Is(err, pgcheckpoint.ErrInvalidThreadID),
		errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID),
		errors.Is(err, pgcheckpoint.ErrInvalidIdentifier),
		errors.Is(err, pgcheckpoint.ErrInvalidOptions),
		errors.Is(err, pgcheckpoint.ErrRetentionMismatch):
		return exitUsage
	}
	return exitDatabase
}

// report writes err as one line on stderr and returns its exit status. Every message goes through
// redact, so no password reaches the terminal whatever the driver put in its error text.
func report(stderr io.Writer, err error) int { return reportAt(stderr, err, "") }

// reportAt is report for a command that connected to target (user@host:port/database; "" if none).
func reportAt(stderr io.Writer, err error, target string) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	msg := err.Error()
	if code == exitDatabase && errors.Is(err, pgcheckpoint.ErrSchemaMissing) {
		detail := msg
		var st interface{ SQLState() string }
		if errors.As(err, &st) {
			detail = st.(error).Error()
		}
		in := ""
		if target != "" {
			in = " in " + target
		}
		msg = "the checkpoint table does not exist" + in + " (" + detail + "): run `pgcheckpoint migrate` with the same --dsn, --schema and --table"
	}
	if code == exitKeys {
		// The library's words for the CLI's flags.
		msg = strings.ReplaceAll(msg, "Options.Keys", "keys ($"+keysEnv+" or --keys-file)")
	}
	msg = strings.TrimPrefix(msg, "pgcheckpoint: ")
	msg = strings.Join(strings.Fields(escapeControls(redact(msg))), " ")
	fmt.Fprintf(stderr, "pgcheckpoint: %s\n", msg)
	return code
}

// escapeControls writes every non-printable rune of msg (ESC, other control characters; tabs and
// newlines become spaces later) as a Go escape, so an error naming a hostile thread id cannot drive the
// terminal.
func escapeControls(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\t' || r == '\n' || r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}
