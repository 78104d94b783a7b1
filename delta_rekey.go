package pgcheckpoint

import (
	"context"
	"crypto/cipher"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ziroagent/pgcheckpoint/internal/testhooks"
)

// Rekey of a delta table (rekey.go): each pass reseals the heads, like a full table's rows but bound
// to their composition (resealRow), and then the items, in (thread_id, position) order, each bound to
// its position. Heads and items are independent envelopes: an item's binding names no head, and a
// head's composition does not change when its items are resealed.

// clearedHash is the chain hash Rekey leaves in place of a plaintext head's plain SHA-256 hash: no
// key id, so a cold writer with keys takes it for another chainer's and writes the array afresh
// (planArray), once, under its own keyed hash.
const clearedHash = "00000000000000000000000000000000"

// clearPlainHashes returns arrays (a heads' arrays column) with every plain (unkeyed) chain hash
// replaced by clearedHash, or nil when it holds none: a plain hash of plaintext elements would let
// anyone who guesses an array's content confirm the guess once the head is sealed. Keyed hashes
// ("id:hex") stay. headComposition leaves the hashes out, so the head's binding does not change.
func clearPlainHashes(arrays []byte) (json.RawMessage, error) {
	var meta map[string]map[string]json.RawMessage
	if err := json.Unmarshal(arrays, &meta); err != nil {
		return nil, fmt.Errorf("arrays column: %w", err)
	}
	changed := false
	for k, m := range meta {
		var h string
		if err := json.Unmarshal(m["h"], &h); err != nil {
			return nil, fmt.Errorf("arrays column: array %q: hash: %w", k, err)
		}
		if !strings.Contains(h, ":") && h != clearedHash {
			m["h"] = json.RawMessage(`"` + clearedHash + `"`)
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	return json.Marshal(meta)
}

// resealHeads is resealRows for a delta table's heads: an entry's "a", when there, replaces the head's
// arrays column (clearPlainHashes).
func resealHeads(heads string) string {
	return `UPDATE ` + heads + ` AS t SET snapshot = u.value->'s', arrays = COALESCE(u.value->'a', t.arrays)
FROM jsonb_array_elements($1::text::jsonb) AS u
WHERE t.thread_id = u.value->>'t' AND t.checkpoint_id = u.value->>'c'`
}

// rekeyedItem is one entry of rekeyItems' argument: the item resealed, and the MD5 of the text it was
// read as (Was).
type rekeyedItem struct {
	resealedItem
	Was string `json:"m"`
}

// rekeyItems is resealItems for Rekey's batches: it writes an item only while it still holds what the
// batch read (the MD5 of its text is Was). A put may overwrite an item at a position no head holds
// (deltaItemsCTE, a fork's copy too: left by a head deleted through the view), so between a batch's
// read and its write an item can change; heads are never overwritten.
func rekeyItems(items string) string {
	return resealItems(items) + ` AND md5(t.item::text) = u.value->>'m'`
}

// rekeyItemsPass is a pass's second phase on a delta table (nothing on a full one): batches of items
// from res.Position (the start of the items unless it is in them) to the end. It returns how many items
// it found to reseal.
func (c *Checkpointer) rekeyItemsPass(ctx context.Context, batch int, res *RekeyResult, progress func(RekeyResult)) (int64, error) {
	if c.delta == nil {
		return 0, nil
	}
	pos := res.Position
	if !pos.Items {
		pos = RekeyPosition{Items: true}
	}
	var found int64
	for {
		items, err := c.rekeyItemsBatch(ctx, batch, pos)
		if err != nil || len(items) == 0 {
			return found, err
		}
		if h := testhooks.AfterRekeyItemsRead; h != nil {
			h(c)
		}
		ids := make([][2]any, len(items))
		for i, it := range items {
			ids[i] = [2]any{it.Thread, it.Pos}
		}
		n, err := lockAndReseal(ctx, c, c.rekeyItemsLock(), ids, rekeyItems(c.delta.items), items)
		if err != nil {
			return found, err
		}
		last := items[len(items)-1]
		pos = RekeyPosition{Items: true, Thread: last.Thread, Pos: last.Pos}
		found += int64(len(items))
		res.count(len(items), n, pos, progress)
	}
}

// rekeyItemsBatch reads the batch of items after pos and seals each under the current key, bound to
// its position.
func (c *Checkpointer) rekeyItemsBatch(ctx context.Context, batch int, pos RekeyPosition) ([]rekeyedItem, error) {
	k, a, err := c.seal.current(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, rekeySelect(c.delta.items, "pos", "item", "NULL::text"),
		pos.Thread, pos.Pos, k.ID(), batch, rekeyBatchBytes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rekeyedItem
	for rows.Next() {
		var it rekeyedItem
		var stored, none []byte
		var sealed bool
		if err := rows.Scan(&it.Thread, &it.Pos, &stored, &sealed, &none); err != nil {
			return nil, err
		}
		if err := c.resealItem(ctx, k, a, &it, stored, sealed); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// resealItem sets it.Item to stored (an envelope if sealed, else plaintext) sealed under k, bound to
// the item's position, and it.Was to the MD5 of stored.
func (c *Checkpointer) resealItem(ctx context.Context, k Key, a cipher.AEAD, it *rekeyedItem, stored []byte, sealed bool) error {
	sum := md5.Sum(stored)
	it.Was = hex.EncodeToString(sum[:])
	b := c.itemBinding(it.Thread, it.Pos)
	plain := stored
	if sealed {
		var err error
		if plain, err = c.seal.open(ctx, b, stored); err != nil {
			return fmt.Errorf("thread %q: %w", it.Thread, err)
		}
	}
	it.Item = sealWith(k, a, b, plain)
	return nil
}

// rekeyItemsLock locks the items of a batch ($1: a JSON array of [thread, position]) in (thread_id,
// pos) order. An item collected meanwhile is not there to lock.
func (c *Checkpointer) rekeyItemsLock() string {
	return `SELECT 1 FROM ` + c.delta.items + ` AS t
WHERE (t.thread_id, t.pos) IN (
    SELECT value->>0, (value->>1)::bigint FROM jsonb_array_elements($1::text::jsonb))
ORDER BY t.thread_id, t.pos
FOR UPDATE`
}

// sealThreadItems is sealThreadRows' second half for a delta table (nothing for a full one): it seals,
// in q, the thread's plaintext items under k (through rekeyItems: a fork holds no lock of the thread, so
// a put may overwrite an item meanwhile). A fork copies items, which the migrating items table refuses
// in plaintext.
func (c *Checkpointer) sealThreadItems(ctx context.Context, q DBTX, k Key, a cipher.AEAD, threadID string) error {
	if c.delta == nil {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT pos, item::text FROM `+c.delta.items+`
WHERE thread_id = $1 AND item->>'$' IS DISTINCT FROM '`+envelopeMarker+`'`, threadID)
	if err != nil {
		return err
	}
	defer rows.Close()
	var out []rekeyedItem
	for rows.Next() {
		it := rekeyedItem{resealedItem: resealedItem{Thread: threadID}}
		var plain []byte
		if err := rows.Scan(&it.Pos, &plain); err != nil {
			return err
		}
		if err := c.resealItem(ctx, k, a, &it, plain, false); err != nil {
			return err
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return execResealed(ctx, q, rekeyItems(c.delta.items), out)
}
