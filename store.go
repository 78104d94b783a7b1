package pgcheckpoint

import (
	"context"
	"encoding/json"
	"fmt"
)

// Store is the behaviour contract shared by the PostgreSQL/CockroachDB Checkpointer and the in-memory
// Memory store: code that depends on Store can be tested without a database. The package
// pgcheckpointtest checks any implementation against the contract.
//
// Every method checks its inputs before anything is written and answers bad input with a typed error
// (ErrInvalidThreadID, ErrInvalidCheckpointID, ErrInvalidSnapshot, ErrSnapshotTooLarge, ErrInvalidOptions);
// every error but ErrOutcomeUnknown means nothing was written. Checkpoint ids are UUIDs; one given in
// upper case names the same checkpoint. Implementations are safe for concurrent use, and each method
// takes effect at one instant between its call and its return (docs/operations.md, Guarantees).
type Store interface {
	// Put stores snapshot, a JSON object, as the thread's newest checkpoint, trims the thread to its
	// retention cap in the same atomic step, and returns the new checkpoint's id, which sorts after
	// every id the thread held.
	Put(ctx context.Context, threadID string, snapshot []byte) (string, error)
	// PutAfter is Put only if head is still the thread's newest checkpoint; otherwise it writes nothing
	// and returns ErrConflict, with the head it lost to in Error.Head. head must be a UUID (the empty
	// string is ErrInvalidCheckpointID: PutIfEmpty is the put into an empty thread). Of concurrent
	// PutAfter calls naming the same head, at most one succeeds.
	PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error)
	// PutIfEmpty is Put only if the thread has no checkpoint; otherwise it writes nothing and returns
	// ErrConflict, with the thread's newest id in Error.Head. Of concurrent PutIfEmpty calls on one
	// thread, at most one succeeds.
	PutIfEmpty(ctx context.Context, threadID string, snapshot []byte) (string, error)
	// Get returns checkpoint id of the thread with its snapshot; ErrNotFound when the thread has no
	// such checkpoint, ErrInvalidCheckpointID when id is not a UUID.
	Get(ctx context.Context, threadID, id string) (Checkpoint, error)
	// Latest returns the thread's newest checkpoint with its snapshot; ErrNotFound when the thread has
	// none.
	Latest(ctx context.Context, threadID string) (Checkpoint, error)
	// List returns the metadata of the thread's checkpoints, newest first, without snapshots: at most
	// opts.Limit (0: the retention cap or 100; negative: all), older than opts.Before when set. An
	// unknown thread has an empty list.
	List(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error)
	// Delete removes checkpoint id of the thread (id must be a UUID). Removing nothing is not an error.
	Delete(ctx context.Context, threadID, id string) error
	// DeleteThread removes every checkpoint of the thread. Removing nothing is not an error.
	DeleteThread(ctx context.Context, threadID string) error
	// Threads returns the threads whose id sorts after opts.After (and starts with opts.Prefix, byte
	// for byte, when set), in byte order, at most opts.Limit, with their checkpoint counts, newest ids
	// and total sizes.
	Threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error)
	// Fork starts thread toThread, which must have no checkpoint (else ErrThreadExists), from
	// checkpoint checkpointID of fromThread (ErrNotFound when absent): a copy of it, with opts.History
	// also of its older ones up to the retention cap in all, keeping their ids. It returns the new
	// thread's newest id, checkpointID. Atomic: the new thread has every copy or none.
	Fork(ctx context.Context, fromThread, checkpointID, toThread string, opts ForkOptions) (string, error)
}

var (
	_ Store = (*Checkpointer)(nil)
	_ Store = (*Memory)(nil)
)

// PutJSON encodes v with encoding/json and stores it with s.Put. v must encode to a JSON object.
func PutJSON[T any](ctx context.Context, s Store, threadID string, v T) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fail(OpPut, threadID, "", fmt.Errorf("encode snapshot: %w: %w", ErrInvalidSnapshot, err))
	}
	return s.Put(ctx, threadID, b)
}

// GetJSON reads checkpoint id of the thread with s.Get and decodes its snapshot into a T.
func GetJSON[T any](ctx context.Context, s Store, threadID, id string) (T, Checkpoint, error) {
	cp, err := s.Get(ctx, threadID, id)
	return decodeJSON[T](OpGet, cp, err)
}

// LatestJSON reads the thread's newest checkpoint with s.Latest and decodes its snapshot into a T.
func LatestJSON[T any](ctx context.Context, s Store, threadID string) (T, Checkpoint, error) {
	cp, err := s.Latest(ctx, threadID)
	return decodeJSON[T](OpLatest, cp, err)
}

func decodeJSON[T any](op Op, cp Checkpoint, err error) (T, Checkpoint, error) {
	var v T
	if err != nil {
		return v, cp, err
	}
	if err := json.Unmarshal(cp.Snapshot, &v); err != nil {
		return v, cp, fail(op, cp.ThreadID, cp.ID, fmt.Errorf("decode snapshot %s: %w", cp.ID, err))
	}
	return v, cp, nil
}
