// Package genkit stores Genkit Go sessions (github.com/firebase/genkit/go/core/x/session, experimental in
// Genkit v1.4.0) in PostgreSQL or CockroachDB through pgcheckpoint.
//
// Store[S] implements session.Store[S]. Each session id is one pgcheckpoint thread:
//
//   - Save stores session.Data[S] (encoded with encoding/json, as Genkit's own stores do) as a new
//     checkpoint of the thread. Earlier states stay up to the table's retention (Options.
//     MaxCheckpointsPerThread of the pgcheckpoint.Checkpointer), readable with `pgcheckpoint ls` / `get`.
//   - Get returns the newest state, or nil (and a nil error) when the session has none, as the interface
//     demands; session.Load turns that into a *session.NotFoundError.
//   - Delete removes the whole session (not part of Genkit's interface).
//
// Session data is always a JSON object ({"id": ..., "state": ...}), so it is stored as JSON. A state
// whose encoding holds the NUL character ("\u0000") is refused with pgcheckpoint.ErrInvalidSnapshot:
// PostgreSQL's JSONB cannot store it.
//
// A Store is safe for concurrent use. Without fencing, concurrent Saves of one session all succeed, and
// the newest checkpoint afterwards is exactly one of them (the last to commit): Genkit's own
// InMemoryStore behaves the same. With Options.Fencing, a Save based on a stale read fails with a
// *FenceError instead.
package genkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/firebase/genkit/go/core/x/session"
	"github.com/ziroagent/pgcheckpoint"
)

// Options configure a Store. The zero value does not fence.
type Options struct {
	// Fencing makes Save refuse to write when another writer moved the session since this Store last read
	// (Get, session.Load) or wrote (Save) it: Save returns a *FenceError (errors.Is(err,
	// pgcheckpoint.ErrConflict) holds) and writes nothing. A session id this Store never read counts as
	// empty, so session.New with an id that already has a state fails instead of overwriting it. The
	// Store remembers one pgcheckpoint id per session id and stores with pgcheckpoint's PutAfter.
	// Fencing is per Store value: give each writer (process, or goroutine that loads its own session) its
	// own Store. Off by default, because Genkit's Save has no expected version.
	Fencing bool
}

// Store is a Genkit session store backed by a pgcheckpoint.Store (a *pgcheckpoint.Checkpointer in
// production, a *pgcheckpoint.Memory in tests). Create it with New.
type Store[S any] struct {
	cp   pgcheckpoint.Store
	opts Options

	mu    sync.Mutex
	heads map[string]string // with Fencing: session id -> newest pgcheckpoint id this Store saw ("" = empty)
}

// New returns a Store that keeps sessions with state type S in cp. The table must exist (cp.EnsureSchema
// or `pgcheckpoint migrate`).
func New[S any](cp pgcheckpoint.Store, opts Options) *Store[S] {
	return &Store[S]{cp: cp, opts: opts, heads: map[string]string{}}
}

// FenceError is what Save returns with Options.Fencing when the session's newest checkpoint is no longer
// the one this Store last read or wrote. Nothing was written: load the session again (session.Load,
// which re-arms the fence) and decide whether to write. It unwraps to pgcheckpoint.ErrConflict.
type FenceError struct {
	SessionID string // the Genkit session id (the pgcheckpoint thread)
	Expected  string // the pgcheckpoint id this Store expected as the newest ("" = no state yet)
	Err       error  // the error of PutAfter, which wraps pgcheckpoint.ErrConflict
}

func (e *FenceError) Error() string {
	exp := e.Expected
	if exp == "" {
		exp = "none"
	}
	return fmt.Sprintf("pgcheckpoint/genkit: session %q moved since this store last read it (expected newest %s): %v",
		e.SessionID, exp, e.Err)
}

func (e *FenceError) Unwrap() error { return e.Err }

// Get returns the newest state of the session, or nil and a nil error when it has none.
func (s *Store[S]) Get(ctx context.Context, sessionID string) (*session.Data[S], error) {
	cp, err := s.cp.Latest(ctx, sessionID)
	if errors.Is(err, pgcheckpoint.ErrNotFound) {
		s.remember(sessionID, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d session.Data[S]
	if err := json.Unmarshal(cp.Snapshot, &d); err != nil {
		return nil, fmt.Errorf("pgcheckpoint/genkit: decode session %q (%s): %w", sessionID, cp.ID, err)
	}
	s.remember(sessionID, cp.ID)
	return &d, nil
}

// Save stores data as the newest state of the session.
func (s *Store[S]) Save(ctx context.Context, sessionID string, data *session.Data[S]) error {
	if data == nil {
		return fmt.Errorf("pgcheckpoint/genkit: save session %q: nil data: %w", sessionID, pgcheckpoint.ErrInvalidSnapshot)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("pgcheckpoint/genkit: encode session %q: %w: %w", sessionID, pgcheckpoint.ErrInvalidSnapshot, err)
	}
	var id string
	if !s.opts.Fencing {
		id, err = s.cp.Put(ctx, sessionID, b)
	} else {
		s.mu.Lock()
		head := s.heads[sessionID]
		s.mu.Unlock()
		if head == "" {
			id, err = s.cp.PutIfEmpty(ctx, sessionID, b)
		} else {
			id, err = s.cp.PutAfter(ctx, sessionID, head, b)
		}
		if errors.Is(err, pgcheckpoint.ErrConflict) {
			return &FenceError{SessionID: sessionID, Expected: head, Err: err}
		}
	}
	if err != nil {
		return err
	}
	s.remember(sessionID, id)
	return nil
}

// Delete removes every stored state of the session. Deleting an unknown session is not an error.
func (s *Store[S]) Delete(ctx context.Context, sessionID string) error {
	if err := s.cp.DeleteThread(ctx, sessionID); err != nil && !errors.Is(err, pgcheckpoint.ErrNotFound) {
		return err
	}
	s.remember(sessionID, "")
	return nil
}

// Forget drops what the Store remembers about the session for fencing; the next Save fences as for a
// session never read. Long-running processes that fence call it when a session ends, so the memory (one
// short entry per session) does not grow.
func (s *Store[S]) Forget(sessionID string) {
	s.mu.Lock()
	delete(s.heads, sessionID)
	s.mu.Unlock()
}

func (s *Store[S]) remember(sessionID, id string) {
	if !s.opts.Fencing {
		return
	}
	s.mu.Lock()
	s.heads[sessionID] = id
	s.mu.Unlock()
}

var _ session.Store[struct{}] = (*Store[struct{}])(nil)
