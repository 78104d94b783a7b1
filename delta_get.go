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
	var out []byte
	found := false
	members := false
	for rows.Next() {
		var (
			head, key, items sql.RawBytes
		)
		if err := rows.Scan(&cp.ID, &cp.CreatedAt, &cp.Version, &cp.SizeBytes, &head, &key, &items); err != nil {
			return Checkpoint{}, interpret("get", err)
		}
		if !found {
			found = true
			// JSONB prints an object as {...}: keep all but the closing brace and add the arrays.
			out = append(make([]byte, 0, 2*len(head)+64), head[:len(head)-1]...)
			members = string(head) != "{}"
		}
		if key == nil {
			continue
		}
		if members {
			out = append(out, ", "...)
		}
		k, _ := json.Marshal(string(key))
		out = append(append(append(out, k...), ": ["...), items...)
		out = append(out, ']')
		members = true
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
	cp.Snapshot = append(out, '}')
	return cp, nil
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
