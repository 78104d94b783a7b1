package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ConvertOptions name the two tables of Convert.
type ConvertOptions struct {
	// Dialect of the server (nil: PostgreSQL).
	Dialect Dialect
	// Schema holds both tables (empty: public).
	Schema string
	// From is the table converted (a full table when ToStorage is StorageDelta, a delta table when it
	// is StorageFull); it is only read.
	From string
	// To is the table written, in the ToStorage layout. A missing table is created (with From's
	// retention policy, cap and byte budget; none when From records none); an existing one must be of the ToStorage layout
	// (else ErrStorageMismatch) and empty (else ErrTableNotEmpty), unless Resume.
	To string
	// ToStorage is To's layout; From's is the other.
	ToStorage Storage
	// Resume continues a conversion that stopped (a cancelled context, a crash): the threads after
	// To's greatest thread id are copied. Each batch of threads is one statement, so To holds whole
	// threads only; Resume checks that its last one has as many checkpoints as in From.
	Resume bool
	// BatchThreads bounds the threads copied by one statement (0: 100). A batch also ends once its
	// snapshots reach 16 MiB (BatchBytes), at a thread boundary.
	BatchThreads int
	// BatchBytes bounds a batch's snapshot bytes, as size_bytes counts them (0: 16 MiB). A single
	// thread larger than that is one batch of its own.
	BatchBytes int64
	// Progress, when set, hears after each batch what the run has copied so far.
	Progress func(ConvertProgress)
}

// ConvertProgress is what a Convert run copied so far (a resumed run counts what it copied itself).
type ConvertProgress struct {
	Threads     int64 // threads copied
	Checkpoints int64 // checkpoints copied
	Items       int64 // array elements stored, for a delta target
	// LastThread is the last thread copied: a run with Resume continues after it.
	LastThread string
	Elapsed    time.Duration
}

// Default batch bounds of Convert.
const (
	defaultConvertThreads = 100
	defaultConvertBytes   = 16 << 20
)

// Convert copies every checkpoint of table From into table To of the other layout (docs/storage.md,
// "Converting"): full to delta (StorageDelta) or delta to full (StorageFull). Every checkpoint keeps its
// thread, id, created_at, version, size_bytes and position (seq; a full table's unnumbered rows, written
// by the TypeScript package, are numbered in id order, as a Go put would number them), and its snapshot
// as PostgreSQL's jsonb compares it. The threads are copied in byte order, in batches of whole threads,
// each batch by one statement: an interrupted run leaves To with whole threads only, and a run with
// Resume continues after the last of them.
//
// Convert is offline: it reads From without locking it, so writers must be stopped (or pointed at
// another table) while it runs; a put into From during the run may be missed. To must not be written
// by anything else either. Full to delta plans each thread's heads in the client (each snapshot is read
// once, its new array elements computed from the one before, as the put does); delta to full runs on
// the server (the view rebuilds each snapshot), so no snapshot travels through the client.
func Convert(ctx context.Context, db DBTX, opts ConvertOptions) (ConvertProgress, error) {
	p, err := convert(ctx, db, opts)
	return p, fail(OpConvert, "", "", err)
}

func convert(ctx context.Context, db DBTX, opts ConvertOptions) (ConvertProgress, error) {
	start := time.Now()
	var prog ConvertProgress
	if opts.From == "" || opts.To == "" || opts.From == opts.To {
		return prog, fmt.Errorf("convert needs two tables, From and To, got %q and %q: %w", opts.From, opts.To, ErrInvalidOptions)
	}
	if opts.ToStorage != StorageFull && opts.ToStorage != StorageDelta {
		return prog, fmt.Errorf("unknown storage %v: %w", opts.ToStorage, ErrInvalidOptions)
	}
	fromStorage := StorageFull
	fullName, deltaName := opts.From, opts.To
	if opts.ToStorage == StorageFull {
		fromStorage = StorageDelta
		fullName, deltaName = opts.To, opts.From
	}
	full, err := New(db, Options{Dialect: opts.Dialect, Schema: opts.Schema, Table: fullName})
	if err != nil {
		return prog, err
	}
	dl, err := New(db, Options{Dialect: opts.Dialect, Schema: opts.Schema, Table: deltaName, Storage: StorageDelta})
	if err != nil {
		return prog, err
	}
	q := newConvertStatements(full.names, dl.names, dl.delta.items, dl.delta.view.table)
	src, dst := full, dl
	if fromStorage == StorageDelta {
		src, dst = dl, full
	}
	schema := src.viewNames().rawSchema

	// The source: a table of the other layout.
	kind, err := tableKind(ctx, db, q, schema, opts.From)
	if err != nil {
		return prog, err
	}
	switch {
	case kind == noStorage:
		return prog, fmt.Errorf("source %s.%s does not exist: %w", schema, opts.From, ErrSchemaMissing)
	case kind != fromStorage:
		return prog, fmt.Errorf("source %s.%s is a %s table; converting to %s needs a %s one: %w",
			schema, opts.From, kind, opts.ToStorage, fromStorage, ErrStorageMismatch)
	}
	if err := src.checkStorage(ctx, "convert"); err != nil {
		return prog, err
	}
	if err := src.refuseEncrypted(ctx); err != nil {
		return prog, err
	}

	// The target: created with the source's policy when missing, else of the right layout and empty.
	kind, err = tableKind(ctx, db, q, schema, opts.To)
	if err != nil {
		return prog, err
	}
	switch {
	case kind == noStorage:
		l, recorded, err := src.readRetention(ctx)
		if err != nil {
			return prog, err
		}
		cap, budget := l.cap, l.budget
		if !recorded || cap == 0 {
			cap = NoLimit
		}
		if !recorded || budget == 0 {
			budget = NoLimit
		}
		mk, err := New(db, Options{Dialect: opts.Dialect, Schema: opts.Schema, Table: opts.To, Storage: opts.ToStorage,
			MaxCheckpointsPerThread: cap, MaxBytesPerThread: budget})
		if err != nil {
			return prog, err
		}
		if err := mk.EnsureSchema(ctx); err != nil {
			return prog, err
		}
	case kind != opts.ToStorage:
		return prog, fmt.Errorf("target %s.%s is a %s table, not a %s one: %w", schema, opts.To, kind, opts.ToStorage, ErrStorageMismatch)
	default:
		if err := dst.EnsureSchema(ctx); err != nil { // completes what is missing (a delta table's parts)
			return prog, err
		}
	}
	dstLast, srcCount, dstCount, threadsSQL, anySQL := q.headsLast, q.fullCount, q.headsCount, q.fullThreads, q.deltaAny
	if fromStorage == StorageDelta {
		dstLast, srcCount, dstCount, threadsSQL, anySQL = q.fullLast, q.headsCount, q.fullCount, q.headsThreads, q.fullAny
	}
	var nonEmpty bool
	if err := db.QueryRowContext(ctx, anySQL).Scan(&nonEmpty); err != nil {
		return prog, interpret(err)
	}
	after := ""
	if nonEmpty {
		if !opts.Resume {
			return prog, fmt.Errorf("target %s.%s has checkpoints (Resume continues an interrupted conversion): %w", schema, opts.To, ErrTableNotEmpty)
		}
		var last sql.NullString
		if err := db.QueryRowContext(ctx, dstLast).Scan(&last); err != nil {
			return prog, interpret(err)
		}
		if last.Valid {
			var ns, nd int64
			if err := db.QueryRowContext(ctx, srcCount, last.String).Scan(&ns); err != nil {
				return prog, interpret(err)
			}
			if err := db.QueryRowContext(ctx, dstCount, last.String).Scan(&nd); err != nil {
				return prog, interpret(err)
			}
			if ns != nd {
				return prog, fmt.Errorf("cannot resume: target's last thread %q has %d checkpoints, the source's %d (not this conversion's target, or the source changed): %w",
					last.String, nd, ns, ErrTableNotEmpty)
			}
			after = last.String
		}
	}

	batchThreads := opts.BatchThreads
	if batchThreads <= 0 {
		batchThreads = defaultConvertThreads
	}
	batchBytes := opts.BatchBytes
	if batchBytes <= 0 {
		batchBytes = defaultConvertBytes
	}
	for {
		if err := ctx.Err(); err != nil {
			return prog, err
		}
		first, last, n, err := nextThreads(ctx, db, threadsSQL, after, batchThreads, batchBytes)
		if err != nil {
			return prog, err
		}
		if n == 0 {
			break
		}
		var rows, items int64
		if fromStorage == StorageFull {
			rows, items, err = convertToDelta(ctx, db, q, first, last)
		} else {
			var res sql.Result
			if res, err = db.ExecContext(ctx, q.writeFull, first, last); err == nil {
				rows, err = res.RowsAffected()
			}
		}
		if err != nil {
			return prog, ctxOr(ctx, interpret(err))
		}
		after = last
		prog.Threads += n
		prog.Checkpoints += rows
		prog.Items += items
		prog.LastThread = last
		prog.Elapsed = time.Since(start)
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
	prog.Elapsed = time.Since(start)
	return prog, nil
}

// tableKind reports the layout of schema.table: StorageFull for a table, StorageDelta for a view,
// noStorage when there is none.
func tableKind(ctx context.Context, db DBTX, q convertStatements, schema, table string) (Storage, error) {
	var tt string
	err := db.QueryRowContext(ctx, q.tableType, schema, table).Scan(&tt)
	switch {
	case err == sql.ErrNoRows:
		return noStorage, nil
	case err != nil:
		return noStorage, interpret(err)
	case tt == "VIEW":
		return StorageDelta, nil
	}
	return StorageFull, nil
}

// noStorage stands for no table at all in tableKind's answers.
const noStorage Storage = -1

// nextThreads returns the next batch of threads after after: the first and last thread id and how
// many, at most max threads and, past the first thread, at most maxBytes snapshot bytes.
func nextThreads(ctx context.Context, db DBTX, query, after string, max int, maxBytes int64) (first, last string, n int64, err error) {
	rows, err := db.QueryContext(ctx, query, after, max)
	if err != nil {
		return "", "", 0, ctxOr(ctx, interpret(err))
	}
	defer rows.Close()
	var bytes int64
	for rows.Next() {
		var t string
		var cnt, size int64
		if err := rows.Scan(&t, &cnt, &size); err != nil {
			return "", "", 0, interpret(err)
		}
		if n > 0 && bytes+size > maxBytes {
			break
		}
		if n == 0 {
			first = t
		}
		last, bytes, n = t, bytes+size, n+1
	}
	if err := rows.Err(); err != nil {
		return "", "", 0, ctxOr(ctx, interpret(err))
	}
	return first, last, n, nil
}

// convertRow is one checkpoint of a full table, as Convert reads it.
type convertRow struct {
	thread, id    string
	snapshot      []byte
	version, size int32
	created       time.Time
	seq           sql.NullInt64
}

// convertToDelta copies the full table's threads first..last into the delta table: each thread's
// checkpoints are planned in id order as consecutive puts would plan them (planDelta), with their own
// ids, created_at and seq, and the batch is stored by one statement. It returns the heads and items
// stored.
func convertToDelta(ctx context.Context, db DBTX, q convertStatements, first, last string) (int64, int64, error) {
	rows, err := db.QueryContext(ctx, q.fullRows, first, last)
	if err != nil {
		return 0, 0, err
	}
	var batch []convertRow
	for rows.Next() {
		var r convertRow
		if err := rows.Scan(&r.thread, &r.id, &r.snapshot, &r.version, &r.size, &r.created, &r.seq); err != nil {
			rows.Close()
			return 0, 0, err
		}
		batch = append(batch, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	buf := []byte{'['}
	for i := 0; i < len(batch); {
		j := i
		numbered := true
		var base int64
		for j < len(batch) && batch[j].thread == batch[i].thread {
			numbered = numbered && batch[j].seq.Valid
			if batch[j].seq.Valid {
				base = max(base, batch[j].seq.Int64)
			}
			j++
		}
		st := &threadState{}
		for k, r := range batch[i:j] {
			if !isObject(r.snapshot) {
				return 0, 0, fmt.Errorf("thread %q checkpoint %s: the snapshot is not a JSON object: %w", r.thread, r.id, ErrInvalidSnapshot)
			}
			seq := r.seq.Int64
			if !numbered { // renumber as a Go put does (statements.renumber): base + position in id order
				seq = base + int64(k) + 1
			}
			p := planDelta(st, splitSnapshot(r.snapshot), nil)
			p.next.head = r.id
			st = p.next
			if len(buf) > 1 {
				buf = append(buf, ',')
			}
			buf = appendConvertHead(buf, r, seq, p)
		}
		i = j
	}
	buf = append(buf, ']')
	var heads, items int64
	if err := db.QueryRowContext(ctx, q.writeDelta, string(buf)).Scan(&heads, &items); err != nil {
		return 0, 0, err
	}
	return heads, items, nil
}

// refuseEncrypted is ErrInvalidOptions when the source of a conversion is encrypted (an encryption
// constraint, or any envelope in its rows): a ciphertext is bound to its table, kind of row, thread and
// checkpoint (seal.go), so no envelope opens once copied into another table; and full to delta would
// split an envelope as if it were a snapshot, and delta to full would copy the envelopes the view shows.
// Converting an encrypted table needs its plaintext, which only a client with the keys has.
func (c *Checkpointer) refuseEncrypted(ctx context.Context) error {
	state, err := c.readEncryption(ctx)
	if err != nil {
		return err
	}
	sealed := state != EncryptionNone
	for _, t := range c.encTargets() {
		if sealed {
			break
		}
		err := c.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.table+` WHERE `+t.column+`->>'$' = '`+envelopeMarker+`')`).Scan(&sealed)
		if err != nil {
			return interpret(err)
		}
	}
	if sealed {
		return fmt.Errorf("source %s is encrypted (state %v, or envelopes in its rows); encrypted tables are not converted, "+
			"because each ciphertext is bound to the table it is stored in and would not open in the target: %w",
			c.sealedTable(), state, ErrInvalidOptions)
	}
	return nil
}

// isObject reports whether b (JSONB's text) is an object: the full layout accepts any JSONB from other
// writers, the delta layout stores objects only.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// appendConvertHead appends one head of writeDelta's batch.
func appendConvertHead(b []byte, r convertRow, seq int64, p deltaPlan) []byte {
	str := func(b []byte, s string) []byte {
		j, _ := json.Marshal(s)
		return append(b, j...)
	}
	b = append(b, `{"t":`...)
	b = str(b, r.thread)
	b = append(b, `,"c":`...)
	b = str(b, r.id)
	b = append(b, `,"q":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(append(b, `,"s":`...), p.head...)
	b = append(append(b, `,"a":`...), p.arrays...)
	b = append(append(b, `,"l":`...), p.alloc...)
	b = str(append(b, `,"lo":`...), p.lo)
	b = str(append(b, `,"hi":`...), p.hi)
	b = append(b, `,"v":`...)
	b = strconv.AppendInt(b, int64(r.version), 10)
	b = append(b, `,"b":`...)
	b = strconv.AppendInt(b, int64(r.size), 10)
	b = str(append(b, `,"at":`...), r.created.Format(time.RFC3339Nano))
	b = append(append(b, `,"i":`...), p.items...)
	b = str(append(b, `,"p":`...), string(p.pos))
	return append(b, '}')
}
