package pgcheckpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeySize is the length of every encryption key in bytes: AES-256.
const KeySize = 32

// Key is one encryption key and its id. The id is stored beside each ciphertext, so a reader knows
// which key opens it; the secret never leaves the process: a Key prints as "key <id>" whatever the
// format verb, so it cannot reach a log line, an error or a span by accident. Make one with NewKey.
type Key struct {
	id     string
	secret []byte
}

// NewKey returns the key id with the secret (KeySize bytes, copied). An id is 1 to 64 bytes of
// [A-Za-z0-9._-] and must name one secret for ever: a reader finds a row's key by its id alone.
// Anything else is ErrInvalidOptions.
func NewKey(id string, secret []byte) (Key, error) {
	if err := checkKeyID(id); err != nil {
		return Key{}, err
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %q is %d bytes, it must be %d (AES-256): %w", id, len(secret), KeySize, ErrInvalidOptions)
	}
	return Key{id: id, secret: bytes.Clone(secret)}, nil
}

// ID returns the key's id.
func (k Key) ID() string { return k.id }

// String returns "key <id>": never the secret.
func (k Key) String() string { return "key " + k.id }

// Format prints the key as String does for every verb (%v, %+v, %#v, %x, %d, ...), so no verb prints
// the secret.
func (k Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }

// checkKeyID enforces the key id rules: 1 to 64 bytes of [A-Za-z0-9._-].
func checkKeyID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("key id %q must be 1 to 64 bytes: %w", id, ErrInvalidOptions)
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("key id %q may hold only A-Z, a-z, 0-9, '.', '_' and '-': %w", id, ErrInvalidOptions)
		}
	}
	return nil
}

// KeyProvider supplies the keys of Options.Keys: the current one, which every new ciphertext is
// sealed with, and any key by its id, for reading what older keys sealed. A KMS-backed provider
// fetches or unwraps keys here (and caches them as it sees fit); KeyRing is the static one. Both
// methods are called for each write or read, concurrently. An error is passed on as it is, wrapped
// in ErrKeyMissing when it is not one already; it must not hold key material.
type KeyProvider interface {
	// CurrentKey returns the key new ciphertexts are sealed with.
	CurrentKey(ctx context.Context) (Key, error)
	// KeyByID returns the key with this id; an id it does not know is ErrKeyMissing.
	KeyByID(ctx context.Context, id string) (Key, error)
}

// KeyRing is a fixed set of keys: one current, for writes, and older ones, for reading rows they
// sealed until `pgcheckpoint rekey` has moved those rows to the current key. Safe for concurrent use.
type KeyRing struct {
	current Key
	byID    map[string]Key
	ids     []string // in the order given, the current one first
}

// NewKeyRing returns a ring whose current key is current, with older keys for reads. Two keys of one
// id, or a zero Key, are ErrInvalidOptions.
func NewKeyRing(current Key, older ...Key) (*KeyRing, error) {
	r := &KeyRing{current: current, byID: map[string]Key{}}
	for _, k := range append([]Key{current}, older...) {
		if k.id == "" {
			return nil, fmt.Errorf("a key ring holds a zero Key (make keys with NewKey): %w", ErrInvalidOptions)
		}
		if _, dup := r.byID[k.id]; dup {
			return nil, fmt.Errorf("the key ring holds key id %q twice: %w", k.id, ErrInvalidOptions)
		}
		r.byID[k.id] = k
		r.ids = append(r.ids, k.id)
	}
	return r, nil
}

// ParseKeyRing reads a key ring from text: keys separated by commas or line breaks, each "id:secret"
// with the secret in standard base64 (44 characters for 32 bytes), the current key first. Blank
// entries and lines starting with '#' are skipped. This is the format of PGCHECKPOINT_KEYS and of
// the CLI's --keys-file. Errors name the entry by its position and id, never its secret.
func ParseKeyRing(text string) (*KeyRing, error) {
	var keys []Key
	entries := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		id, secret, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("key ring entry %d is not id:base64-secret: %w", i+1, ErrInvalidOptions)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
		if err != nil {
			return nil, fmt.Errorf("key ring entry %d (key %q): the secret is not standard base64: %w", i+1, id, ErrInvalidOptions)
		}
		k, err := NewKey(strings.TrimSpace(id), raw)
		if err != nil {
			return nil, fmt.Errorf("key ring entry %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the key ring text holds no key: %w", ErrInvalidOptions)
	}
	return NewKeyRing(keys[0], keys[1:]...)
}

// CurrentKey implements KeyProvider.
func (r *KeyRing) CurrentKey(context.Context) (Key, error) { return r.current, nil }

// KeyByID implements KeyProvider.
func (r *KeyRing) KeyByID(_ context.Context, id string) (Key, error) {
	k, ok := r.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("the key ring has no key %q: %w", id, ErrKeyMissing)
	}
	return k, nil
}

// IDs returns the ring's key ids, the current one first.
func (r *KeyRing) IDs() []string { return append([]string(nil), r.ids...) }
