package pgcheckpoint

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// headComposition is the part of a delta head's binding that pins which items it holds: per spilled
// array (keys in byte order) its key, slot, ranges and element count, from the heads' arrays column
// (as the put sent it or as the server returns it: JSON, in any key order). The chain hash "h" is left
// out: it is a cache of what the head holds (see chainer), which Rekey may rewrite or clear.
func headComposition(arrays []byte) (string, error) {
	var meta map[string]struct {
		S int64      `json:"s"`
		R [][2]int64 `json:"r"`
		N int64      `json:"n"`
	}
	if err := json.Unmarshal(arrays, &meta); err != nil {
		return "", fmt.Errorf("arrays column: %w", err)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		m := meta[k]
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(m.S, 10))
		for _, r := range m.R {
			b.WriteByte(':')
			b.WriteString(strconv.FormatInt(r[0], 10))
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(r[1], 10))
		}
		b.WriteByte('#')
		b.WriteString(strconv.FormatInt(m.N, 10))
		b.WriteByte(';')
	}
	return b.String(), nil
}

// itemBinding is where a delta table's item belongs: its thread and position (items are shared by the
// heads of their thread, so no checkpoint id).
func (c *Checkpointer) itemBinding(threadID string, pos int64) binding {
	return c.bind(bindItem, threadID, strconv.FormatInt(pos, 10), "")
}

// deltaRebindFork is rebindFork for a delta table: the heads and items the fork copied into r.to are
// bound to r.from, so each envelope is opened and sealed again for r.to. A copied head has its source's
// arrays column (the fork statement merges only the ranges of the items it copies, not the heads'), so
// the one composition, read from the copy, binds it on both sides. Without keys, a copied envelope is
// ErrKeyMissing, and the fork's transaction writes nothing.
func (c *Checkpointer) deltaRebindFork(ctx context.Context, q DBTX, r forkRequest) error {
	heads, err := c.rebindHeads(ctx, q, r)
	if err != nil {
		return err
	}
	items, err := c.rebindItems(ctx, q, r)
	if err != nil {
		return err
	}
	if err := execResealed(ctx, q, resealRows(c.names.table), heads); err != nil {
		return err
	}
	return execResealed(ctx, q, resealItems(c.delta.items), items)
}

// rebindHeads returns the copies' heads in r.to sealed for r.to (resealRows' entries).
func (c *Checkpointer) rebindHeads(ctx context.Context, q DBTX, r forkRequest) ([]resealed, error) {
	rows, err := q.QueryContext(ctx, `SELECT checkpoint_id, snapshot::text, arrays::text FROM `+c.names.table+`
WHERE thread_id = $1 AND snapshot->>'$' = '`+envelopeMarker+`'`, r.to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resealed
	for rows.Next() {
		var id string
		var env, arrays []byte
		if err := rows.Scan(&id, &env, &arrays); err != nil {
			return nil, err
		}
		if c.seal == nil {
			return nil, errForkKeyMissing("checkpoint " + id)
		}
		comp, err := headComposition(arrays)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w: %w", id, ErrDecryptFailed, err)
		}
		sealed, err := c.rebind(ctx, c.bind(bindHead, r.from, id, comp), c.bind(bindHead, r.to, id, comp), env)
		if err != nil {
			return nil, err
		}
		out = append(out, resealed{Thread: r.to, Checkpoint: id, Snapshot: sealed})
	}
	return out, rows.Err()
}

// rebindItems returns the copied items in r.to sealed for r.to (resealItems' entries).
func (c *Checkpointer) rebindItems(ctx context.Context, q DBTX, r forkRequest) ([]resealedItem, error) {
	// Only the items the copies hold: an item the target thread kept from heads deleted through the
	// view (no gc ran since) is its own, bound to r.to already.
	rows, err := q.QueryContext(ctx, `SELECT i.pos, i.item::text FROM `+c.delta.items+` AS i
WHERE i.thread_id = $1 AND i.item->>'$' = '`+envelopeMarker+`'
  AND EXISTS (SELECT 1 FROM `+c.names.table+` AS h, unnest(h.lo, h.hi) AS s(lo, hi)
              WHERE h.thread_id = $1 AND i.pos >= s.lo AND i.pos < s.hi)`, r.to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resealedItem
	for rows.Next() {
		var pos int64
		var env []byte
		if err := rows.Scan(&pos, &env); err != nil {
			return nil, err
		}
		if c.seal == nil {
			return nil, errForkKeyMissing("item " + strconv.FormatInt(pos, 10))
		}
		sealed, err := c.rebind(ctx, c.itemBinding(r.from, pos), c.itemBinding(r.to, pos), env)
		if err != nil {
			return nil, err
		}
		out = append(out, resealedItem{Thread: r.to, Pos: pos, Item: sealed})
	}
	return out, rows.Err()
}

// errForkKeyMissing is the error of a keyless fork that copied an envelope (what names it).
func errForkKeyMissing(what string) error {
	return fmt.Errorf("%s is encrypted and this client has no Options.Keys to bind its copy to the new thread: %w", what, ErrKeyMissing)
}

// rebind opens env, bound to from, and seals its plaintext bound to to.
func (c *Checkpointer) rebind(ctx context.Context, from, to binding, env []byte) ([]byte, error) {
	plain, err := c.seal.open(ctx, from, env)
	if err != nil {
		return nil, err
	}
	return c.seal.seal(ctx, to, plain)
}

// execResealed runs a reseal statement (resealRows, resealItems) with its entries as a JSON array; no
// entry, no statement.
func execResealed[T any](ctx context.Context, q DBTX, stmt string, entries []T) error {
	_, err := countResealed(ctx, q, stmt, entries) // rekey.go
	return err
}

// planPut plans an attempt of req with checkpoint id on st (see planDelta). With keys (req.aead) each
// new item is sealed to its position and the head to the id and its arrays' composition: the head is
// sealed per attempt (the id is in its binding), the items are sealed where the plan gives them their
// positions, which no attempt changes for a given basis.
func (c *Checkpointer) planPut(req putRequest, id string, st *threadState, ms []member) (deltaPlan, error) {
	if req.aead == nil {
		return planDelta(st, ms, nil), nil
	}
	plan := planDelta(st, ms, &planSeal{
		item: func(pos int64, elem []byte) []byte {
			return sealWith(req.key, req.aead, c.itemBinding(req.threadID, pos), elem)
		},
		chain: chainer{id: req.key.id, key: req.chainKey},
	})
	comp, err := headComposition(plan.arrays)
	if err != nil {
		return deltaPlan{}, err
	}
	plan.head = sealWith(req.key, req.aead, c.bind(bindHead, req.threadID, id, comp), plan.head)
	return plan, nil
}

// deltaReveal opens what deltaGet read of checkpoint id of the thread: the head (bound to its id and
// the composition of its arrays column as read) and each item (bound to its position), as reveal opens
// one value; it returns the plaintext head and items. Under an encrypted head the items must be exactly
// the positions its ranges name (checkItemPositions): the server chose them by the heads' spans
// columns, which no binding covers. Without keys it only checks that nothing is sealed (ErrKeyMissing).
func (c *Checkpointer) deltaReveal(ctx context.Context, threadID, id string, head, arrays, arena []byte, items []itemRef) (
	[]byte, []byte, []itemRef, error) {
	if c.seal == nil {
		// Bindings are built only for the error (the plaintext get allocates nothing more).
		if isEnvelope(head) {
			_, err := c.reveal(ctx, c.bind(bindHead, threadID, id, ""), head)
			return nil, nil, nil, err
		}
		for _, it := range items {
			if v := arena[it.start:it.end]; isEnvelope(v) {
				_, err := c.reveal(ctx, c.itemBinding(threadID, it.pos), v)
				return nil, nil, nil, err
			}
		}
		return head, arena, items, nil
	}
	sealed := isEnvelope(head)
	var comp string
	if sealed {
		var err error
		if comp, err = headComposition(arrays); err != nil {
			return nil, nil, nil, fmt.Errorf("checkpoint %s: %w: %w", id, ErrDecryptFailed, err)
		}
	}
	head, err := c.reveal(ctx, c.bind(bindHead, threadID, id, comp), head)
	if err != nil {
		return nil, nil, nil, err
	}
	sortItems(items)
	if sealed {
		if err := checkItemPositions(arrays, items); err != nil {
			return nil, nil, nil, fmt.Errorf("checkpoint %s of thread %q: %w", id, threadID, err)
		}
	}
	plain := make([]byte, 0, len(arena))
	out := make([]itemRef, len(items))
	for i, it := range items {
		v, err := c.reveal(ctx, c.itemBinding(threadID, it.pos), arena[it.start:it.end])
		if err != nil {
			return nil, nil, nil, err
		}
		out[i] = itemRef{pos: it.pos, start: len(plain), end: len(plain) + len(v)}
		plain = append(plain, v...)
	}
	return head, plain, out, nil
}

// checkItemPositions reports whether items (sorted by position) are exactly the positions of the ranges
// in a head's arrays column, each once: a missing, extra or repeated item is ErrDecryptFailed.
func checkItemPositions(arrays []byte, items []itemRef) error {
	var meta map[string]struct {
		R [][2]int64 `json:"r"`
	}
	if err := json.Unmarshal(arrays, &meta); err != nil {
		return fmt.Errorf("arrays column: %w: %w", ErrDecryptFailed, err)
	}
	var spans [][2]int64
	for _, m := range meta {
		spans = append(spans, m.R...)
	}
	slices.SortFunc(spans, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	k := 0
	for _, r := range spans {
		for p := r[0]; p < r[1]; p++ {
			if k >= len(items) || items[k].pos != p {
				return fmt.Errorf("the server returned other items than the head's ranges name (item %d missing or out of place): %w", p, ErrDecryptFailed)
			}
			k++
		}
	}
	if k != len(items) {
		return fmt.Errorf("the server returned %d items beyond the head's ranges (item %d first): %w", len(items)-k, items[k].pos, ErrDecryptFailed)
	}
	return nil
}
