package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// convertResult is the `convert --json` object.
type convertResult struct {
	Threads     int64   `json:"threads"`
	Checkpoints int64   `json:"checkpoints"`
	Items       int64   `json:"items"`
	LastThread  string  `json:"last_thread"`
	Seconds     float64 `json:"seconds"`
}

// cmdConvert copies a table into a new table of the other layout (pgcheckpoint.Convert).
func cmdConvert(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "convert")
	from := f.String("from", "", "the table converted (`TABLE`, in --schema); only read")
	to := f.String("to", "", "the table written (`TABLE`, in --schema), in the --storage layout: created when missing, else must be empty")
	resume := f.Bool("resume", false, "continue an interrupted conversion after the last thread --to holds")
	batch := f.Int("batch", 100, "threads copied per statement (`N`)")
	asJSON := f.Bool("json", false, `print {"threads": N, "checkpoints": N, "items": N, "last_thread": S, "seconds": S}`)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	switch {
	case f.set("table"):
		return usageErrorf("convert: the tables are --from and --to, not --table")
	case *from == "" || *to == "":
		return usageErrorf("convert: --from and --to are required (e.g. --from ziro_checkpoints --to ziro_checkpoints_delta --storage delta)")
	case *from == *to:
		return usageErrorf("convert: --from and --to name the same table %q: convert into a new table, then swap the names (docs/storage.md, Converting)", *from)
	case !f.set("storage"):
		return usageErrorf("convert: --storage is required: the layout of --to (delta or full)")
	case *batch <= 0:
		return usageErrorf("convert: --batch must be positive, got %d", *batch)
	}
	storage, _ := pgcheckpoint.ParseStorage(f.conn.storage) // checked by parse
	f.conn.table = *to                                      // connect checks --to's name for its layout
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	opts := pgcheckpoint.ConvertOptions{Dialect: s.dialect, Schema: f.conn.schema, From: *from, To: *to, ToStorage: storage,
		Resume: *resume, BatchThreads: *batch}
	tty := isTerminal(e.stderr)
	if tty {
		opts.Progress = func(p pgcheckpoint.ConvertProgress) {
			fmt.Fprintf(e.stderr, "\rconvert: %s, %s copied (%.0f/s)...", plural(int(p.Threads), "thread", "threads"),
				plural(int(p.Checkpoints), "checkpoint", "checkpoints"), float64(p.Checkpoints)/max(p.Elapsed.Seconds(), 1e-3))
		}
	}
	p, err := pgcheckpoint.Convert(ctx, s.db, opts)
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	target := f.conn.schema + "." + *to
	if err != nil && ctx.Err() != nil {
		// Every batch is one statement: the threads copied stay copied, --resume continues after them.
		return interruptedf(err, "convert: interrupted after copying %s (%s) into %s; rerun with --resume to continue",
			plural(int(p.Threads), "thread", "threads"), plural(int(p.Checkpoints), "checkpoint", "checkpoints"), target)
	}
	if err != nil {
		if p.Threads > 0 {
			return fmt.Errorf("%w (convert had copied %s into %s before the error; rerun with --resume to continue)", err,
				plural(int(p.Threads), "thread", "threads"), target)
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(convertResult{p.Threads, p.Checkpoints, p.Items, p.LastThread, p.Elapsed.Seconds()})
	}
	_, err = fmt.Fprintf(e.stdout, "copied %s (%s) from %s.%s into %s (%s) in %s\n", plural(int(p.Threads), "thread", "threads"),
		plural(int(p.Checkpoints), "checkpoint", "checkpoints"), f.conn.schema, *from, target, storage, p.Elapsed.Round(time.Millisecond))
	return err
}
