package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdPut stores a snapshot read from FILE or stdin and prints the new checkpoint id.
func cmdPut(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "put")
	head := f.String("expect-head", "", "store only if `ID` is still the thread's newest checkpoint (else exit 4)")
	empty := f.Bool("expect-empty", false, "store only if the thread has no checkpoint (else exit 4)")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	if *head != "" && *empty {
		return usageErrorf("put: --expect-head and --expect-empty exclude each other")
	}
	snapshot, err := readSnapshot(e.stdin, pos[1:])
	if err != nil {
		return err
	}
	// The library checks everything; this early check only makes invalid JSON exit 2 before any
	// connection attempt, also when the server is down.
	if !json.Valid(snapshot) {
		return fmt.Errorf("put: the snapshot is not valid JSON: %w", pgcheckpoint.ErrInvalidSnapshot)
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	var id string
	switch {
	case *empty:
		id, err = s.cp.PutAfter(ctx, pos[0], "", snapshot)
	case *head != "":
		id, err = s.cp.PutAfter(ctx, pos[0], *head, snapshot)
	default:
		id, err = s.cp.Put(ctx, pos[0], snapshot)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, id)
	return err
}

// readSnapshot reads the snapshot from the file named in file (none or "-": stdin). Whether it is JSON
// the library checks.
func readSnapshot(stdin io.Reader, file []string) ([]byte, error) {
	if len(file) == 0 || file[0] == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, usageErrorf("put: cannot read the snapshot from stdin: %v", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(file[0])
	if err != nil {
		return nil, usageErrorf("put: cannot read the snapshot: %v", err)
	}
	return b, nil
}
