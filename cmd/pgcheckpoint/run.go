package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ziroagent/pgcheckpoint"
)

// Exit statuses, as the CLI contract fixes them.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitDatabase = 3
	exitConflict = 4
)

// env is what a command sees of the process: its arguments' streams. Commands never touch os.Std*.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand: its usage line and what it does with the arguments after its name.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e env, args []string) error
	hidden              bool
}

func commands() []command {
	return []command{
		{name: "migrate", args: "[--print]", summary: "create the table and index if missing (idempotent); --print writes the DDL", run: cmdMigrate},
		{name: "put", args: "[--expect-head ID | --expect-empty] THREAD [FILE]", summary: "store a JSON snapshot from FILE or stdin; prints the new id", run: cmdPut},
		{name: "get", args: "THREAD [ID]", summary: "print a snapshot (the newest when ID is omitted)", run: cmdGet},
		{name: "ls", args: "[--limit N] [--before ID] [--json] THREAD", summary: "list a thread's checkpoints, newest first", run: cmdLs},
		{name: "rm", args: "THREAD [ID]", summary: "delete one checkpoint, or the whole thread", run: cmdRm},
		{name: "threads", args: "[--limit N] [--after THREAD] [--json]", summary: "list threads in byte order of their ids", run: cmdThreads},
		{name: "prune", args: "--older-than DURATION [--include-newest] [--json]", summary: "delete old checkpoints of every thread, keeping each thread's newest", run: cmdPrune},
		{name: "demo", args: "[--keep]", summary: "crash-and-resume walkthrough: an agent killed mid-run resumes from its checkpoint", run: cmdDemo},
		{name: "bench", args: "[--sizes 1KiB,64KiB] [--workers 1,8] [--duration 3s] [--json]", summary: "the checkpointer next to the raw-driver floor", run: cmdBench},
		{name: demoAgentCommand, run: cmdDemoAgent, hidden: true},
	}
}

const usageHead = `pgcheckpoint stores AI-agent checkpoints (JSON snapshots per thread) in PostgreSQL or CockroachDB.

usage: pgcheckpoint <command> [flags] [args]

commands:
`

const usageConn = `
connection flags (every command):
  --dsn S             connection string; default $DATABASE_URL, else libpq environment/defaults
                      (PGHOST, PGPORT, PGUSER, PGDATABASE, ...; without them the local socket, user and
                      database named after the OS user)
  --driver pgx|pq     database/sql driver (default pgx)
  --dialect D         auto|postgres|cockroach (default auto: ask the server)
  --schema S          schema of the table (default public)
  --table S           table (default ziro_checkpoints)
  --max-per-thread N  retention cap (default 100; 0 means the default; -1 disables it)

exit status: 0 ok, 1 not found, 2 bad input or usage, 3 database error, 4 conflict (fenced put lost)
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-8s %s\n           %s\n", c.name, c.args, c.summary)
		}
	}
	fmt.Fprint(w, usageConn)
}

// run is the whole CLI: it returns the exit status instead of exiting, so tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		return report(stderr, usageErrorf("flags go after the command name: pgcheckpoint <command> [flags] [args] (see pgcheckpoint -h)"))
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return report(stderr, err)
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

// dbError is a database error the CLI explains itself (unreachable server, missing table): exit 3.
type dbError struct {
	msg string
	err error
}

func (d *dbError) Error() string { return d.msg }
func (d *dbError) Unwrap() error { return d.err }

// exitCode maps an error to the contract's exit status.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		return exitNotFound
	case errors.Is(err, pgcheckpoint.ErrConflict):
		return exitConflict
	case errors.Is(err, pgcheckpoint.ErrInvalidSnapshot),
		errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge),
		errors.Is(err, pgcheckpoint.ErrInvalidThreadID),
		errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID),
		errors.Is(err, pgcheckpoint.ErrInvalidIdentifier),
		errors.Is(err, pgcheckpoint.ErrInvalidOptions):
		return exitUsage
	}
	return exitDatabase
}

// report writes err as one line on stderr and returns its exit status. Every message goes through
// redact, so no password reaches the terminal whatever the driver put in its error text.
func report(stderr io.Writer, err error) int {
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
		msg = "the checkpoint table does not exist (" + detail + "): run `pgcheckpoint migrate` with the same --schema and --table"
	}
	msg = strings.TrimPrefix(msg, "pgcheckpoint: ")
	msg = strings.Join(strings.Fields(redact(msg)), " ")
	fmt.Fprintf(stderr, "pgcheckpoint: %s\n", msg)
	return code
}
