package eino_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudwego/eino/adk"
	pgeino "github.com/ziroagent/pgcheckpoint/adapters/eino"
)

// captureStore keeps what Eino hands a store, to measure real payloads.
type captureStore struct{ b []byte }

func (c *captureStore) Get(context.Context, string) ([]byte, bool, error) {
	return c.b, c.b != nil, nil
}
func (c *captureStore) Set(_ context.Context, _ string, b []byte) error {
	c.b = append([]byte(nil), b...)
	return nil
}

// costPayloads are the binary payloads whose envelope cost docs/frameworks.md reports: a real adk.Runner
// checkpoint, gob of a text-heavy conversation (compressible), and random bytes (incompressible).
func costPayloads(t testing.TB) []struct {
	name string
	b    []byte
} {
	ctx := context.Background()
	capture := &captureStore{}
	runner := adk.NewRunner(ctx, adk.RunnerConfig{Agent: &draftAgent{interrupt: true}, CheckPointStore: capture})
	if _, interrupted, err := drain(runner.Query(ctx, adkInput, adk.WithCheckPointID("m"))); err != nil || !interrupted {
		t.Fatalf("adk run: %v %v", interrupted, err)
	}
	var conv bytes.Buffer
	turns := make([]string, 400)
	for i := range turns {
		turns[i] = fmt.Sprintf("turn %d: %s", i, strings.Repeat("the agent explains the plan step by step. ", 4))
	}
	if err := gob.NewEncoder(&conv).Encode(turns); err != nil {
		t.Fatal(err)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []struct {
		name string
		b    []byte
	}{
		{"adk.Runner checkpoint (gob)", capture.b},
		{"gob conversation, 400 turns", conv.Bytes()},
		{"random 1 KiB", random(1 << 10)},
		{"random 64 KiB", random(64 << 10)},
		{"random 1 MiB", random(1 << 20)},
	}
}

// TestEnvelopeCost measures what the base64 envelope costs against a binary column (bytea), the
// alternative that would change the shared schema: bytes sent, and bytes PostgreSQL keeps for the value
// (pg_column_size, after TOAST compression). It fails if the envelope inflates by more than a third plus
// its 64-byte frame. Run with -v to see the figures.
func TestEnvelopeCost(t *testing.T) {
	ctx := context.Background()
	cp, db, schemaName := newCheckpointer(t, "pgx")
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+schemaName+".side (id text PRIMARY KEY, b bytea NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	store := pgeino.New(cp, pgeino.Options{})
	t.Logf("%-30s %10s %10s %9s %12s %12s", "payload", "raw", "envelope", "inflation", "jsonb kept", "bytea kept")
	for _, p := range costPayloads(t) {
		if err := store.Set(ctx, p.name, p.b); err != nil {
			t.Fatal(err)
		}
		if got, _, err := store.Get(ctx, p.name); err != nil || !bytes.Equal(got, p.b) {
			t.Fatalf("%s: round trip: %v", p.name, err)
		}
		env, _, _ := pgeino.Encode(p.b, false)
		if _, err := db.ExecContext(ctx, "INSERT INTO "+schemaName+".side VALUES ($1, $2)", p.name, p.b); err != nil {
			t.Fatal(err)
		}
		var jsonbKept, byteaKept int
		if err := db.QueryRowContext(ctx, "SELECT pg_column_size(snapshot) FROM "+schemaName+".ziro_checkpoints WHERE thread_id = $1",
			p.name).Scan(&jsonbKept); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT pg_column_size(b) FROM "+schemaName+".side WHERE id = $1", p.name).Scan(&byteaKept); err != nil {
			t.Fatal(err)
		}
		inflation := float64(len(env)) / float64(len(p.b))
		t.Logf("%-30s %10d %10d %8.3fx %12d %12d", p.name, len(p.b), len(env), inflation, jsonbKept, byteaKept)
		if len(env) > (len(p.b)+2)/3*4+64 {
			t.Errorf("%s: envelope %d bytes for %d", p.name, len(env), len(p.b))
		}
	}
}

// BenchmarkSetGet times a Set and a Get through PostgreSQL for each payload (enveloped), and for a JSON
// object of the same length stored as is, the cost without an envelope:
//
//	go test -run '^$' -bench SetGet -benchtime 200x ./adapters/eino
func BenchmarkSetGet(b *testing.B) {
	ctx := context.Background()
	cp, _, _ := newCheckpointer(b, "pgx")
	store := pgeino.New(cp, pgeino.Options{})
	for _, p := range costPayloads(b) {
		same := []byte(`{"data":"` + strings.Repeat("x", len(p.b)-11) + `"}`)
		for _, c := range []struct {
			kind string
			b    []byte
		}{{"envelope", p.b}, {"json", same}} {
			b.Run(p.name+"/"+c.kind, func(b *testing.B) {
				b.SetBytes(int64(len(c.b)))
				for i := 0; b.Loop(); i++ {
					id := fmt.Sprintf("%s-%s-%d", p.name, c.kind, i%20)
					if err := store.Set(ctx, id, c.b); err != nil {
						b.Fatal(err)
					}
					if _, _, err := store.Get(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEncodeDecode is the CPU cost of the envelope alone, without the database.
func BenchmarkEncodeDecode(b *testing.B) {
	for _, p := range costPayloads(b) {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(p.b)))
			for b.Loop() {
				doc, _, _ := pgeino.Encode(p.b, false)
				if _, err := pgeino.Decode(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
