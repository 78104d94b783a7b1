package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// rekeyResult is the `rekey --json` object.
type rekeyResult struct {
	State    string  `json:"state"`
	Scanned  int64   `json:"scanned"`
	Resealed int64   `json:"resealed"`
	Batches  int     `json:"batches"`
	Passes   int     `json:"passes"`
	Position string  `json:"position"` // THREAD/ID of the last batch (items:THREAD/POS in a delta table's items), "" if none
	Seconds  float64 `json:"seconds"`
}

// cmdRekey encrypts the table online and moves its rows to the key ring's current key
// (pgcheckpoint.Checkpointer.Rekey).
func cmdRekey(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "rekey")
	batch := f.Int("batch", pgcheckpoint.DefaultRekeyBatch, "rows sealed per transaction (`N`), at most 16 MiB of snapshots")
	after := f.String("after", "", "resume after this row (`THREAD/ID`, as an interrupted rekey prints it; of a delta table, a head)")
	afterThread := f.String("after-thread", "", "with --after-id: resume after that row of thread `T` (for ids the THREAD/ID form cannot hold)")
	afterID := f.String("after-id", "", "with --after-thread: the checkpoint `ID` to resume after")
	asJSON := f.Bool("json", false, `print {"state": S, "scanned": N, "resealed": N, "batches": N, "passes": N, "position": S, "seconds": S}`)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	pos, err := rekeyAfter(*after, *afterThread, *afterID)
	if err != nil {
		return err
	}
	if *batch <= 0 {
		return usageErrorf("rekey: --batch must be positive, got %d", *batch)
	}
	if f.conn.keys == nil {
		return fmt.Errorf("rekey: no encryption keys: set $%s or pass --keys-file (pgcheckpoint keygen makes a key): %w", keysEnv, pgcheckpoint.ErrKeyMissing)
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	res, err := s.cp.Rekey(ctx, pgcheckpoint.RekeyOptions{Batch: *batch, After: pos, Progress: func(r pgcheckpoint.RekeyResult) {
		fmt.Fprintf(e.stderr, "rekey: pass %d batch %d: at %s, scanned %d, resealed %d\n", r.Passes, r.Batches,
			escapeControls(r.Position.String()), r.Scanned, r.Resealed)
	}})
	if err != nil {
		resume := ""
		// A delta table's items phase has no --after form: a rerun from the start skips what is done.
		if !res.Position.IsZero() && !res.Position.Items {
			resume = "; rerun with --after " + shellQuote(res.Position.String()) + " to continue"
		}
		if ctx.Err() != nil {
			return interruptedf(err, "rekey: interrupted at %s (table %s %s), after resealing %s%s", orStart(res.Position),
				s.table, res.State, plural(int(res.Resealed), "row", "rows"), resume)
		}
		if res.Resealed > 0 {
			return fmt.Errorf("%w (rekey had resealed %s, up to %s%s)", err, plural(int(res.Resealed), "row", "rows"), orStart(res.Position), resume)
		}
		return err
	}
	took := time.Since(start)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rekeyResult{res.State.String(), res.Scanned, res.Resealed, res.Batches, res.Passes,
			res.Position.String(), took.Seconds()})
	}
	_, err = fmt.Fprintf(e.stdout, "rekey: %s is %s: resealed %s of %s scanned in %s (%d batches, %d passes)\n", s.table, res.State,
		plural(int(res.Resealed), "row", "rows"), plural(int(res.Scanned), "row", "rows"), took.Round(time.Millisecond), res.Batches, res.Passes)
	return err
}

// orStart names a position for messages: THREAD/ID, or "the start".
func orStart(p pgcheckpoint.RekeyPosition) string {
	if p.IsZero() {
		return "the start"
	}
	return escapeControls(p.String())
}

// rekeyAfter reads the resume position from --after THREAD/ID (split at the last '/': a checkpoint id
// holds none, a thread id may) or from --after-thread and --after-id.
func rekeyAfter(after, thread, id string) (pgcheckpoint.RekeyPosition, error) {
	switch {
	case after != "" && (thread != "" || id != ""):
		return pgcheckpoint.RekeyPosition{}, usageErrorf("rekey: --after or --after-thread with --after-id, not both")
	case after != "":
		i := strings.LastIndexByte(after, '/')
		if i <= 0 || i == len(after)-1 {
			return pgcheckpoint.RekeyPosition{}, usageErrorf("rekey: --after must be THREAD/ID, got %q", after)
		}
		return pgcheckpoint.RekeyPosition{Thread: after[:i], Checkpoint: after[i+1:]}, nil
	case (thread == "") != (id == ""):
		return pgcheckpoint.RekeyPosition{}, usageErrorf("rekey: --after-thread and --after-id go together")
	}
	return pgcheckpoint.RekeyPosition{Thread: thread, Checkpoint: id}, nil
}
