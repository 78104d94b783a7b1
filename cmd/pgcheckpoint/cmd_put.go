package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdPut stores a snapshot read from FILE or stdin and prints the new checkpoint id.
func cmdPut(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "put")
	head := f.String("expect-head", "", "store only if `ID` is still the thread's newest checkpoint (else exit 4); never empty")
	empty := f.Bool("expect-empty", false, "store only if the thread has no checkpoint (else exit 4)")
	f.IntVar(&f.conn.maxBytes, "max-bytes", 0, "largest snapshot stored, in `BYTES` (0: the dialect's default; -1: no limit)")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	// An empty --expect-head is what `--expect-head "$head"` gives when the command that set head failed:
	// read as "no fence" it would overwrite another writer's progress, read as --expect-empty it would
	// guess. Refuse it: the caller says --expect-empty when it means an empty thread.
	if f.set("expect-head") && *head == "" {
		return usageErrorf("put: --expect-head is empty (did the command that read the head fail?); use --expect-empty for a thread that must have no checkpoint, or no --expect-head for an unfenced put")
	}
	if *head != "" && *empty {
		return usageErrorf("put: --expect-head and --expect-empty exclude each other")
	}
	snapshot, err := readSnapshot(ctx, e, pos[1:])
	if err != nil {
		return err
	}
	// The library checks everything; this early check only makes invalid JSON exit 2 before any
	// connection attempt, also when the server is down.
	if err := checkJSON(snapshot); err != nil {
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	var id string
	switch {
	case *empty:
		id, err = s.cp.PutIfEmpty(ctx, pos[0], snapshot)
	case *head != "":
		id, err = s.cp.PutAfter(ctx, pos[0], *head, snapshot)
	default:
		id, err = s.cp.Put(ctx, pos[0], snapshot)
	}
	check := f.hintAs("head", map[string]bool{"expect-head": true, "expect-empty": true, "max-bytes": true}, nil, pos[0])
	switch {
	case err != nil && errors.Is(err, pgcheckpoint.ErrOutcomeUnknown) && ctx.Err() != nil:
		return interruptedf(err, "put: interrupted while the checkpoint was being stored: it may or may not have been stored (%v); see `%s`", trimPrefix(err), check)
	case err != nil && ctx.Err() != nil:
		return interruptedf(err, "put: interrupted; nothing was stored")
	case errors.Is(err, pgcheckpoint.ErrConflict) && *empty:
		return &explained{fmt.Sprintf("put: thread %s already has checkpoints (--expect-empty); nothing was stored", display(pos[0])), err}
	case errors.Is(err, pgcheckpoint.ErrConflict) && *head != "":
		return &explained{fmt.Sprintf("put: %s is not the newest checkpoint of thread %s (another writer stored one, or it is not in this thread): conflict, nothing was stored; read the head with `%s`",
			*head, display(pos[0]), check), err}
	case errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge):
		return fmt.Errorf("put: the snapshot is %s (%d bytes), over the limit (--max-bytes raises it, -1 removes it): %w", size(int64(len(snapshot))), len(snapshot), err)
	case errors.Is(err, pgcheckpoint.ErrOutcomeUnknown):
		return fmt.Errorf("put: %v; read the thread (`%s`) before putting again: %w", trimPrefix(err), check, err)
	case err != nil:
		return err
	}
	if _, err := fmt.Fprintln(e.stdout, id); err != nil {
		return err
	}
	if msg := trimReport(ctx, s, pos[0]); msg != "" {
		fmt.Fprintf(e.stderr, "pgcheckpoint: put: %s\n", msg)
	}
	return nil
}

// trimReport says what the put trimmed and why, the table's retention policy deciding: a put with
// default flags never trims a table that keeps every checkpoint, and says so. A put that trimmed nothing
// on a table with a cap says nothing.
func trimReport(ctx context.Context, s *session, thread string) string {
	n := s.lastEvent().Rows
	r, err := s.cp.Retention(ctx)
	switch {
	case errors.Is(err, pgcheckpoint.ErrSchemaMissing) && n == 0:
		return fmt.Sprintf("trimmed nothing: %s records no retention policy (`pgcheckpoint migrate --max-per-thread N` records one)", s.table)
	case err != nil && n == 0:
		return "trimmed nothing"
	case err != nil:
		return fmt.Sprintf("trimmed %s of thread %s in %s", plural(n, "oldest checkpoint", "oldest checkpoints"), display(thread), s.table)
	case r.MaxCheckpointsPerThread == pgcheckpoint.NoLimit && r.MaxBytesPerThread == 0:
		return fmt.Sprintf("trimmed nothing: %s keeps every checkpoint", s.table)
	case n == 0:
		return ""
	}
	return fmt.Sprintf("trimmed %s of thread %s in %s, which keeps %s", plural(n, "oldest checkpoint", "oldest checkpoints"), display(thread), s.table, r)
}

// trimPrefix is err's message without the library's "pgcheckpoint: " prefix.
func trimPrefix(err error) string {
	msg := err.Error()
	if len(msg) > len("pgcheckpoint: ") && msg[:len("pgcheckpoint: ")] == "pgcheckpoint: " {
		return msg[len("pgcheckpoint: "):]
	}
	return msg
}

// checkJSON reports invalid JSON with the byte offset of the error, and tells an empty input and a
// byte-order mark apart from other invalid input.
func checkJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("put: the snapshot is empty (no bytes on stdin or in the file): %w", pgcheckpoint.ErrInvalidSnapshot)
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		return fmt.Errorf("put: the snapshot starts with a UTF-8 byte-order mark, which JSON does not allow: remove it: %w", pgcheckpoint.ErrInvalidSnapshot)
	}
	var v any
	if err := json.Unmarshal(b, &v); err == nil {
		// A "version" that is no int32: say the whole value (the library's message may cut it short).
		if obj, ok := v.(map[string]any); ok {
			if ver, ok := obj["version"]; ok {
				if n, isNum := ver.(float64); !isNum || n != float64(int32(n)) {
					raw, _ := json.Marshal(ver)
					if len(raw) > 60 {
						raw = append(raw[:57:57], "..."...)
					}
					return fmt.Errorf("put: the snapshot's top-level \"version\" is %s, want an integer within int32: %w", raw, pgcheckpoint.ErrInvalidSnapshot)
				}
			}
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("put: the snapshot is not valid JSON: %v at byte offset %d: %w", se, se.Offset, pgcheckpoint.ErrInvalidSnapshot)
		}
		return fmt.Errorf("put: the snapshot is not valid JSON: %v: %w", err, pgcheckpoint.ErrInvalidSnapshot)
	}
	return nil
}

// readSnapshot reads the snapshot from the file named in file (none or "-": stdin). When stdin is a
// terminal it says that it waits for JSON there; an interrupt while it waits ends the read.
func readSnapshot(ctx context.Context, e env, file []string) ([]byte, error) {
	if len(file) > 0 && file[0] != "-" {
		b, err := os.ReadFile(file[0])
		if err != nil {
			return nil, usageErrorf("put: cannot read the snapshot: %v", err)
		}
		return b, nil
	}
	if isTerminalReader(e.stdin) {
		fmt.Fprintln(e.stderr, "pgcheckpoint: put: waiting for the JSON snapshot on stdin (end it with Ctrl-D; Ctrl-C cancels)")
	}
	type read struct {
		b   []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(e.stdin)
		done <- read{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, usageErrorf("put: cannot read the snapshot from stdin: %v", r.err)
		}
		return r.b, nil
	case <-ctx.Done():
		return nil, interruptedf(ctx.Err(), "put: interrupted while reading the snapshot from stdin; nothing was stored")
	}
}

// isTerminalReader reports whether r is a terminal.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// plural formats n with the singular or plural noun: "1 thread", "2 threads".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// explained replaces a library error's message with the CLI's own, keeping it for errors.Is (exit code).
type explained struct {
	msg string
	err error
}

func (x *explained) Error() string { return x.msg }
func (x *explained) Unwrap() error { return x.err }
