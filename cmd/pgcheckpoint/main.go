// Command pgcheckpoint manages agent checkpoints stored by the pgcheckpoint library in PostgreSQL or
// CockroachDB: create the table, put, get, list and delete checkpoints, fork a thread, list threads,
// prune old checkpoints, run a crash-and-resume demo and benchmark the checkpointer against the raw
// driver.
//
// Run `pgcheckpoint -h` for the commands and docs/cli.md for the full reference.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx: the command stops, says what it did and exits 130. A second one
	// kills the process as if pgcheckpoint had not caught the first.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
