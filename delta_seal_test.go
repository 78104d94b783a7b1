package pgcheckpoint

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A sealed plan seals each new item, writes no chain hash, keeps a prefix only from a warm state, and
// sends what a plaintext plan sends otherwise.
func TestPlanDeltaSealed(t *testing.T) {
	t.Parallel()
	var sealedPos []int64
	seal := func(pos int64, elem []byte) []byte {
		sealedPos = append(sealedPos, pos)
		return []byte(`"sealed"`)
	}
	p1 := planDelta(&threadState{}, splitSnapshot([]byte(`{"m": [1, 2], "s": ["a"]}`)), seal)
	if !strings.Contains(string(p1.arrays), `"h":"00000000000000000000000000000000"`) || strings.Count(string(p1.items), `"sealed"`) != 3 {
		t.Fatalf("sealed plan: arrays %s, items %s; want zero hashes and three sealed items", p1.arrays, p1.items)
	}
	if want := []int64{0, 1, slotBase}; !slices.Equal(sealedPos, want) {
		t.Fatalf("items sealed at %v, want %v (each at its position)", sealedPos, want)
	}
	p1.next.head = "h1"
	p2 := planDelta(p1.next, splitSnapshot([]byte(`{"m": [1, 2, 3], "s": ["a"]}`)), seal)
	if p2.nItems != 1 {
		t.Errorf("a warm sealed append sends %d items, want 1", p2.nItems)
	}
	// Cold: a state as parseState reads it; even a plaintext head's real chain hash keeps nothing.
	plain := planDelta(p1.next, splitSnapshot([]byte(`{"m": [1, 2, 3], "s": ["a"]}`)), nil)
	plain.next.head = "h2"
	cold := &threadState{head: "h2", alloc: plain.next.alloc, arrays: map[string]*arrayState{}}
	for k, a := range plain.next.arrays {
		cold.arrays[k] = &arrayState{ranges: a.ranges, n: a.n, chain: a.chain}
	}
	if p := planDelta(cold, splitSnapshot([]byte(`{"m": [1, 2, 3, 4], "s": ["a"]}`)), seal); p.nItems != 5 {
		t.Errorf("a cold sealed put sends %d items, want all 5", p.nItems)
	}
	if p := planDelta(cold, splitSnapshot([]byte(`{"m": [1, 2, 3, 4], "s": ["a"]}`)), nil); p.nItems != 1 {
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
