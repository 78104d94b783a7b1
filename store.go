package pgcheckpoint

import (
	"context"
	"encoding/json"
	"fmt"
)

// Store is the behaviour contract shared by the PostgreSQL/CockroachDB Checkpointer and the in-memory
// Memory store: code that depends on Store can be tested without a database. The package
// pgcheckpointtest checks any implementation against the contract.
type Store interface {
	Put(ctx context.Context, threadID string, snapshot []byte) (string, error)
	PutAfter(ctx context.Context, threadID, head string, snapshot []byte) (string, error)
	Get(ctx context.Context, threadID, id string) (Checkpoint, error)
	List(ctx context.Context, threadID string, opts ListOptions) ([]Checkpoint, error)
	Delete(ctx context.Context, threadID, id string) error
	Threads(ctx context.Context, opts ThreadsOptions) ([]ThreadInfo, error)
}

var (
	_ Store = (*Checkpointer)(nil)
	_ Store = (*Memory)(nil)
)

// PutJSON encodes v with encoding/json and stores it with s.Put. v must encode to a JSON object.
func PutJSON[T any](ctx context.Context, s Store, threadID string, v T) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("pgcheckpoint: encode snapshot: %w: %w", ErrInvalidSnapshot, err)
	}
	return s.Put(ctx, threadID, b)
}

// GetJSON reads a checkpoint with s.Get (the newest when id is "") and decodes its snapshot into a T.
func GetJSON[T any](ctx context.Context, s Store, threadID, id string) (T, Checkpoint, error) {
	var v T
	cp, err := s.Get(ctx, threadID, id)
	if err != nil {
		return v, cp, err
	}
	if err := json.Unmarshal(cp.Snapshot, &v); err != nil {
		return v, cp, fmt.Errorf("pgcheckpoint: decode snapshot %s: %w", cp.ID, err)
	}
	return v, cp, nil
}
