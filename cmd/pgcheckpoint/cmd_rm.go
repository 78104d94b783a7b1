package main

import "context"

// cmdRm deletes one checkpoint or a whole thread; deleting nothing succeeds.
func cmdRm(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "rm")
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
	return s.cp.Delete(ctx, pos[0], id)
}
