package pgcheckpoint

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"strconv"
)

// Rekey encrypts a table online and moves its rows to the key ring's current key (docs/security.md).
// It first makes the server refuse plaintext writes (EncryptionMigrating), then seals, batch by batch
// and in (thread_id, checkpoint_id) order, every row that is plaintext or sealed under another key,
// and finally validates the table (EncryptionRequired). Writers keep working meanwhile: a batch only
// updates rows that are still there, so a row deleted or pruned meanwhile stays deleted, and rows are
// never rewritten with other content, so nothing is lost or doubled.

// Rekey batch bounds.
const (
	// DefaultRekeyBatch is the number of rows a Rekey batch reads and writes when RekeyOptions.Batch is 0.
	DefaultRekeyBatch = 100
	// rekeyBatchBytes bounds the snapshot bytes (as JSON text) a batch holds: a batch stops before the
	// row that would take it past this, but always holds at least one row.
	rekeyBatchBytes = 16 << 20
	// rekeyPasses is how many passes Rekey makes at most: the first from RekeyOptions.After, each
	// later one from the start, until one finds nothing left (writers whose key ring is older than
	// the current key keep sealing with their current one, so passes need not end by themselves).
	rekeyPasses = 3
)

// RekeyPosition is a place in a table's (thread_id, checkpoint_id) order: Rekey goes on after it. The
// zero value is the start of the table. A delta table's pass goes through its heads in that order,
// then through its items in (thread_id, position) order: Items marks a place in the items (at Pos).
type RekeyPosition struct {
	Thread     string
	Checkpoint string
	Items      bool  // a delta table's items phase (Thread, Pos)
	Pos        int64 // with Items: the item position
}

// IsZero reports whether p is the start of the table.
func (p RekeyPosition) IsZero() bool { return p == RekeyPosition{} }

// String returns "THREAD/ID", the form `pgcheckpoint rekey --after` takes, or "" for the start; a
// place in a delta table's items is "items:THREAD/POS" (shown, not taken by --after).
func (p RekeyPosition) String() string {
	switch {
	case p.IsZero():
		return ""
	case p.Items:
		return "items:" + p.Thread + "/" + strconv.FormatInt(p.Pos, 10)
	}
	return p.Thread + "/" + p.Checkpoint
}

// RekeyOptions tune Rekey.
type RekeyOptions struct {
	// Batch is the number of rows each batch reads, seals and writes in one transaction; 0 means
	// DefaultRekeyBatch. A batch also stops at 16 MiB of snapshots.
	Batch int
	// After resumes a Rekey that stopped: rows at or before it in (thread_id, checkpoint_id) order are
	// skipped by the first pass (RekeyResult.Position of the run that stopped). Later passes start from
	// the beginning, so a wrong position costs time, not correctness.
	After RekeyPosition
	// Progress, if set, is called after each batch commits, with the counts and the position so far.
	Progress func(RekeyResult)
}

// RekeyResult is what Rekey did.
type RekeyResult struct {
	// State is the table's encryption state when Rekey returned.
	State EncryptionState
	// Position is where the current pass stands, the last row of its last committed batch: resume
	// from it (RekeyOptions.After). A pass starts at the zero position, so a finished Rekey, whose last
	// pass found nothing, reports the zero position.
	Position RekeyPosition
	// Scanned counts the rows batches read (plaintext or under another key); Resealed, those written
	// back (a row deleted between its read and the write is scanned, not resealed).
	Scanned, Resealed int64
	// Batches and Passes count the committed batches and the passes over the table.
	Batches, Passes int
}

// Rekey seals every row of the table under the current key of Options.Keys (a client without keys
// gets ErrKeyMissing), as described above, and returns what it did; on an error (also ctx ending) the
// result holds the position to resume from. A row sealed under a key the ring no longer holds is
// ErrKeyMissing. A delta table's heads and items are both resealed (delta_rekey.go). A Checkpointer in
// the caller's transaction is ErrInvalidOptions (Rekey commits batch by batch).
func (c *Checkpointer) Rekey(ctx context.Context, opts RekeyOptions) (RekeyResult, error) {
	defer c.hold()()
	res := RekeyResult{Position: opts.After}
	err := c.fullMismatch(ctx, "rekey", c.rekey(ctx, opts, &res))
	if s, serr := c.readEncryption(context.WithoutCancel(ctx)); serr == nil {
		res.State = s
	}
	return res, fail(OpRekey, "", "", err)
}

// rekey is Rekey's work, recording it in res as it goes.
func (c *Checkpointer) rekey(ctx context.Context, opts RekeyOptions, res *RekeyResult) error {
	switch {
	case c.seal == nil:
		return fmt.Errorf("rekey needs Options.Keys: %w", ErrKeyMissing)
	case c.inTx:
		return fmt.Errorf("rekey commits batch by batch and cannot run in the caller's transaction: %w", ErrInvalidOptions)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = DefaultRekeyBatch
	}
	state, err := c.readEncryption(ctx)
	if err != nil {
		return err
	}
	if state == EncryptionNone {
		if err := c.addEncryptionConstraints(ctx, false); err != nil {
			return err
		}
	}
	for res.Passes < rekeyPasses {
		if res.Passes > 0 {
			res.Position = RekeyPosition{}
		}
		res.Passes++
		found, err := c.rekeyPass(ctx, batch, res, opts.Progress)
		if err != nil {
			return err
		}
		// Done when a pass from the start found nothing (the first one started at the start, or a
		// later one did).
		if found == 0 && (opts.After.IsZero() || res.Passes > 1) {
			break
		}
	}
	if state == EncryptionRequired {
		return nil
	}
	return c.validateEncryption(ctx)
}

// rekeyPass runs batches from res.Position to the end of the table (for a delta table: of its heads,
// then of its items) and returns how many rows it found to reseal.
func (c *Checkpointer) rekeyPass(ctx context.Context, batch int, res *RekeyResult, progress func(RekeyResult)) (int64, error) {
	var found int64
	for !res.Position.Items {
		rows, err := c.rekeyBatch(ctx, batch, res.Position)
		if err != nil || len(rows) == 0 {
			if err != nil || c.delta == nil {
				return found, err
			}
			break
		}
		n, err := c.writeRekeyed(ctx, rows)
		if err != nil {
			return found, err
		}
		last := rows[len(rows)-1]
		found += int64(len(rows))
		res.count(len(rows), n, RekeyPosition{Thread: last.Thread, Checkpoint: last.Checkpoint}, progress)
	}
	n, err := c.rekeyItemsPass(ctx, batch, res, progress) // delta_rekey.go
	return found + n, err
}

// count records a committed batch of scanned rows, n of them written, that ended at pos.
func (res *RekeyResult) count(scanned int, n int64, pos RekeyPosition, progress func(RekeyResult)) {
	res.Scanned += int64(scanned)
	res.Resealed += n
	res.Batches++
	res.Position = pos
	if progress != nil {
		progress(*res)
	}
}

// rekeySelect reads the next batch of the table's rows after ($1, $2) in (thread_id, at) order: rows
// whose column is plaintext or sealed under a key other than $3, at most $4 of them, and no more than
// $5 bytes of values beyond the first row's, each with whether it is an envelope as the encryption
// constraint judges it (a plaintext snapshot may have a member "$" of its own, which isEnvelope would
// take for one) and extra (a delta head's arrays column). The innermost query converts each value to
// text once (the LIMIT keeps it from being merged into the others).
func rekeySelect(table, at, column, extra string) string {
	return `SELECT thread_id, ` + at + `, s, sealed, x FROM (
    SELECT thread_id, ` + at + `, s, sealed, x,
        sum(octet_length(s)) OVER (ORDER BY thread_id, ` + at + `) - octet_length(s) AS before
    FROM (
        SELECT thread_id, ` + at + `, ` + column + `::text AS s,
            COALESCE(` + column + `->>'$' = '` + envelopeMarker + `', false) AS sealed, ` + extra + ` AS x
        FROM ` + table + `
        WHERE (thread_id, ` + at + `) > ($1, $2)
          AND (` + column + `->>'$' IS DISTINCT FROM '` + envelopeMarker + `' OR ` + column + `->>'k' IS DISTINCT FROM $3)
        ORDER BY thread_id, ` + at + `
        LIMIT $4
    ) AS rows
) AS b WHERE before < $5
ORDER BY thread_id, ` + at
}

// rekeyBatch reads the batch after pos and seals each row under the current key with its own
// binding: plaintext as it is, an envelope once opened with the key it names.
func (c *Checkpointer) rekeyBatch(ctx context.Context, batch int, pos RekeyPosition) ([]resealed, error) {
	k, a, err := c.seal.current(ctx)
	if err != nil {
		return nil, err
	}
	extra := "NULL::text"
	if c.delta != nil {
		extra = "arrays::text"
	}
	rows, err := c.db.QueryContext(ctx, rekeySelect(c.names.table, "checkpoint_id", "snapshot", extra),
		pos.Thread, pos.Checkpoint, k.ID(), batch, rekeyBatchBytes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resealed
	for rows.Next() {
		var r resealed
		var stored, arrays []byte
		var sealed bool
		if err := rows.Scan(&r.Thread, &r.Checkpoint, &stored, &sealed, &arrays); err != nil {
			return nil, err
		}
		if err := c.resealRow(ctx, k, a, &r, stored, sealed, arrays); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// resealRow sets r.Snapshot to stored (an envelope if sealed, else plaintext) sealed under k with r's
// binding; a delta head (arrays set) is bound to its composition and has its plain chain hashes
// cleared (r.Arrays, see clearPlainHashes).
func (c *Checkpointer) resealRow(ctx context.Context, k Key, a cipher.AEAD, r *resealed, stored []byte, sealed bool, arrays []byte) error {
	b := c.bind(bindRow, r.Thread, r.Checkpoint, "")
	if c.delta != nil {
		comp, err := headComposition(arrays)
		if err != nil {
			return fmt.Errorf("checkpoint %s of thread %q: %w", r.Checkpoint, r.Thread, err)
		}
		b = c.bind(bindHead, r.Thread, r.Checkpoint, comp)
		if r.Arrays, err = clearPlainHashes(arrays); err != nil {
			return fmt.Errorf("checkpoint %s of thread %q: %w", r.Checkpoint, r.Thread, err)
		}
	}
	plain := stored
	if sealed {
		var err error
		if plain, err = c.seal.open(ctx, b, stored); err != nil {
			return fmt.Errorf("thread %q: %w", r.Thread, err)
		}
	}
	r.Snapshot = sealWith(k, a, b, plain)
	return nil
}

// rekeyLock locks the rows of a batch ($1: a JSON array of [thread, checkpoint id]) in the order
// writers lock them, each thread's newest first (see lockRows), so a batch and a put or delete wait for
// each other instead of deadlocking. A row deleted meanwhile is not there to lock.
func (c *Checkpointer) rekeyLock() string {
	return `SELECT 1 FROM ` + c.names.table + ` AS t
WHERE (t.thread_id, t.checkpoint_id) IN (
    SELECT value->>0, value->>1 FROM jsonb_array_elements($1::text::jsonb))
ORDER BY t.thread_id, t.checkpoint_id DESC
FOR UPDATE`
}

// writeRekeyed writes a sealed batch back in one transaction (locks, then resealRows, or for a delta
// table resealHeads), run again on a conflict (Retryable) with backoff: writing the same envelopes
// twice is harmless. It returns the number of rows written.
func (c *Checkpointer) writeRekeyed(ctx context.Context, rows []resealed) (int64, error) {
	ids := make([][2]string, len(rows))
	for i, r := range rows {
		ids[i] = [2]string{r.Thread, r.Checkpoint}
	}
	return lockAndReseal(ctx, c, c.rekeyLock(), ids, c.resealStmt(), rows)
}

// resealStmt is the statement that writes resealed rows of the table: resealRows, or for a delta
// table's heads resealHeads.
func (c *Checkpointer) resealStmt() string {
	if c.delta != nil {
		return resealHeads(c.names.table)
	}
	return resealRows(c.names.table)
}

// lockAndReseal runs, in one transaction retried on a conflict, lock (with ids as a JSON array) and then
// stmt with entries (countResealed), and returns how many rows stmt wrote.
func lockAndReseal[I, T any](ctx context.Context, c *Checkpointer, lock string, ids []I, stmt string, entries []T) (int64, error) {
	lockArg, err := json.Marshal(ids)
	if err != nil {
		return 0, err
	}
	var n int64
	err = c.runTx(ctx, func(q DBTX) error {
		locked, err := q.QueryContext(ctx, lock, string(lockArg))
		if err != nil {
			return err
		}
		if err := locked.Close(); err != nil {
			return err
		}
		n, err = countResealed(ctx, q, stmt, entries)
		return err
	})
	return n, err
}

// sealThreadRows seals, in q, the thread's plaintext rows (of a delta table: heads, their plain chain
// hashes cleared, and items), when the client has keys and the table is being encrypted
// (EncryptionMigrating). Renumbering updates every row of a thread, and the server
// checks the encryption constraint on each updated row, NOT VALID or not: a plaintext row Rekey has not
// reached yet would make a delete's renumbering fail (23514); a fork's copy of one is refused too. A
// client without keys cannot, and its delete or fork is ErrEncryptionRequired until Rekey has passed
// the thread. Unless the cache already knows the table is EncryptionRequired (for good), the state is
// read in q: once q holds row locks (a delete's lockThreadRows) Rekey's ALTER TABLE cannot add the
// constraint until q ends, so what q reads holds for its statements (a fork, which holds none yet,
// has a window of one statement).
func (c *Checkpointer) sealThreadRows(ctx context.Context, q DBTX, threadID string) error {
	if c.seal == nil {
		return nil
	}
	if state, err := c.encryptionCached(ctx); err != nil || state == EncryptionRequired {
		return err
	}
	if state, err := c.readEncryptionIn(ctx, q); err != nil || state != EncryptionMigrating {
		return err
	}
	k, a, err := c.seal.current(ctx)
	if err != nil {
		return err
	}
	extra := "NULL::text"
	if c.delta != nil {
		extra = "arrays::text"
	}
	rows, err := q.QueryContext(ctx, `SELECT checkpoint_id, snapshot::text, `+extra+` FROM `+c.names.table+`
WHERE thread_id = $1 AND snapshot->>'$' IS DISTINCT FROM '`+envelopeMarker+`'`, threadID)
	if err != nil {
		return err
	}
	defer rows.Close()
	var out []resealed
	for rows.Next() {
		r := resealed{Thread: threadID}
		var plain, arrays []byte
		if err := rows.Scan(&r.Checkpoint, &plain, &arrays); err != nil {
			return err
		}
		if err := c.resealRow(ctx, k, a, &r, plain, false, arrays); err != nil {
			return err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := execResealed(ctx, q, c.resealStmt(), out); err != nil {
		return err
	}
	return c.sealThreadItems(ctx, q, k, a, threadID) // delta_rekey.go
}

// countResealed is execResealed returning how many rows the statement updated.
func countResealed[T any](ctx context.Context, q DBTX, stmt string, entries []T) (int64, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	arg, err := json.Marshal(entries)
	if err != nil {
		return 0, err
	}
	r, err := q.ExecContext(ctx, stmt, json.RawMessage(arg))
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
