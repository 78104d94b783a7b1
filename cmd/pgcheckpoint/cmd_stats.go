package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
)

// statsResult is the `stats --json` object. Sizes are null where the dialect does not report them.
type statsResult struct {
	Table        string        `json:"table"`
	Prefix       string        `json:"prefix,omitempty"` // --prefix: rows, threads, snapshot bytes and the largest threads are those threads'; the sizes stay the whole table's
	Rows         int64         `json:"rows"`
	Threads      int64         `json:"threads"`
	SnapshotSize int64         `json:"snapshot_bytes"` // sum of size_bytes: the JSON as it was sent
	TableBytes   *int64        `json:"table_bytes"`    // heap + TOAST (pg_table_size)
	IndexBytes   *int64        `json:"index_bytes"`    // pg_indexes_size
	DeadRows     *int64        `json:"dead_rows"`      // pg_stat_user_tables.n_dead_tup: the bloat estimate
	Encryption   string        `json:"encryption"`     // the table's encryption state: none, migrating, required
	Largest      []statsThread `json:"largest_threads"`
}

type statsThread struct {
	ThreadID    string `json:"thread_id"`
	Checkpoints int64  `json:"checkpoints"`
	Bytes       int64  `json:"bytes"`
}

// cmdStats reports how big the checkpoint table is.
func cmdStats(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "stats")
	top := f.Int("top", 5, "how many of the largest threads (by snapshot bytes) to list")
	asJSON := f.Bool("json", false, "print one JSON object")
	prefix := f.String("prefix", "", "count only threads whose id starts with `P` (table and index sizes stay the whole table's)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := checkPrefixFlag("stats", *prefix); err != nil {
		return err
	}
	if *top < 0 || *top > 1000 {
		return usageErrorf("stats: --top must be from 0 to 1000, got %d", *top)
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	t := quoteIdent(f.conn.schema) + "." + quoteIdent(f.conn.table)
	r := statsResult{Table: s.table, Prefix: *prefix, Largest: []statsThread{}}
	// One pass over the table's heap (no snapshot is read: size_bytes is a column of its own), or with
	// --prefix a range scan of the primary key.
	if *prefix != "" {
		if err := statsPrefix(ctx, s.cp, *prefix, *top, &r); err != nil {
			return err
		}
	} else if err := s.db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT thread_id), COALESCE(sum(size_bytes), 0) FROM `+t).
		Scan(&r.Rows, &r.Threads, &r.SnapshotSize); err != nil {
		return pgcheckpointErr("stats", err)
	}
	if s.dialect.Name() == "postgres" {
		var tb, ib sql.NullInt64
		var dead sql.NullInt64
		rel := strconv.Quote(f.conn.schema) + "." + strconv.Quote(f.conn.table)
		if err := s.db.QueryRowContext(ctx, `SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass),
			(SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = $1::regclass)`, rel).Scan(&tb, &ib, &dead); err != nil {
			return pgcheckpointErr("stats", err)
		}
		r.TableBytes, r.IndexBytes, r.DeadRows = &tb.Int64, &ib.Int64, &dead.Int64
	}
	state, err := s.cp.Encryption(ctx)
	if err != nil {
		return pgcheckpointErr("stats", err)
	}
	r.Encryption = state.String()
	if *top > 0 && *prefix == "" {
		rows, err := s.db.QueryContext(ctx, `SELECT thread_id, count(*), sum(size_bytes) AS b FROM `+t+`
			GROUP BY thread_id ORDER BY b DESC, thread_id LIMIT $1`, *top)
		if err != nil {
			return pgcheckpointErr("stats", err)
		}
		defer rows.Close()
		for rows.Next() {
			var th statsThread
			if err := rows.Scan(&th.ThreadID, &th.Checkpoints, &th.Bytes); err != nil {
				return pgcheckpointErr("stats", err)
			}
			r.Largest = append(r.Largest, th)
		}
		if err := rows.Err(); err != nil {
			return pgcheckpointErr("stats", err)
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	opt := func(p *int64, f func(int64) string) string {
		if p == nil {
			return "n/a (" + s.dialect.Name() + ")"
		}
		return f(*p)
	}
	kv := newTable(e.stdout, "table", s.table)
	if *prefix != "" {
		kv.row("threads starting with", strconv.Quote(*prefix)+" (rows, threads, snapshot bytes and the largest threads are theirs; the sizes are the whole table's)")
	}
	kv.row("rows", strconv.FormatInt(r.Rows, 10))
	kv.row("threads", strconv.FormatInt(r.Threads, 10))
	kv.row("snapshot bytes", size(r.SnapshotSize)+" (as sent)")
	kv.row("table size", opt(r.TableBytes, size)+" (heap and TOAST)")
	kv.row("index size", opt(r.IndexBytes, size))
	kv.row("encryption", r.Encryption)
	kv.row("dead rows", opt(r.DeadRows, func(n int64) string {
		if r.Rows+n == 0 {
			return "0"
		}
		return fmt.Sprintf("%d (%.0f%% of rows; the bloat autovacuum will reclaim)", n, 100*float64(n)/float64(r.Rows+n))
	}))
	if err := kv.flush(); err != nil {
		return err
	}
	if len(r.Largest) == 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "\nlargest %s by snapshot bytes:\n", plural(len(r.Largest), "thread", "threads"))
	lt := newTable(&indent{w: e.stdout}, "THREAD", "CHECKPOINTS", "BYTES")
	for _, th := range r.Largest {
		lt.row(th.ThreadID, strconv.FormatInt(th.Checkpoints, 10), size(th.Bytes))
	}
	return lt.flush()
}
