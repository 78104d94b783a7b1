package pgcheckpoint

import (
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
// out: an encrypted head stores none (see planDelta), and Rekey may clear one a plaintext head had.
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

// deltaRebindFork is rebindFork for a delta table: its heads and items.
func (c *Checkpointer) deltaRebindFork(ctx context.Context, q DBTX, r forkRequest) error {
	if c.seal == nil {
		return nil
	}
	return fmt.Errorf("fork of an encrypted delta table is not built yet: %w", ErrInvalidOptions)
}
