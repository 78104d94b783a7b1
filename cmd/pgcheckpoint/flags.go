package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// connFlags are the connection flags every command takes.
type connFlags struct {
	dsn, driver, dialect, schema, table string
	maxPerThread                        int
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
	f.StringVar(&f.conn.driver, "driver", "pgx", "database/sql driver: pgx or pq")
	f.StringVar(&f.conn.dialect, "dialect", "auto", "auto, postgres or cockroach")
	f.StringVar(&f.conn.schema, "schema", "public", "schema of the checkpoint table")
	f.StringVar(&f.conn.table, "table", "ziro_checkpoints", "checkpoint table")
	f.IntVar(&f.conn.maxPerThread, "max-per-thread", 0, "retention cap per thread (0: the default, 100; -1: no cap)")
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
	if f.conn.maxPerThread < -1 {
		return nil, usageErrorf("%s: --max-per-thread must be -1 (no cap), 0 (the default) or positive, got %d", f.Name(), f.conn.maxPerThread)
	}
	return pos, nil
}

func (f *flags) help() {
	fmt.Fprintf(f.e.stdout, "usage: pgcheckpoint %s\n\nflags:\n", usageLine(f.Name()))
	f.SetOutput(f.e.stdout)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

func usageLine(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return strings.TrimSpace(c.name + " " + c.args)
		}
	}
	return name
}
