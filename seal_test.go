package pgcheckpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testKey is a key whose secret is id's bytes repeated: distinct per id, fixed across runs.
func testKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte(id), KeySize)[:KeySize])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRing(t testing.TB, current Key, older ...Key) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(current, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSealBinding shows that an envelope opens only where it was sealed: every field of the binding,
// and the key id, is part of the associated data.
func TestSealBinding(t *testing.T) {
	ctx := context.Background()
	s := newSealer(testRing(t, testKey(t, "k1")), "public.t")
	at := binding{table: "public.t", kind: bindRow, thread: "th", at: "0190-id"}
	plain := []byte(`{"version":1,"messages":["secret words"]}`)
	env, err := s.seal(ctx, at, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !isEnvelope(env) || bytes.Contains(env, []byte("secret")) {
		t.Fatalf("envelope %s", env)
	}
	got, err := s.open(ctx, at, env)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open = %s, %v", got, err)
	}
	again, _ := s.seal(ctx, at, plain)
	if bytes.Equal(again, env) {
		t.Fatal("two seals of one snapshot are equal: the nonce is not fresh")
	}
	elsewhere := map[string]binding{
		"other table":  {table: "public.u", kind: bindRow, thread: "th", at: "0190-id"},
		"other kind":   {table: "public.t", kind: bindHead, thread: "th", at: "0190-id"},
		"other thread": {table: "public.t", kind: bindRow, thread: "th2", at: "0190-id"},
		"other id":     {table: "public.t", kind: bindRow, thread: "th", at: "0190-ie"},
		"extra":        {table: "public.t", kind: bindRow, thread: "th", at: "0190-id", extra: "x"},
		// Length prefixes keep field boundaries: moving a byte from thread to at is another binding.
		"shifted": {table: "public.t", kind: bindRow, thread: "t", at: "h0190-id"},
	}
	for name, b := range elsewhere {
		if _, err := s.open(ctx, b, env); !errors.Is(err, ErrDecryptFailed) {
			t.Errorf("%s: open = %v, want ErrDecryptFailed", name, err)
		}
	}
}

// TestOpenRefuses shows every malformed or altered envelope is ErrDecryptFailed, and a key the ring
// lacks is ErrKeyMissing.
func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	k1 := testKey(t, "k1")
	s := newSealer(testRing(t, k1), "public.t")
	at := binding{table: "public.t", kind: bindRow, thread: "th", at: "id"}
	env, _ := s.seal(ctx, at, []byte(`{"a":1}`))
	// One base64 character of the ciphertext changed (the tenth: never one of the padding bits).
	flipped := bytes.Clone(env)
	i := bytes.Index(env, []byte(`"d":"`)) + len(`"d":"`) + 10
	flipped[i] = 'A'
	if env[i] == 'A' {
		flipped[i] = 'B'
	}
	cases := map[string][]byte{
		"flipped":       flipped,
		"truncated":     append(bytes.Clone(env[:len(env)-len(`","k":"k1"}`)-4]), `","k":"k1"}`...),
		"cut":           env[:len(env)-3],
		"marker":        bytes.Replace(env, []byte(`"enc1"`), []byte(`"enc2"`), 1),
		"extra member":  bytes.Replace(env, []byte(`"}`), []byte(`","x":"1"}`), 1),
		"escaped":       bytes.Replace(env, []byte(`"k":"k1"`), []byte(`"k":"k\u0031"`), 1),
		"not base64":    bytes.Replace(env, []byte(`"d":"`), []byte(`"d":"*`), 1),
		"other key id":  bytes.Replace(env, []byte(`"k":"k1"`), []byte(`"k":"k2"`), 1),
		"bad key id":    bytes.Replace(env, []byte(`"k":"k1"`), []byte(`"k":"k 1"`), 1),
		"trailing junk": append(bytes.Clone(env), 'x'),
	}
	for name, v := range cases {
		_, err := s.open(ctx, at, v)
		want := ErrDecryptFailed
		if name == "other key id" {
			want = ErrKeyMissing
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: open(%s) = %v, want %v", name, v, err, want)
		}
	}
	// The same id with another secret: the ciphertext does not authenticate.
	impostor, _ := NewKey("k1", bytes.Repeat([]byte{7}, KeySize))
	if _, err := newSealer(testRing(t, impostor), "public.t").open(ctx, at, env); !errors.Is(err, ErrDecryptFailed) {
		t.Errorf("other secret under k1: %v", err)
	}
	// JSONB's own spacing reads as the same envelope.
	spaced := []byte(strings.NewReplacer(`":"`, `": "`, `","`, `", "`).Replace(string(env)))
	if _, err := s.open(ctx, at, spaced); err != nil {
		t.Errorf("JSONB-spaced envelope %s: %v", spaced, err)
	}
}

// TestKeyRedacted shows no format verb prints a key's secret, and errors name ids only.
func TestKeyRedacted(t *testing.T) {
	secret := bytes.Repeat([]byte{0xAB}, KeySize)
	k, err := NewKey("prod-2026", secret)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %x %X %d %q %v", k, k, k, k, k, k, k, k, []Key{k})
	for _, leak := range []string{"ab", "AB", "171", base64.StdEncoding.EncodeToString(secret)[:8]} {
		if strings.Contains(strings.ReplaceAll(out, "prod-2026", ""), leak) {
			t.Fatalf("formatted key leaks %q: %s", leak, out)
		}
	}
	_, err = ParseKeyRing("prod-2026:" + base64.StdEncoding.EncodeToString(secret[:31]))
	if !errors.Is(err, ErrInvalidOptions) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(secret[:31])[:8]) {
		t.Fatalf("ParseKeyRing of a short secret: %v", err)
	}
}

// TestParseKeyRing covers the ring's text form.
func TestParseKeyRing(t *testing.T) {
	b := func(c byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, KeySize)) }
	r, err := ParseKeyRing("# keys\nk2:" + b(2) + "\n\nk1 : " + b(1) + ",k0:" + b(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.IDs(), ","); got != "k2,k1,k0" {
		t.Fatalf("IDs = %s", got)
	}
	cur, _ := r.CurrentKey(context.Background())
	if cur.ID() != "k2" {
		t.Fatalf("current = %v", cur)
	}
	if _, err := r.KeyByID(context.Background(), "k9"); !errors.Is(err, ErrKeyMissing) {
		t.Fatalf("KeyByID(k9) = %v", err)
	}
	for _, bad := range []string{"", "# nothing", "k1", "k1:" + b(1) + ",k1:" + b(2), "bad id:" + b(1), "k1:***"} {
		if _, err := ParseKeyRing(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ParseKeyRing(%q) = %v, want ErrInvalidOptions", bad, err)
		}
	}
}

// TestMemoryEncryption shows Memory keeps the contract with keys: snapshots are held sealed, forks
// re-bind, and a ring without the key fails reads with ErrKeyMissing.
func TestMemoryEncryption(t *testing.T) {
	ctx := context.Background()
	ring := testRing(t, testKey(t, "k1"))
	m := NewMemory(Options{Keys: ring})
	id, err := m.Put(ctx, "a", []byte(`{"secret":"words"}`))
	if err != nil {
		t.Fatal(err)
	}
	if held := m.threads["a"][0].Snapshot; !isEnvelope(held) || bytes.Contains(held, []byte("words")) {
		t.Fatalf("Memory holds %s", held)
	}
	if cp, err := m.Get(ctx, "a", id); err != nil || string(cp.Snapshot) != `{"secret":"words"}` {
		t.Fatalf("Get = %s, %v", cp.Snapshot, err)
	}
	if _, err := m.Fork(ctx, "a", id, "b", ForkOptions{}); err != nil {
		t.Fatal(err)
	}
	if cp, err := m.Latest(ctx, "b"); err != nil || string(cp.Snapshot) != `{"secret":"words"}` {
		t.Fatalf("Latest(fork) = %s, %v", cp.Snapshot, err)
	}
	if bytes.Equal(m.threads["a"][0].Snapshot, m.threads["b"][0].Snapshot) {
		t.Fatal("the fork's copy has the source's ciphertext: it was not re-bound")
	}
	// A ciphertext moved to another thread does not open there.
	m.threads["b"][0].Snapshot = m.threads["a"][0].Snapshot
	if _, err := m.Latest(ctx, "b"); !errors.Is(err, ErrDecryptFailed) {
		t.Fatalf("moved ciphertext: %v", err)
	}
	m.seal = newSealer(testRing(t, testKey(t, "k2")), memoryTable)
	if _, err := m.Latest(ctx, "a"); !errors.Is(err, ErrKeyMissing) {
		t.Fatalf("ring without k1: %v", err)
	}
}
