package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdRm deletes one checkpoint or a whole thread and says what it removed; deleting nothing succeeds.
func cmdRm(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "rm")
	dryRun := f.Bool("dry-run", false, "say what would be removed; delete nothing")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	id := ""
	if len(pos) == 2 {
		if pos[1] == "" {
			return usageErrorf("rm: the checkpoint id is empty; to delete the whole thread, name only the thread")
		}
		id = pos[1]
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	thread := display(pos[0])
	if *dryRun {
		n, err := rmCount(ctx, s, pos[0], id)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "would remove %s (dry run, nothing deleted)\n", rmWhat(n, thread, id, s.table))
		return err
	}
	if id == "" {
		err = s.cp.DeleteThread(ctx, pos[0])
	} else {
		err = s.cp.Delete(ctx, pos[0], id)
	}
	if err != nil {
		return err
	}
	n := s.lastEvent().Rows
	_, err = fmt.Fprintf(e.stdout, "removed %s\n", rmWhat(n, thread, id, s.table))
	return err
}

// rmWhat describes n removed checkpoints: "3 checkpoints of thread t1 from public.ziro_checkpoints".
func rmWhat(n int, thread, id, table string) string {
	switch {
	case id != "" && n == 0:
		return fmt.Sprintf("nothing: thread %s has no checkpoint %s in %s", thread, id, table)
	case id != "":
		return fmt.Sprintf("checkpoint %s of thread %s from %s", id, thread, table)
	case n == 0:
		return fmt.Sprintf("nothing: thread %s has no checkpoints in %s", thread, table)
	}
	return fmt.Sprintf("%s of thread %s (the whole thread) from %s", plural(n, "checkpoint", "checkpoints"), thread, table)
}

// rmCount counts what rm would delete: the checkpoint (Get) or the thread's rows (List, which reads
// metadata only, all of it).
func rmCount(ctx context.Context, s *session, thread, id string) (int, error) {
	if id != "" {
		_, err := s.cp.Get(ctx, thread, id)
		if errors.Is(err, pgcheckpoint.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	cps, err := s.cp.List(ctx, thread, pgcheckpoint.ListOptions{Limit: -1})
	return len(cps), err
}
