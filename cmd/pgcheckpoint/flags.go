package main

import (
	"flag"
	"fmt"
	"github.com/ziroagent/pgcheckpoint"
	"io"
	"strings"
)

// connFlags are the connection flags every command takes.
type connFlags struct {
	dsn, driver, dialect, schema, table string
	storage                             string // "full" or "delta" (docs/storage.md)
	maxPerThread                        int
	maxBytesPerThread                   int64 // retention byte budget: 0 follows the table, -1 none
	maxBytes                            int   // put --max-bytes; 0: the library's default
	keysFile                            string
	// keys is the key ring of --keys-file or $PGCHECKPOINT_KEYS (keys.go), nil without one: every
	// Checkpointer the command opens seals and opens snapshots with it.
	keys pgcheckpoint.KeyProvider
}

// flags is a command's flag set with the connection flags registered.
type flags struct {
	*flag.FlagSet
	conn connFlags
	e    env
}

// newFlags returns the flag set of command name, with the connection flags registered.
func newFlags(e env, name string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), e: e}
	f.SetOutput(io.Discard)
	f.Usage = func() {} // Parse calls Usage on every error; help is printed on -h only (parse)
	f.StringVar(&f.conn.dsn, "dsn", "", "connection string (default $DATABASE_URL, else libpq environment/defaults)")
	f.StringVar(&f.conn.driver, "driver", "pgx", "database/sql driver: pgx or pq (postgres: lib/pq)")
	f.StringVar(&f.conn.dialect, "dialect", "auto", "auto, postgres or cockroach")
	f.StringVar(&f.conn.schema, "schema", "public", "schema of the checkpoint table")
	f.StringVar(&f.conn.table, "table", "ziro_checkpoints", "checkpoint table")
	f.IntVar(&f.conn.maxPerThread, "max-per-thread", 0, "retention cap per thread: 0 follows the table's policy; N or -1 (keep all) must match it (migrate records it)")
	f.Int64Var(&f.conn.maxBytesPerThread, "max-bytes-per-thread", 0, "retention byte budget per thread: 0 follows the table's policy; N or -1 (none) must match it (migrate records it)")
	f.StringVar(&f.conn.storage, "storage", "full", "table layout: full or delta (docs/storage.md)")
	f.StringVar(&f.conn.keysFile, "keys-file", "", "encryption key ring file (default $"+keysEnv+")")
	return f
}

// parse parses flags placed before, between or after the positional arguments ("--" ends the flags)
// and checks the number of positional arguments. -h and --help print the usage and return flag.ErrHelp.
func (f *flags) parse(args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if err == flag.ErrHelp {
			f.help()
			return nil, err
		}
		if err != nil {
			return nil, usageErrorf("%s: %v (see pgcheckpoint %s -h)", f.Name(), err, f.Name())
		}
		rest := f.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < minArgs:
		return nil, usageErrorf("%s: missing argument (usage: pgcheckpoint %s)", f.Name(), usageLine(f.Name()))
	case len(pos) > maxArgs:
		return nil, usageErrorf("%s: unexpected argument %q (usage: pgcheckpoint %s)", f.Name(), pos[maxArgs], usageLine(f.Name()))
	}
	if f.conn.driver == "postgres" { // lib/pq registers itself as "postgres"
		f.conn.driver = "pq"
	}
	if _, err := pgcheckpoint.ParseStorage(f.conn.storage); err != nil {
		return nil, usageErrorf("%s: --storage must be full or delta, got %q", f.Name(), f.conn.storage)
	}
	if f.conn.maxPerThread < -1 {
		return nil, usageErrorf("%s: --max-per-thread must be -1 (no cap), 0 (the table's policy) or positive, got %d", f.Name(), f.conn.maxPerThread)
	}
	if f.conn.maxBytesPerThread < -1 {
		return nil, usageErrorf("%s: --max-bytes-per-thread must be -1 (no byte budget), 0 (the table's policy) or positive, got %d", f.Name(), f.conn.maxBytesPerThread)
	}
	if !offlineCommands[f.Name()] {
		keys, err := loadKeys(f.conn.keysFile)
		if err != nil {
			return nil, err
		}
		f.conn.keys = keys
	}
	return pos, nil
}

// connFlagNames are the flags newFlags registers for every command.
var connFlagNames = map[string]bool{"dsn": true, "driver": true, "dialect": true, "schema": true, "table": true, "max-per-thread": true, "max-bytes-per-thread": true, "storage": true, "keys-file": true}

// retentionCommands are the commands --max-per-thread and --max-bytes-per-thread mean something for; the others accept it (so a
// script may pass the same flags everywhere) but do not list it.
var retentionCommands = map[string]bool{"put": true, "migrate": true, "demo": true, "bench": true}

// offlineCommands connect to nothing: their help lists no connection flags.
var offlineCommands = map[string]bool{"version": true, "completion": true, "keygen": true}

// help prints the command's usage line, description, own flags, connection flags and examples.
func (f *flags) help() {
	w := f.e.stdout
	var c command
	for _, x := range commands() {
		if x.name == f.Name() {
			c = x
		}
	}
	fmt.Fprintf(w, "usage: pgcheckpoint %s\n", usageLine(f.Name()))
	if c.desc != "" {
		fmt.Fprintf(w, "\n%s\n", c.desc)
	}
	var own []string
	f.VisitAll(func(fl *flag.Flag) {
		if connFlagNames[fl.Name] {
			return
		}
		arg, text := flag.UnquoteUsage(fl)
		if _, isBool := fl.Value.(interface{ IsBoolFlag() bool }); !isBool && arg == "" {
			arg = "V"
		}
		left := "--" + fl.Name
		if arg != "" {
			left += " " + arg
		}
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			text += " (default " + fl.DefValue + ")"
		}
		own = append(own, fmt.Sprintf("  %-20s%s", left, text))
	})
	if len(own) > 0 {
		fmt.Fprintf(w, "\nflags:\n%s\n", strings.Join(own, "\n"))
	}
	if !offlineCommands[f.Name()] {
		fmt.Fprint(w, "\nconnection flags:\n"+connUsage)
		if retentionCommands[f.Name()] {
			fmt.Fprint(w, retentionUsage)
		}
	}
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nexamples:\n  %s\n", strings.Join(c.examples, "\n  "))
	}
}

func usageLine(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return strings.TrimSpace(c.name + " " + c.args)
		}
	}
	return name
}

// set reports whether the flag was given on the command line.
func (f *flags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

// hint is a command line to copy and paste: pgcheckpoint, the command, every flag the user gave (their
// values as given, except a password in --dsn, which is masked so a pasted hint fails loudly rather than
// reaching another database), the flags in extra (which replace the user's flags of the same name, e.g.
// --after for the next page) and the positional arguments.
func (f *flags) hint(extra [][2]string, pos ...string) string {
	return f.hintAs(f.Name(), nil, extra, pos...)
}

// hintAs is hint for another command (cmd) run with this command's flags, minus the flags in skip.
func (f *flags) hintAs(cmd string, skip map[string]bool, extra [][2]string, pos ...string) string {
	parts := []string{"pgcheckpoint", cmd}
	replaced := map[string]bool{}
	for k := range skip {
		replaced[k] = true
	}
	for _, x := range extra {
		replaced[x[0]] = true
	}
	f.Visit(func(fl *flag.Flag) {
		if replaced[fl.Name] {
			return
		}
		v := fl.Value.String()
		if fl.Name == "dsn" {
			v = redact(v)
		}
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && v == "true" {
			parts = append(parts, "--"+fl.Name)
			return
		}
		parts = append(parts, "--"+fl.Name, shellQuote(v))
	})
	for _, x := range extra {
		parts = append(parts, "--"+x[0], shellQuote(x[1]))
	}
	if len(pos) > 0 && strings.HasPrefix(pos[0], "-") {
		parts = append(parts, "--")
	}
	if len(pos) > 0 {
		for _, p := range pos {
			parts = append(parts, shellQuote(p))
		}
	}
	return strings.Join(parts, " ")
}
