package pgcheckpoint

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// A sealed plan seals each new item and keys its chain hashes: a warm state keeps its prefix, a cold
// one keeps it only when its hash was made under the same key (never a plaintext head's), and the
// stored hash is not the plain one.
func TestPlanDeltaSealed(t *testing.T) {
	t.Parallel()
	var sealedPos []int64
	sealAs := func(id string) *planSeal {
		return &planSeal{
			item: func(pos int64, elem []byte) []byte {
				sealedPos = append(sealedPos, pos)
				return []byte(`"sealed"`)
			},
			chain: chainer{id: id, key: []byte("chain key of " + id)},
		}
	}
	seal := sealAs("k1")
	p1 := planDelta(&threadState{}, splitSnapshot([]byte(`{"m": [1, 2], "s": ["a"]}`)), seal)
	plain1 := planDelta(&threadState{}, splitSnapshot([]byte(`{"m": [1, 2], "s": ["a"]}`)), nil)
	plainHash := hex.EncodeToString(plain1.next.arrays["m"].chain[:])
	if !strings.Contains(string(p1.arrays), `"h":"k1:`) || strings.Contains(string(p1.arrays), plainHash) || strings.Count(string(p1.items), `"sealed"`) != 3 {
		t.Fatalf("sealed plan: arrays %s, items %s; want keyed hashes and three sealed items", p1.arrays, p1.items)
	}
	if want := []int64{0, 1, slotBase}; !slices.Equal(sealedPos, want) {
		t.Fatalf("items sealed at %v, want %v (each at its position)", sealedPos, want)
	}
	p1.next.head = "h1"
	p2 := planDelta(p1.next, splitSnapshot([]byte(`{"m": [1, 2, 3], "s": ["a"]}`)), seal)
	if p2.nItems != 1 {
		t.Errorf("a warm sealed append sends %d items, want 1", p2.nItems)
	}
	// Cold: states as parseState reads them from the heads' arrays and alloc columns.
	cold := func(p deltaPlan) *threadState {
		st, err := parseState("h", p.arrays, p.alloc)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	next := splitSnapshot([]byte(`{"m": [1, 2, 3, 4], "s": ["a"]}`))
	if p := planDelta(cold(p2), next, seal); p.nItems != 1 {
		t.Errorf("a cold sealed put after a head hashed under its key sends %d items, want 1", p.nItems)
	}
	if p := planDelta(cold(p2), next, sealAs("k2")); p.nItems != 5 {
		t.Errorf("a cold sealed put under another key sends %d items, want all 5", p.nItems)
	}
	plain2 := planDelta(plain1.next, splitSnapshot([]byte(`{"m": [1, 2, 3], "s": ["a"]}`)), nil)
	if p := planDelta(cold(plain2), next, seal); p.nItems != 5 {
		t.Errorf("a cold sealed put after a plaintext head sends %d items, want all 5 (no plaintext item kept)", p.nItems)
	}
	if p := planDelta(cold(plain2), next, nil); p.nItems != 1 {
		t.Errorf("a cold plaintext put sends %d items, want 1", p.nItems)
	}
}

// checkItemPositions accepts exactly the positions of the ranges, each once.
func TestCheckItemPositions(t *testing.T) {
	t.Parallel()
	arrays := []byte(`{"m": {"s": 0, "r": [[0, 2], [5, 6]], "n": 3}, "t": {"s": 1, "r": [[1099511627776, 1099511627777]], "n": 1}}`)
	refs := func(pos ...int64) []itemRef {
		var out []itemRef
		for _, p := range pos {
			out = append(out, itemRef{pos: p})
		}
		return out
	}
	if err := checkItemPositions(arrays, refs(0, 1, 5, 1099511627776)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]int64{{0, 1, 5}, {0, 1, 1, 5, 1099511627776}, {0, 1, 5, 6, 1099511627776}, {0, 5, 1099511627776}, nil} {
		if err := checkItemPositions(arrays, refs(bad...)); !errors.Is(err, ErrDecryptFailed) {
			t.Errorf("items %v: %v, want ErrDecryptFailed", bad, err)
		}
	}
}
