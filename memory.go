package pgcheckpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Store with the same behaviour contract as a Checkpointer: validation, ids,
// ordering, retention, fencing, paging. It keeps everything in one process, so it suits tests, demos and
// single-process deployments that may lose their state. Snapshots are stored as given (PostgreSQL
// returns them in JSONB's normal form instead). The zero value is not usable: call NewMemory.
type Memory struct {
	mu       sync.Mutex
	threads  map[string][]Checkpoint // oldest first
	cap      int
	maxBytes int
	ids      *idGen
}

// NewMemory returns an empty Memory store. It uses MaxCheckpointsPerThread, MaxSnapshotBytes (0 means
// the PostgreSQL default) and Clock from opts and ignores the rest.
func NewMemory(opts Options) *Memory {
	m := &Memory{threads: map[string][]Checkpoint{}, cap: capOf(opts), maxBytes: maxBytesOf(opts, PostgreSQL),
		ids: newIDGen(opts.Clock)}
	return m
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, threadID string, snapshot []byte) (string, error) {
	return m.put(ctx, threadID, snapshot, nil)
}

// PutAfter implements Store.
func (m *Memory) PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error) {
	return m.put(ctx, threadID, snapshot, &head)
}

func (m *Memory) put(ctx context.Context, threadID string, snapshot []byte, fence *string) (string, error) {
	if err := checkThread(threadID); err != nil {
		return "", err
	}
	f, err := inspectSnapshot(snapshot, m.maxBytes)
	if err != nil {
		return "", err
	}
	if fence != nil && *fence != "" {
		canon, err := checkID("put", "expected head", *fence)
		if err != nil {
			return "", err
		}
		fence = &canon
	}
	if err := ctx.Err(); err != nil {
		return "", interpret("put", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	head := ""
	if len(rows) > 0 {
		head = rows[len(rows)-1].ID
	}
	if fence != nil && *fence != head {
		return "", fmt.Errorf("pgcheckpoint: put: thread %q is at %q, not at %q: %w", threadID, head, *fence, ErrConflict)
	}
	id := m.ids.next()
	if head != "" && head >= id.String() {
		floor, _ := parseID(head)
		if id, err = m.ids.nextAfter(floor); err != nil {
			return "", interpret("put", err)
		}
	}
	rows = append(rows, Checkpoint{
		ID: id.String(), ThreadID: threadID, CreatedAt: time.Now(), Version: f.version, SizeBytes: int32(f.size),
		Snapshot: append(json.RawMessage(nil), snapshot...),
	})
	if m.cap > 0 && len(rows) > m.cap {
		rows = append([]Checkpoint(nil), rows[len(rows)-m.cap:]...)
	}
	m.threads[threadID] = rows
	return id.String(), nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, threadID, id string) (Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return Checkpoint{}, err
	}
	if id != "" {
		canon, err := checkID("get", "checkpoint id", id)
		if err != nil {
			return Checkpoint{}, err
		}
		id = canon
	}
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, interpret("get", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	for i := len(rows) - 1; i >= 0; i-- {
		if id == "" || rows[i].ID == id {
			cp := rows[i]
			cp.Snapshot = append(json.RawMessage(nil), cp.Snapshot...)
			return cp, nil
		}
	}
	return Checkpoint{}, fmt.Errorf("pgcheckpoint: get: thread %q has no checkpoint %q: %w", threadID, id, ErrNotFound)
}

// List implements Store.
func (m *Memory) List(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return nil, err
	}
	if opts.Before != "" {
		canon, err := checkID("list", "cursor", opts.Before)
		if err != nil {
			return nil, err
		}
		opts.Before = canon
	}
	if err := ctx.Err(); err != nil {
		return nil, interpret("list", err)
	}
	limit := listLimit(opts.Limit, m.cap)
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	out := []Checkpoint{}
	for i := len(rows) - 1; i >= 0 && len(out) < limit; i-- {
		if opts.Before != "" && rows[i].ID >= opts.Before {
			continue
		}
		cp := rows[i]
		cp.Snapshot = nil
		out = append(out, cp)
	}
	return out, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, threadID, id string) error {
	if err := checkThread(threadID); err != nil {
		return err
	}
	if id != "" {
		canon, err := checkID("delete", "checkpoint id", id)
		if err != nil {
			return err
		}
		id = canon
	}
	if err := ctx.Err(); err != nil {
		return interpret("delete", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == "" {
		delete(m.threads, threadID)
		return nil
	}
	rows := m.threads[threadID]
	for i := range rows {
		if rows[i].ID == id {
			rows = append(rows[:i:i], rows[i+1:]...)
			break
		}
	}
	if len(rows) == 0 {
		delete(m.threads, threadID)
	} else {
		m.threads[threadID] = rows
	}
	return nil
}

// Threads implements Store.
func (m *Memory) Threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error) {
	if err := checkCursor(opts.After); err != nil {
		return nil, err
	}
	if err := checkPrefix("threads", opts.Prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, interpret("threads", err)
	}
	limit := listLimit(opts.Limit, 0)
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.threads))
	for t := range m.threads {
		if t > opts.After && strings.HasPrefix(t, opts.Prefix) {
			ids = append(ids, t)
		}
	}
	sort.Strings(ids)
	out := []ThreadInfo{}
	for _, t := range ids[:min(limit, len(ids))] {
		rows := m.threads[t]
		info := ThreadInfo{ThreadID: t, Checkpoints: len(rows), NewestID: rows[len(rows)-1].ID}
		for _, r := range rows {
			info.TotalBytes += int64(r.SizeBytes)
			if r.CreatedAt.After(info.NewestAt) {
				info.NewestAt = r.CreatedAt
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// Fork implements Store.
func (m *Memory) Fork(ctx context.Context, fromThread, checkpointID, toThread string, opts ForkOptions) (string, error) {
	r, err := newForkRequest(fromThread, checkpointID, toThread, opts, m.cap)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", interpret("fork", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[r.from]
	at := -1
	for i := range rows {
		if rows[i].ID == r.id {
			at = i
		}
	}
	switch {
	case at < 0:
		return "", fmt.Errorf("pgcheckpoint: fork: thread %q has no checkpoint %s: %w", r.from, r.id, ErrNotFound)
	case len(m.threads[r.to]) > 0:
		return "", fmt.Errorf("pgcheckpoint: fork: thread %q has checkpoints already: %w", r.to, ErrThreadExists)
	}
	from := max(0, int64(at)+1-r.limit)
	out := make([]Checkpoint, 0, int64(at)+1-from)
	for _, cp := range rows[from : at+1] {
		cp.ThreadID = r.to
		cp.Snapshot = append(json.RawMessage(nil), cp.Snapshot...)
		out = append(out, cp)
	}
	m.threads[r.to] = out
	return r.id, nil
}
