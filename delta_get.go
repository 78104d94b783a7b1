package pgcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
		return Checkpoint{}, interpret("get", err)
	}
	defer rows.Close()
	cp := Checkpoint{ThreadID: threadID}
	var head, arrays []byte
	slots := map[int64][]byte{}
	found := false
	for rows.Next() {
		var (
			h, a  []byte
			slot  sql.NullInt64
			items sql.RawBytes
		)
		if err := rows.Scan(&cp.ID, &cp.CreatedAt, &cp.Version, &cp.SizeBytes, &h, &a, &slot, &items); err != nil {
			return Checkpoint{}, interpret("get", err)
		}
		found = true
		head, arrays = h, a
		if slot.Valid {
			slots[slot.Int64] = append([]byte(nil), items...)
		}
	}
	if err := rows.Err(); err != nil {
		return Checkpoint{}, interpret("get", err)
	}
	if !found {
		if id == "" {
			return Checkpoint{}, fmt.Errorf("pgcheckpoint: get: thread %q has no checkpoint: %w", threadID, ErrNotFound)
		}
		return Checkpoint{}, fmt.Errorf("pgcheckpoint: get: thread %q has no checkpoint %s: %w", threadID, id, ErrNotFound)
	}
	snap, err := splice(head, arrays, slots)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("pgcheckpoint: get: checkpoint %s: %w", cp.ID, err)
	}
	cp.Snapshot = snap
	return cp, nil
}

// splice adds each spilled array, its items' JSON text as the server printed it, to the head's JSON
// (as JSONB prints an object: {...}), without parsing the items.
func splice(head, arrays []byte, slots map[int64][]byte) ([]byte, error) {
	var meta map[string]struct {
		S int64 `json:"s"`
	}
	if err := json.Unmarshal(arrays, &meta); err != nil {
		return nil, err
	}
	size := len(head) + 16*len(meta)
	for _, items := range slots {
		size += len(items)
	}
	out := append(make([]byte, 0, size), head[:len(head)-1]...)
	members := string(head) != "{}"
	for key, m := range meta {
		if members {
			out = append(out, ", "...)
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, k...), ": ["...), slots[m.S]...)
		out = append(out, ']')
		members = true
	}
	return append(out, '}'), nil
}

// deltaGetChecked is deltaGet after the id check and the storage check.
func (c *Checkpointer) deltaGetChecked(ctx context.Context, threadID, id string) (Checkpoint, error) {
	if id != "" {
		canon, err := checkID("get", "checkpoint id", id)
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
