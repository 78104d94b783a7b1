package pgcheckpoint

import (
	"context"
	"crypto/cipher"
	"encoding/json"
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
	budget   int64 // the byte budget; 0: none
	maxBytes int
	ids      *idGen
	seal     *sealer // Options.Keys: snapshots are held sealed, bound to table "memory"; nil: as given
}

// NewMemory returns an empty Memory store. It uses MaxCheckpointsPerThread, MaxBytesPerThread (0 or
// negative: no byte budget), MaxSnapshotBytes (0 means the PostgreSQL default), Clock and Keys from opts
// and ignores the rest. With Keys it holds every snapshot sealed as a Checkpointer stores it, so a key
// the provider stops handing out makes reads fail alike (ErrKeyMissing). A put trims as a Checkpointer's does: to the cap, and to the newest checkpoints whose
// SizeBytes sum to at most the byte budget (always keeping the newest), whichever keeps fewer.
func NewMemory(opts Options) *Memory {
	m := &Memory{threads: map[string][]Checkpoint{}, cap: capOf(opts), budget: max(opts.MaxBytesPerThread, 0), maxBytes: maxBytesOf(opts, PostgreSQL),
		ids: newIDGen(opts.Clock), seal: newSealer(opts.Keys, memoryTable)}
	return m
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, threadID string, snapshot []byte) (string, error) {
	id, err := m.put(ctx, threadID, snapshot, nil)
	return id, fail(OpPut, threadID, "", err)
}

// PutAfter implements Store.
func (m *Memory) PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error) {
	if head == "" {
		return "", fail(OpPutAfter, threadID, head, errNoHead)
	}
	id, err := m.put(ctx, threadID, snapshot, &head)
	return id, fail(OpPutAfter, threadID, head, err)
}

// PutIfEmpty implements Store.
func (m *Memory) PutIfEmpty(ctx context.Context, threadID string, snapshot []byte) (string, error) {
	empty := ""
	id, err := m.put(ctx, threadID, snapshot, &empty)
	return id, fail(OpPutIfEmpty, threadID, "", err)
}

// put stores snapshot; fence, when set, is the head the thread must be at ("": empty).
func (m *Memory) put(ctx context.Context, threadID string, snapshot []byte, fence *string) (string, error) {
	if err := checkThread(threadID); err != nil {
		return "", err
	}
	f, err := inspectSnapshot(snapshot, m.maxBytes)
	if err != nil {
		return "", err
	}
	if fence != nil && *fence != "" {
		canon, err := checkID("expected head", *fence)
		if err != nil {
			return "", err
		}
		fence = &canon
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var key Key
	var aead cipher.AEAD
	if m.seal != nil {
		if key, aead, err = m.seal.current(ctx); err != nil {
			return "", err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	head := ""
	if len(rows) > 0 {
		head = rows[len(rows)-1].ID
	}
	if fence != nil && *fence != head {
		return "", conflict(head, *fence)
	}
	id := m.ids.next()
	if head != "" && head >= id.String() {
		floor, _ := parseID(head)
		if id, err = m.ids.nextAfter(floor); err != nil {
			return "", err
		}
	}
	stored := append(json.RawMessage(nil), snapshot...)
	if aead != nil {
		stored = sealWith(key, aead, memoryBinding(threadID, id.String()), snapshot)
	}
	rows = append(rows, Checkpoint{
		ID: id.String(), ThreadID: threadID, CreatedAt: time.Now(), Version: f.version, SizeBytes: int32(f.size),
		Snapshot: stored,
	})
	if keep := retained(rows, m.cap, m.budget); keep < len(rows) {
		rows = append([]Checkpoint(nil), rows[len(rows)-keep:]...)
	}
	m.threads[threadID] = rows
	return id.String(), nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, threadID, id string) (Checkpoint, error) {
	cp, err := m.get(ctx, threadID, id, false)
	return cp, fail(OpGet, threadID, id, err)
}

// Latest implements Store.
func (m *Memory) Latest(ctx context.Context, threadID string) (Checkpoint, error) {
	cp, err := m.get(ctx, threadID, "", true)
	return cp, fail(OpLatest, threadID, "", err)
}

// get returns checkpoint id, or the newest when latest is set.
func (m *Memory) get(ctx context.Context, threadID, id string, latest bool) (Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return Checkpoint{}, err
	}
	if !latest {
		canon, err := checkID("checkpoint id", id)
		if err != nil {
			return Checkpoint{}, err
		}
		id = canon
	}
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	cp, ok := m.find(threadID, id, latest)
	if !ok {
		return Checkpoint{}, ErrNotFound
	}
	if m.seal != nil {
		plain, err := m.seal.open(ctx, memoryBinding(threadID, cp.ID), cp.Snapshot)
		if err != nil {
			return Checkpoint{}, err
		}
		cp.Snapshot = plain
	}
	return cp, nil
}

// find returns a copy of checkpoint id of the thread, or its newest when latest is set.
func (m *Memory) find(threadID, id string, latest bool) (Checkpoint, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	for i := len(rows) - 1; i >= 0; i-- {
		if latest || rows[i].ID == id {
			cp := rows[i]
			cp.Snapshot = append(json.RawMessage(nil), cp.Snapshot...)
			return cp, true
		}
	}
	return Checkpoint{}, false
}

// memoryTable is the table name a Memory store's ciphertexts are bound to.
const memoryTable = "memory"

// memoryBinding is where a Memory store's checkpoint belongs.
func memoryBinding(threadID, id string) binding {
	return binding{table: memoryTable, kind: bindRow, thread: threadID, at: id}
}

// List implements Store.
func (m *Memory) List(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error) {
	out, err := m.list(ctx, threadID, opts)
	return out, fail(OpList, threadID, opts.Before, err)
}

func (m *Memory) list(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error) {
	if err := checkThread(threadID); err != nil {
		return nil, err
	}
	limit := listLimit(opts.Limit)
	if opts.Before != "" {
		canon, err := checkID("cursor", opts.Before)
		if err != nil {
			return nil, err
		}
		opts.Before = canon
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.threads[threadID]
	out := []Checkpoint{}
	for i := len(rows) - 1; i >= 0 && len(out) != limit; i-- {
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
	return fail(OpDelete, threadID, id, m.deleteOne(ctx, threadID, id))
}

func (m *Memory) deleteOne(ctx context.Context, threadID, id string) error {
	if err := checkThread(threadID); err != nil {
		return err
	}
	id, err := checkID("checkpoint id", id)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
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

// DeleteThread implements Store.
func (m *Memory) DeleteThread(ctx context.Context, threadID string) error {
	err := checkThread(threadID)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		m.mu.Lock()
		delete(m.threads, threadID)
		m.mu.Unlock()
	}
	return fail(OpDeleteThread, threadID, "", err)
}

// Threads implements Store.
func (m *Memory) Threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error) {
	out, err := m.listThreads(ctx, opts)
	return out, fail(OpThreads, "", "", err)
}

func (m *Memory) listThreads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error) {
	if err := checkCursor(opts.After); err != nil {
		return nil, err
	}
	limit, err := threadsLimit(opts.Limit)
	if err != nil {
		return nil, err
	}
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
	id, err := m.fork(ctx, fromThread, checkpointID, toThread, opts)
	return id, fail(OpFork, toThread, checkpointID, err)
}

func (m *Memory) fork(ctx context.Context, fromThread, checkpointID, toThread string, opts ForkOptions) (string, error) {
	r, err := newForkRequest(fromThread, checkpointID, toThread, opts, m.cap)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var key Key
	var aead cipher.AEAD
	if m.seal != nil {
		if key, aead, err = m.seal.current(ctx); err != nil {
			return "", err
		}
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
		return "", errForkSource(r)
	case len(m.threads[r.to]) > 0:
		return "", errForkTarget(r)
	}
	from := max(0, int64(at)+1-r.limit)
	if r.limit > 1 {
		from = int64(at + 1 - retained(rows[from:at+1], 0, m.budget))
	}
	out := make([]Checkpoint, 0, int64(at)+1-from)
	for _, cp := range rows[from : at+1] {
		cp.ThreadID = r.to
		cp.Snapshot = append(json.RawMessage(nil), cp.Snapshot...)
		if aead != nil {
			// The copy is bound to its new thread, as a Checkpointer's fork re-binds it.
			plain, err := m.seal.open(ctx, memoryBinding(r.from, cp.ID), cp.Snapshot)
			if err != nil {
				return "", err
			}
			cp.Snapshot = sealWith(key, aead, memoryBinding(r.to, cp.ID), plain)
		}
		out = append(out, cp)
	}
	m.threads[r.to] = out
	return r.id, nil
}

// retained is how many of rows (oldest first) a put keeps, the newest: at most cap (0: no cap), and as
// many as fit in budget bytes of SizeBytes (0: no budget), at least one.
func retained(rows []Checkpoint, cap int, budget int64) int {
	keep := len(rows)
	if cap > 0 {
		keep = min(keep, cap)
	}
	if budget > 0 {
		var sum int64
		n := 0
		for i := len(rows) - 1; i >= 0 && n < keep; i-- {
			sum += int64(rows[i].SizeBytes)
			if sum > budget && n > 0 {
				break
			}
			n++
		}
		keep = n
	}
	return keep
}
