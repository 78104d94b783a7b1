package pgcheckpoint

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// deltaGet is get for a delta table: one statement returns the head and, per spilled array, its items
// as JSON text, which are spliced into the head's JSON without parsing them.
func (c *Checkpointer) deltaGet(ctx context.Context, threadID, id string) (Checkpoint, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if id == "" {
		rows, err = c.db.QueryContext(ctx, c.delta.q.getLatest, threadID)
	} else {
		rows, err = c.db.QueryContext(ctx, c.delta.q.getByID, threadID, id)
	}
	if err != nil {
		return Checkpoint{}, interpret(err)
	}
	defer rows.Close()
	cp := Checkpoint{ThreadID: threadID}
	var (
		head, arrays []byte
		arena        []byte // every item's JSON, one after the other
		items        []itemRef
		found        bool
	)
	for rows.Next() {
		var (
			id            sql.NullString
			created       sql.NullTime
			version, size sql.NullInt32
			h, a          sql.RawBytes
			pos           sql.NullInt64
			item          sql.RawBytes
		)
		if err := rows.Scan(&id, &created, &version, &size, &h, &a, &pos, &item); err != nil {
			return Checkpoint{}, interpret(err)
		}
		if !pos.Valid {
			found = true
			cp.ID, cp.CreatedAt, cp.Version, cp.SizeBytes = id.String, created.Time, version.Int32, size.Int32
			head, arrays = append([]byte(nil), h...), append([]byte(nil), a...)
			continue
		}
		items = append(items, itemRef{pos: pos.Int64, start: len(arena), end: len(arena) + len(item)})
		arena = append(arena, item...)
	}
	if err := rows.Err(); err != nil {
		return Checkpoint{}, interpret(err)
	}
	if !found {
		if id == "" {
			return Checkpoint{}, ErrNotFound
		}
		return Checkpoint{}, ErrNotFound
	}
	head, arena, items, err = c.deltaReveal(ctx, threadID, cp.ID, head, arrays, arena, items)
	if err != nil {
		return Checkpoint{}, err
	}
	snap, err := splice(head, arrays, arena, items)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", cp.ID, err)
	}
	cp.Snapshot = snap
	return cp, nil
}

// itemRef is one item of a get: its position and where its JSON is in the arena.
type itemRef struct {
	pos        int64
	start, end int
}

// splice adds each spilled array, its items' JSON text as the server printed it, to the head's JSON
// (as JSONB prints an object: {...}), without parsing the items. An array's items are those of its
// slot, in position order.
func splice(head, arrays, arena []byte, items []itemRef) ([]byte, error) {
	var meta map[string]struct {
		S int64 `json:"s"`
	}
	if err := json.Unmarshal(arrays, &meta); err != nil {
		return nil, err
	}
	sortItems(items)
	out := append(make([]byte, 0, len(head)+len(arena)+2*len(items)+16*len(meta)), head[:len(head)-1]...)
	members := string(head) != "{}"
	for key, m := range meta {
		if members {
			out = append(out, ", "...)
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		out = append(append(out, k...), ": ["...)
		lo, hi := m.S*slotBase, (m.S+1)*slotBase
		first := true
		for _, it := range items[sort.Search(len(items), func(i int) bool { return items[i].pos >= lo }):] {
			if it.pos >= hi {
				break
			}
			if !first {
				out = append(out, ", "...)
			}
			out = append(out, arena[it.start:it.end]...)
			first = false
		}
		out = append(out, ']')
		members = true
	}
	return append(out, '}'), nil
}

// sortItems sorts items by position (the server returns them sorted; a plan could return another order).
func sortItems(items []itemRef) {
	if !slices.IsSortedFunc(items, func(a, b itemRef) int { return cmp.Compare(a.pos, b.pos) }) {
		slices.SortFunc(items, func(a, b itemRef) int { return cmp.Compare(a.pos, b.pos) })
	}
}

// deltaGetChecked is deltaGet after the id check and the storage check.
func (c *Checkpointer) deltaGetChecked(ctx context.Context, threadID, id string) (Checkpoint, error) {
	if id != "" {
		canon, err := checkID("checkpoint id", id)
		if err != nil {
			return Checkpoint{}, err
		}
		id = canon
	}
	if err := c.checkStorage(ctx, "get"); err != nil {
		return Checkpoint{}, err
	}
	return c.deltaGet(ctx, threadID, id)
}
