// Package eino stores Eino (github.com/cloudwego/eino) checkpoints in PostgreSQL or CockroachDB through
// pgcheckpoint.
//
// Store implements compose.CheckPointStore (the same interface as adk.CheckPointStore) and the
// Delete(ctx, checkPointID) method of the optional CheckPointDeleter that Eino versions after v0.7.36
// declare (their ADK TurnLoop calls it when the store has it; v0.7.36, which this module is tested with,
// has neither, so call Delete yourself there). Each Eino checkpoint id is one pgcheckpoint thread:
//
//   - Set stores a new checkpoint of the thread. Earlier ones stay, up to the table's retention
//     (Options.MaxCheckpointsPerThread of the pgcheckpoint.Checkpointer), so earlier interrupts can be
//     inspected with `pgcheckpoint ls` and `pgcheckpoint get`.
//   - Get returns the newest checkpoint, or (nil, false, nil) when the thread has none.
//   - Delete removes the whole thread.
//
// Eino's bytes are opaque. Graph checkpoints (compose) are JSON objects by default and are stored as they
// are, so `pgcheckpoint get` shows them; Get then returns equivalent JSON in JSONB's normal form (keys
// reordered, whitespace dropped), which Eino's JSON decoder reads back to the same values. Everything else
// (the gob bytes of adk.Runner checkpoints, JSON that is not an object, JSON that pgcheckpoint refuses such
// as a "\u0000" string or a non-integer top-level "version") goes into an envelope object
//
//	{"data":"<standard base64 of the bytes>","encoding":"base64","pgcheckpoint_adapter":"eino"}
//
// and comes back byte for byte. Base64 makes such payloads a third larger (see docs/frameworks.md for
// the measured cost). Options.Verbatim envelopes every payload, for custom serializers whose bytes must
// come back identical.
//
// A Store is safe for concurrent use.
package eino

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/cloudwego/eino/compose"
	"github.com/ziroagent/pgcheckpoint"
)

// Options configure a Store. The zero value stores JSON objects as they are, envelopes the rest and does
// not fence.
type Options struct {
	// Fencing makes Set refuse to write when another writer moved the thread since this Store last read
	// or wrote it: Set returns a *FenceError (errors.Is(err, pgcheckpoint.ErrConflict) holds) and writes
	// nothing. The Store remembers, per checkpoint id, the newest checkpoint it last read (Get) or wrote
	// (Set), and stores with pgcheckpoint's PutAfter. A checkpoint id this Store never read counts as
	// empty: Set on a thread another process already wrote fails until Get is called. Fencing is per
	// Store value: give each writer (process) its own Store. Off by default, because Eino's Set has no
	// expected version and plain Eino stores overwrite.
	Fencing bool

	// Verbatim puts every payload, JSON or not, into the base64 envelope, so Get returns exactly the bytes
	// Set was given. Off by default: JSON objects are stored as JSON, readable with `pgcheckpoint get`.
	Verbatim bool
}

// Store is an Eino checkpoint store backed by a pgcheckpoint.Store (a *pgcheckpoint.Checkpointer in
// production, a *pgcheckpoint.Memory in tests). Create it with New.
type Store struct {
	cp   pgcheckpoint.Store
	opts Options

	mu    sync.Mutex
	heads map[string]string // with Fencing: checkpoint id -> the newest pgcheckpoint id this Store saw ("" = empty)
}

var _ compose.CheckPointStore = (*Store)(nil)

// New returns a Store that keeps Eino checkpoints in cp. The table must exist (cp.EnsureSchema or
// `pgcheckpoint migrate`).
func New(cp pgcheckpoint.Store, opts Options) *Store {
	return &Store{cp: cp, opts: opts, heads: map[string]string{}}
}

// FenceError is what Set returns with Options.Fencing when the thread's newest checkpoint is no longer the
// one this Store last read or wrote. Nothing was written. Read the checkpoint again (Get, which also
// re-arms the fence) and decide whether to write. It unwraps to pgcheckpoint.ErrConflict.
type FenceError struct {
	CheckPointID string // the Eino checkpoint id (the pgcheckpoint thread)
	Expected     string // the pgcheckpoint id this Store expected as the newest ("" = an empty thread)
	Err          error  // the error of PutAfter, which wraps pgcheckpoint.ErrConflict
}

func (e *FenceError) Error() string {
	exp := e.Expected
	if exp == "" {
		exp = "none"
	}
	return fmt.Sprintf("pgcheckpoint/eino: checkpoint %q moved since this store last read it (expected newest %s): %v",
		e.CheckPointID, exp, e.Err)
}

func (e *FenceError) Unwrap() error { return e.Err }

// Envelope is the JSON object that holds a payload that is not stored as JSON.
type Envelope struct {
	Adapter  string `json:"pgcheckpoint_adapter"` // always "eino"
	Encoding string `json:"encoding"`             // always "base64" (standard alphabet, padded)
	Data     string `json:"data"`
}

const (
	adapterName = "eino"
	envelopeKey = `"pgcheckpoint_adapter"`
)

// Get returns the newest checkpoint stored under checkPointID, and false (with a nil error) when there is
// none.
func (s *Store) Get(ctx context.Context, checkPointID string) ([]byte, bool, error) {
	cp, err := s.cp.Latest(ctx, checkPointID)
	if errors.Is(err, pgcheckpoint.ErrNotFound) {
		s.remember(checkPointID, "")
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, err := Decode(cp.Snapshot)
	if err != nil {
		return nil, false, fmt.Errorf("pgcheckpoint/eino: checkpoint %q (%s): %w", checkPointID, cp.ID, err)
	}
	s.remember(checkPointID, cp.ID)
	return b, true, nil
}

// Set stores checkPoint as the newest checkpoint of checkPointID.
func (s *Store) Set(ctx context.Context, checkPointID string, checkPoint []byte) error {
	doc, enveloped, err := Encode(checkPoint, s.opts.Verbatim)
	if err != nil {
		return err
	}
	id, err := s.put(ctx, checkPointID, doc)
	if !enveloped && errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
		// JSON that pgcheckpoint will not store as JSON (a NUL in a string, a top-level "version" that is
		// not an int32): keep it exactly, in the envelope.
		doc, _, _ = Encode(checkPoint, true)
		id, err = s.put(ctx, checkPointID, doc)
	}
	if err != nil {
		return err
	}
	s.remember(checkPointID, id)
	return nil
}

// Delete removes every checkpoint stored under checkPointID. Deleting an unknown id is not an error. It has
// the signature of CheckPointDeleter (Eino after v0.7.36).
func (s *Store) Delete(ctx context.Context, checkPointID string) error {
	if err := s.cp.DeleteThread(ctx, checkPointID); err != nil && !errors.Is(err, pgcheckpoint.ErrNotFound) {
		return err
	}
	if s.opts.Fencing {
		s.mu.Lock()
		s.heads[checkPointID] = "" // this Store knows the thread is empty now
		s.mu.Unlock()
	}
	return nil
}

// Forget drops what the Store remembers about checkPointID for fencing (nothing else changes); the next
// Set fences as for a checkpoint id never read. Long-running processes that fence call it when they are
// done with a checkpoint id, so the memory (one short entry per id) does not grow.
func (s *Store) Forget(checkPointID string) {
	s.mu.Lock()
	delete(s.heads, checkPointID)
	s.mu.Unlock()
}

func (s *Store) put(ctx context.Context, thread string, doc []byte) (string, error) {
	if !s.opts.Fencing {
		return s.cp.Put(ctx, thread, doc)
	}
	s.mu.Lock()
	head := s.heads[thread]
	s.mu.Unlock()
	var id string
	var err error
	if head == "" {
		id, err = s.cp.PutIfEmpty(ctx, thread, doc)
	} else {
		id, err = s.cp.PutAfter(ctx, thread, head, doc)
	}
	if errors.Is(err, pgcheckpoint.ErrConflict) {
		return "", &FenceError{CheckPointID: thread, Expected: head, Err: err}
	}
	return id, err
}

func (s *Store) remember(thread, id string) {
	if !s.opts.Fencing {
		return
	}
	s.mu.Lock()
	s.heads[thread] = id
	s.mu.Unlock()
}

// Encode turns Eino's bytes into the JSON object the Store writes: b itself when it is a JSON object
// (and verbatim is false) that cannot be mistaken for an envelope, otherwise an Envelope. enveloped
// reports which. Exported so that tools and tests can produce and read the same format.
func Encode(b []byte, verbatim bool) (doc []byte, enveloped bool, err error) {
	if !verbatim && isJSONObject(b) && !bytes.Contains(b, []byte(envelopeKey)) {
		return b, false, nil
	}
	// Written by hand, in the key order JSONB keeps (shorter keys first): the standard base64 alphabet
	// needs no JSON escaping, and encoding/json's string escaping would double the cost.
	doc = make([]byte, 0, len(envelopeHead)+base64.StdEncoding.EncodedLen(len(b))+len(envelopeTail))
	doc = append(doc, envelopeHead...)
	doc = base64.StdEncoding.AppendEncode(doc, b)
	doc = append(doc, envelopeTail...)
	return doc, true, nil
}

// The envelope as Encode writes it, and as PostgreSQL returns it (JSONB's normal form adds spaces).
const (
	envelopeHead      = `{"data":"`
	envelopeTail      = `","encoding":"base64","pgcheckpoint_adapter":"eino"}`
	envelopeHeadJSONB = `{"data": "`
	envelopeTailJSONB = `", "encoding": "base64", "pgcheckpoint_adapter": "eino"}`
)

// envelopeData returns the base64 text of an envelope in one of its two exact forms, without a JSON parse.
func envelopeData(doc []byte) ([]byte, bool) {
	for _, f := range [2][2]string{{envelopeHead, envelopeTail}, {envelopeHeadJSONB, envelopeTailJSONB}} {
		if rest, ok := bytes.CutPrefix(doc, []byte(f[0])); ok {
			if data, ok := bytes.CutSuffix(rest, []byte(f[1])); ok && bytes.IndexAny(data, "\\\"") < 0 {
				return data, true
			}
		}
	}
	return nil, false
}

// Decode is the inverse of Encode: it returns the bytes an envelope holds, or doc itself when it is not
// an envelope.
func Decode(doc []byte) ([]byte, error) {
	if !bytes.Contains(doc, []byte(envelopeKey)) {
		return doc, nil
	}
	if data, ok := envelopeData(doc); ok {
		b, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(data))), data)
		if err != nil {
			return nil, fmt.Errorf("pgcheckpoint/eino: envelope data: %w", err)
		}
		return b, nil
	}
	var e Envelope // any other form, e.g. written by another tool: parse it
	if err := json.Unmarshal(doc, &e); err != nil || e.Adapter != adapterName {
		return doc, nil // some other JSON object that mentions the key: not ours
	}
	if e.Encoding != "base64" {
		return nil, fmt.Errorf("pgcheckpoint/eino: envelope encoding %q unknown", e.Encoding)
	}
	b, err := base64.StdEncoding.DecodeString(e.Data)
	if err != nil {
		return nil, fmt.Errorf("pgcheckpoint/eino: envelope data: %w", err)
	}
	return b, nil
}

// isJSONObject reports whether b is valid UTF-8 JSON whose top-level value is an object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && utf8.Valid(b) && json.Valid(b)
}
