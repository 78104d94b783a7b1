package pgcheckpoint

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ziroagent/pgcheckpoint/internal/jsonscan"
)

// Encryption at rest (docs/security.md). With Options.Keys every snapshot a Checkpointer writes is
// sealed with AES-256-GCM under the key ring's current key, with a fresh random 96-bit nonce, and
// stored as an envelope: a JSON object that keeps the table's JSONB column (and the TypeScript
// package's schema) as it is:
//
//	{"$": "enc1", "d": "<base64 of nonce || ciphertext || tag>", "k": "<key id>"}
//
// The associated data binds each ciphertext to where it is stored (binding): the table, the kind of
// row, the thread, and the checkpoint id (or, for a delta table's item, its position), so a ciphertext
// moved or copied to any other row fails to open (ErrDecryptFailed). The keys are JSONB's own order,
// so the envelope reads back byte for byte as written, and "$" is a key no other member sorts before:
// a reader tells an envelope from a plaintext snapshot by its first member.

// envelopeMarker is the value of an envelope's "$" member: the format's name and version.
const envelopeMarker = "enc1"

// Kinds of rows a binding names.
const (
	bindRow  = 's' // a full table's row: the whole snapshot
	bindHead = 'h' // a delta table's head: the snapshot without its spilled arrays
	bindItem = 'i' // a delta table's item: one array element
)

// binding is where a ciphertext belongs: its associated data. at is the checkpoint id (rows, heads) or
// the item's position in decimal (items); extra is, for a head, the composition of its arrays (see
// headComposition), so a head whose ranges were changed no longer opens.
type binding struct {
	table  string // "schema.table" as the user names it (a delta table's view)
	kind   byte
	thread string
	at     string
	extra  string
}

// aad is the binding as associated data for the key keyID: a fixed prefix, then each field with its
// length before it, so no two bindings have the same bytes.
func (b binding) aad(keyID string) []byte {
	out := make([]byte, 0, 32+len(b.table)+len(b.thread)+len(b.at)+len(b.extra)+len(keyID))
	out = append(out, "pgcheckpoint/enc1"...)
	out = append(out, b.kind)
	for _, f := range []string{b.table, b.thread, b.at, b.extra, keyID} {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}

// describe names the row in errors (never the key material): "checkpoint <id>" or "item <pos>".
func (b binding) describe() string {
	if b.kind == bindItem {
		return "item " + b.at
	}
	return "checkpoint " + b.at
}

// sealer seals and opens a table's snapshots with the keys of a KeyProvider. It keeps the AEAD of each
// key it used, rebuilt when the provider hands out another secret under that id.
type sealer struct {
	keys  KeyProvider
	table string

	mu    sync.Mutex
	aeads map[string]keyAEAD
}

type keyAEAD struct {
	secret []byte
	aead   cipher.AEAD
}

// newSealer returns the sealer of table for keys, or nil when keys is nil (no encryption).
func newSealer(keys KeyProvider, table string) *sealer {
	if keys == nil {
		return nil
	}
	return &sealer{keys: keys, table: table, aeads: map[string]keyAEAD{}}
}

// aead returns the AEAD of k: AES-256-GCM with random nonces (crypto/cipher prepends a fresh 96-bit
// nonce to each ciphertext and reads it back on Open).
func (s *sealer) aead(k Key) (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.aeads[k.id]; ok && bytes.Equal(a.secret, k.secret) {
		return a.aead, nil
	}
	block, err := aes.NewCipher(k.secret)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", k, ErrInvalidOptions) // only a zero Key gets here
	}
	a, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	s.aeads[k.id] = keyAEAD{secret: k.secret, aead: a}
	return a, nil
}

// current returns the provider's current key and its AEAD.
func (s *sealer) current(ctx context.Context) (Key, cipher.AEAD, error) {
	k, err := s.keys.CurrentKey(ctx)
	if err != nil {
		return Key{}, nil, keyError(err, "the current key")
	}
	if k.id == "" {
		return Key{}, nil, fmt.Errorf("the key provider's current key is a zero Key: %w", ErrKeyMissing)
	}
	a, err := s.aead(k)
	return k, a, err
}

// keyError wraps a provider's error in ErrKeyMissing unless it is one already.
func keyError(err error, what string) error {
	if errors.Is(err, ErrKeyMissing) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", what, ErrKeyMissing, err)
}

// chainKeyOf derives from k the key of a delta head's chain hashes (see chainer): HMAC-SHA256 of a fixed
// label under k's secret, so the hashes reveal nothing without the key and differ per key.
func chainKeyOf(k Key) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("pgcheckpoint/chain/v1"))
	return m.Sum(nil)
}

// seal returns the envelope of plain, bound to b, under the current key.
func (s *sealer) seal(ctx context.Context, b binding, plain []byte) ([]byte, error) {
	k, a, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return sealWith(k, a, b, plain), nil
}

// sealWith is seal with a key and AEAD in hand (a put seals many items with one).
func sealWith(k Key, a cipher.AEAD, b binding, plain []byte) []byte {
	ct := a.Seal(nil, nil, plain, b.aad(k.id))
	out := make([]byte, 0, len(`{"$":"enc1","d":"","k":""}`)+base64.StdEncoding.EncodedLen(len(ct))+len(k.id))
	out = append(out, `{"$":"`+envelopeMarker+`","d":"`...)
	out = base64.StdEncoding.AppendEncode(out, ct)
	out = append(out, `","k":"`...)
	out = append(out, k.id...)
	return append(out, `"}`...)
}

// open returns the plaintext of env, an envelope (see isEnvelope) bound to b. A malformed envelope or
// one that does not authenticate is ErrDecryptFailed; a key the provider does not have,
// ErrKeyMissing.
func (s *sealer) open(ctx context.Context, b binding, env []byte) ([]byte, error) {
	keyID, ct, err := parseEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.describe(), err)
	}
	k, err := s.keys.KeyByID(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.describe(), keyError(err, "key "+keyID))
	}
	a, err := s.aead(k)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, nil, ct, b.aad(k.id))
	if err != nil {
		return nil, fmt.Errorf("%s of thread %q in %s, sealed with key %q: it does not authenticate here "+
			"(altered, moved or copied from another row, or sealed under another secret of that id): %w",
			b.describe(), b.thread, b.table, keyID, ErrDecryptFailed)
	}
	return plain, nil
}

// isEnvelope reports whether the JSON object b is an envelope: its first member's key is "$". (JSONB
// sorts keys by length and then bytes, so "$" is first wherever it is; a plaintext snapshot with a
// member "$" is an envelope to a reader with keys, and fails to open.)
func isEnvelope(b []byte) bool {
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = jsonscan.SkipSpace(b, i+1)
	return bytes.HasPrefix(b[i:], []byte(`"$"`))
}

// parseEnvelope reads an envelope strictly: exactly the members "$" (envelopeMarker), "d" (standard
// base64) and "k" (a key id), in that order, with any JSON whitespace between tokens. Base64 and key
// ids need no escapes, so no member is decoded as JSON. Anything else is ErrDecryptFailed.
func parseEnvelope(b []byte) (keyID string, ct []byte, err error) {
	p := envelopeParser{b: b}
	p.expect("{")
	marker := p.member(`"$"`, true)
	d := p.member(`"d"`, true)
	k := p.member(`"k"`, false)
	p.expect("}")
	if p.i = jsonscan.SkipSpace(b, p.i); p.bad || p.i != len(b) || string(marker) != envelopeMarker {
		return "", nil, fmt.Errorf("the stored value is not a well-formed envelope: %w", ErrDecryptFailed)
	}
	if checkKeyID(string(k)) != nil {
		return "", nil, fmt.Errorf("the envelope names no valid key id: %w", ErrDecryptFailed)
	}
	ct, derr := base64.StdEncoding.AppendDecode(nil, d)
	if derr != nil {
		return "", nil, fmt.Errorf("the envelope's ciphertext is not base64: %w", ErrDecryptFailed)
	}
	return string(k), ct, nil
}

// envelopeParser reads the tokens of an envelope; bad records that one was not as expected.
type envelopeParser struct {
	b   []byte
	i   int
	bad bool
}

func (p *envelopeParser) expect(tok string) {
	p.i = jsonscan.SkipSpace(p.b, p.i)
	if !bytes.HasPrefix(p.b[p.i:], []byte(tok)) {
		p.bad = true
		return
	}
	p.i += len(tok)
}

// member reads `key: "value"` (and a ',' after it when comma) and returns the value's bytes, which
// must hold no quote or backslash.
func (p *envelopeParser) member(key string, comma bool) []byte {
	p.expect(key)
	p.expect(":")
	p.expect(`"`)
	if p.bad {
		return nil
	}
	end := bytes.IndexAny(p.b[p.i:], `"\`)
	if end < 0 || p.b[p.i+end] != '"' {
		p.bad = true
		return nil
	}
	v := p.b[p.i : p.i+end]
	p.i += end + 1
	if comma {
		p.expect(",")
	}
	return v
}
