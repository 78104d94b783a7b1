package main

import (
	"context"
	"fmt"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdFork starts a new thread from a checkpoint of another and prints the new thread's newest id.
func cmdFork(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "fork")
	history := f.Bool("history", false, "also copy the older checkpoints, up to the table's retention cap in all")
	pos, err := f.parse(args, 3, 3)
	if err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	id, err := s.cp.Fork(ctx, pos[0], pos[1], pos[2], pgcheckpoint.ForkOptions{History: *history})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, id)
	return err
}
