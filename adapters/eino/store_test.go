package eino_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/cloudwego/eino/adk"
	"github.com/cloudwego/eino/compose"
	"github.com/ziroagent/pgcheckpoint"
	pgeino "github.com/ziroagent/pgcheckpoint/adapters/eino"
)

// payloads are the kinds of bytes Eino hands a store, and the edge cases of the JSON-or-envelope choice.
func payloads(t *testing.T) map[string]struct {
	b         []byte
	enveloped bool
} {
	random := make([]byte, 4096)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	return map[string]struct {
		b         []byte
		enveloped bool
	}{
		"json object":               {[]byte(`{"Channels":{"a":1},"State":{"x":[1,2,3]}}`), false},
		"json array":                {[]byte(`[1,2,3]`), true},
		"json string":               {[]byte(`"hello"`), true},
		"binary":                    {random, true},
		"gob-like with NUL":         {[]byte{0x0f, 0xff, 0x81, 0x03, 0x01, 0x00, 0x00}, true},
		"empty":                     {[]byte{}, true},
		"invalid utf-8 in json":     {[]byte("{\"a\":\"\xff\"}"), true},
		"mentions the envelope key": {[]byte(`{"pgcheckpoint_adapter":"eino","encoding":"base64","data":"AA=="}`), true},
		"NUL escape":                {[]byte(`{"a":"x\u0000y"}`), true},        // JSONB refuses it: falls back to the envelope
		"non-integer version":       {[]byte(`{"version":"1.2","a":1}`), true}, // pgcheckpoint refuses it: envelope
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, p := range payloads(t) {
		for _, verbatim := range []bool{false, true} {
			doc, _, err := pgeino.Encode(p.b, verbatim)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := pgeino.Decode(doc)
			if err != nil || !bytes.Equal(got, p.b) {
				t.Fatalf("%s (verbatim %v): got %q, %v; want %q", name, verbatim, got, err, p.b)
			}
		}
	}
}

// TestDecodeOtherForms: an envelope in any key order and spacing (another tool may write one) decodes;
// a broken one is an error, not silent garbage.
func TestDecodeOtherForms(t *testing.T) {
	for _, doc := range []string{
		`{"pgcheckpoint_adapter":"eino","encoding":"base64","data":"AAEC"}`,
		`{ "encoding" : "base64", "data" : "AAEC", "pgcheckpoint_adapter" : "eino" }`,
		`{"data": "AAEC", "encoding": "base64", "pgcheckpoint_adapter": "eino"}`,
	} {
		if got, err := pgeino.Decode([]byte(doc)); err != nil || !bytes.Equal(got, []byte{0, 1, 2}) {
			t.Fatalf("%s: %v, %v", doc, got, err)
		}
	}
	for _, doc := range []string{
		`{"data":"AA!C","encoding":"base64","pgcheckpoint_adapter":"eino"}`,
		`{"data":"AAEC","encoding":"zstd","pgcheckpoint_adapter":"eino"}`,
	} {
		if _, err := pgeino.Decode([]byte(doc)); err == nil {
			t.Fatalf("%s decoded", doc)
		}
	}
}

// TestStoreRoundTrip runs every payload through a real table with both drivers: JSON objects come back
// as equivalent JSON (JSONB's normal form), everything else byte for byte.
func TestStoreRoundTrip(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cp, _, _ := newCheckpointer(t, driver)
			for _, verbatim := range []bool{false, true} {
				s := pgeino.New(cp, pgeino.Options{Verbatim: verbatim})
				for name, p := range payloads(t) {
					if _, ok, err := s.Get(ctx, name); ok || err != nil {
						t.Fatalf("%s: Get before Set: %v, %v", name, ok, err)
					}
					if err := s.Set(ctx, name, p.b); err != nil {
						t.Fatalf("%s: Set: %v", name, err)
					}
					got, ok, err := s.Get(ctx, name)
					if err != nil || !ok {
						t.Fatalf("%s: Get: %v, %v", name, ok, err)
					}
					stored, err := cp.Latest(ctx, name)
					if err != nil {
						t.Fatal(err)
					}
					isEnvelope := bytes.Contains(stored.Snapshot, []byte(`"pgcheckpoint_adapter": "eino"}`))
					if isEnvelope != (p.enveloped || verbatim) {
						t.Fatalf("%s (verbatim %v): stored as %s", name, verbatim, stored.Snapshot)
					}
					if isEnvelope && !bytes.Equal(got, p.b) {
						t.Fatalf("%s: got %q, want %q", name, got, p.b)
					}
					if !isEnvelope && !jsonEqual(t, got, p.b) {
						t.Fatalf("%s: got %s, want JSON equal to %s", name, got, p.b)
					}
					if err := s.Delete(ctx, name); err != nil {
						t.Fatal(err)
					}
					if _, ok, err := s.Get(ctx, name); ok || err != nil {
						t.Fatalf("%s: Get after Delete: %v, %v", name, ok, err)
					}
				}
			}
			// Set keeps history: earlier interrupts stay inspectable.
			s := pgeino.New(cp, pgeino.Options{})
			for _, b := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
				if err := s.Set(ctx, "history", []byte(b)); err != nil {
					t.Fatal(err)
				}
			}
			list, err := cp.List(ctx, "history", pgcheckpoint.ListOptions{})
			if err != nil || len(list) != 3 {
				t.Fatalf("history: %d checkpoints, %v", len(list), err)
			}
			if err := s.Delete(ctx, "never-written"); err != nil {
				t.Fatalf("Delete of an unknown id: %v", err)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := jsonUnmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := jsonUnmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return mustJSON(x) == mustJSON(y)
}

// TestFencing: two Stores (two processes) on one checkpoint id. The one whose view is stale gets a
// *FenceError and writes nothing; Get re-arms it. Without Fencing the same write succeeds.
func TestFencing(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cp, _, _ := newCheckpointer(t, driver)
			a := pgeino.New(cp, pgeino.Options{Fencing: true})
			b := pgeino.New(cp, pgeino.Options{Fencing: true})
			const id = "fenced"

			if _, _, err := a.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := a.Set(ctx, id, []byte(`{"by":"a"}`)); err != nil {
				t.Fatal(err)
			}
			err := b.Set(ctx, id, []byte(`{"by":"b"}`))
			var fe *pgeino.FenceError
			if !errors.As(err, &fe) || !errors.Is(err, pgcheckpoint.ErrConflict) || fe.CheckPointID != id || fe.Expected != "" {
				t.Fatalf("stale writer: %v", err)
			}
			if got, _, _ := a.Get(ctx, id); string(got) != `{"by": "a"}` {
				t.Fatalf("the refused write changed the thread: %s", got)
			}
			// a keeps writing: its view is current.
			if err := a.Set(ctx, id, []byte(`{"by":"a","n":2}`)); err != nil {
				t.Fatal(err)
			}
			// b reads (re-arms) and may write.
			if _, _, err := b.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := b.Set(ctx, id, []byte(`{"by":"b"}`)); err != nil {
				t.Fatal(err)
			}
			if err := a.Set(ctx, id, []byte(`{"by":"a","n":3}`)); !errors.As(err, &fe) {
				t.Fatalf("a after b moved the thread: %v", err)
			}
			// A Store that never read the id treats it as empty.
			c := pgeino.New(cp, pgeino.Options{Fencing: true})
			if err := c.Set(ctx, id, []byte(`{"by":"c"}`)); !errors.As(err, &fe) {
				t.Fatalf("blind write: %v", err)
			}
			// Delete leaves the Store knowing the id empty.
			if err := c.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, id, []byte(`{"by":"c"}`)); err != nil {
				t.Fatal(err)
			}
			// Off by default: the blind write succeeds.
			if err := pgeino.New(cp, pgeino.Options{}).Set(ctx, id, []byte(`{"by":"d"}`)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFencingConcurrent: writers that all read the same head race; exactly one wins, every other gets a
// *FenceError, and the newest checkpoint is the winner's.
func TestFencingConcurrent(t *testing.T) {
	ctx := context.Background()
	cp, _, _ := newCheckpointer(t, "pgx")
	const id, writers = "race", 8
	stores := make([]*pgeino.Store, writers)
	for i := range stores {
		stores[i] = pgeino.New(cp, pgeino.Options{Fencing: true})
		if _, _, err := stores[i].Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stores[i].Set(ctx, id, []byte(`{"writer":`+string(rune('0'+i))+`}`))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		var fe *pgeino.FenceError
		switch {
		case err == nil && winner == -1:
			winner = i
		case err == nil:
			t.Fatalf("writers %d and %d both won", winner, i)
		case !errors.As(err, &fe):
			t.Fatalf("writer %d: undocumented error %v", i, err)
		}
	}
	if winner == -1 {
		t.Fatal("no writer won")
	}
	got, _, err := stores[winner].Get(ctx, id)
	if err != nil || string(got) != `{"writer": `+string(rune('0'+winner))+`}` {
		t.Fatalf("newest is %s (%v), the winner was %d", got, err, winner)
	}
}

// TestFencingThroughRunner: with Fencing, an adk.Runner that starts a new run under a checkpoint id
// another writer holds cannot overwrite that checkpoint: Eino reports the *FenceError in the event stream
// and the stored checkpoint stays the first writer's.
func TestFencingThroughRunner(t *testing.T) {
	ctx := context.Background()
	cp, _, _ := newCheckpointer(t, "postgres")
	const id = "adk-fenced"
	first := adk.NewRunner(ctx, adk.RunnerConfig{Agent: &draftAgent{interrupt: true},
		CheckPointStore: pgeino.New(cp, pgeino.Options{Fencing: true})})
	if _, interrupted, err := drain(first.Query(ctx, "first", adk.WithCheckPointID(id))); err != nil || !interrupted {
		t.Fatalf("first run: %v, %v", interrupted, err)
	}
	before, err := cp.Latest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	second := adk.NewRunner(ctx, adk.RunnerConfig{Agent: &draftAgent{interrupt: true},
		CheckPointStore: pgeino.New(cp, pgeino.Options{Fencing: true})})
	_, _, err = drain(second.Query(ctx, "second", adk.WithCheckPointID(id)))
	var fe *pgeino.FenceError
	if !errors.As(err, &fe) || !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("second run over the first one's checkpoint: %v", err)
	}
	after, err := cp.Latest(ctx, id)
	if err != nil || after.ID != before.ID {
		t.Fatalf("the checkpoint moved: %s -> %s (%v)", before.ID, after.ID, err)
	}
	// Unfenced, the same run overwrites (history keeps the first).
	third := adk.NewRunner(ctx, adk.RunnerConfig{Agent: &draftAgent{interrupt: true},
		CheckPointStore: pgeino.New(cp, pgeino.Options{})})
	if _, _, err := drain(third.Query(ctx, "third", adk.WithCheckPointID(id))); err != nil {
		t.Fatal(err)
	}
}

// TestFencingThroughGraph: two replicas resume the same interrupted graph. Both load the checkpoint at the
// start of their run; the first to interrupt again stores its checkpoint, the second gets a *FenceError
// from Invoke instead of overwriting it. The interleaving is forced with channels, not timing.
func TestFencingThroughGraph(t *testing.T) {
	ctx := context.Background()
	cp, _, _ := newCheckpointer(t, "pgx")
	const id = "graph-fenced"
	build := func() compose.Runnable[string, string] {
		r, err := buildGraphInterrupting(ctx, pgeino.New(cp, pgeino.Options{Fencing: true}), "enrich", "review")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := build().Invoke(ctx, graphInput, compose.WithCheckPointID(id)); !isInterrupt(err) {
		t.Fatalf("first run: %v", err)
	}
	head, err := cp.Latest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	// Replica c loads the checkpoint and stops inside enrich until replica b has resumed and stored.
	reached, release := make(chan struct{}), make(chan struct{})
	hook := func() { close(reached); <-release }
	cErr := make(chan error, 1)
	go func() {
		_, err := build().Invoke(context.WithValue(ctx, enrichHook{}, hook), "", compose.WithCheckPointID(id))
		cErr <- err
	}()
	select {
	case <-reached:
	case err := <-cErr:
		t.Fatalf("replica c ended before enrich: %v", err)
	}
	if _, err := build().Invoke(ctx, "", compose.WithCheckPointID(id)); !isInterrupt(err) {
		t.Fatalf("replica b: %v", err)
	}
	bHead, err := cp.Latest(ctx, id)
	if err != nil || bHead.ID == head.ID {
		t.Fatalf("replica b stored nothing: %v", err)
	}
	close(release)
	err = <-cErr
	var fe *pgeino.FenceError
	if !errors.As(err, &fe) || fe.Expected != head.ID || !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("replica c: want a *FenceError expecting %s, got %v", head.ID, err)
	}
	if now, err := cp.Latest(ctx, id); err != nil || now.ID != bHead.ID {
		t.Fatalf("replica c moved the thread: %v", err)
	}
}

func isInterrupt(err error) bool {
	_, ok := compose.ExtractInterruptInfo(err)
	return ok
}

// TestEnvelopeCountsAgainstMaxSnapshotBytes: the limit applies to what is stored, the envelope, so a
// binary payload may be at most about 3/4 of MaxSnapshotBytes; the error is pgcheckpoint's.
func TestEnvelopeCountsAgainstMaxSnapshotBytes(t *testing.T) {
	ctx := context.Background()
	s := pgeino.New(pgcheckpoint.NewMemory(pgcheckpoint.Options{MaxSnapshotBytes: 1000}), pgeino.Options{})
	fits, over := make([]byte, 700), make([]byte, 800) // envelopes of 997 and 1,129 bytes
	if err := s.Set(ctx, "fits", fits); err != nil {
		t.Fatalf("700 bytes: %v", err)
	}
	if err := s.Set(ctx, "over", over); !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge) {
		t.Fatalf("800 bytes: %v", err)
	}
}
