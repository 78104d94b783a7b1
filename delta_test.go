package pgcheckpoint

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// rebuild is what a delta get returns for a plan made on an empty thread: the head with each spilled
// array put back from the planned items, in planned position order per slot.
func rebuild(t *testing.T, p deltaPlan) map[string]any {
	t.Helper()
	var head map[string]any
	if err := json.Unmarshal(p.head, &head); err != nil {
		t.Fatalf("head %s: %v", p.head, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(p.items, &items); err != nil {
		t.Fatalf("items %s: %v", p.items, err)
	}
	pos := map[int64]json.RawMessage{}
	var ps []int64
	if err := json.Unmarshal(bytes.ReplaceAll(bytes.ReplaceAll(p.pos, []byte("{"), []byte("[")), []byte("}"), []byte("]")), &ps); err != nil {
		t.Fatalf("positions %s: %v", p.pos, err)
	}
	for i, q := range ps {
		pos[q] = items[i]
	}
	for key, a := range p.next.arrays {
		arr := []any{}
		for _, r := range a.ranges {
			for q := r[0]; q < r[1]; q++ {
				var v any
				if err := json.Unmarshal(pos[q], &v); err != nil {
					t.Fatalf("item %d: %v", q, err)
				}
				arr = append(arr, v)
			}
		}
		head[key] = arr
	}
	return head
}

func TestSplitSnapshotRebuilds(t *testing.T) {
	t.Parallel()
	docs := []string{
		`{}`,
		`{"a": []}`,
		` { "a" : [ 1 , "x]" , {"b": [2, "\"]"]}, [3, [4]] ] , "n": null, "s": "\\", "o": {"x": [1]} } `,
		`{"dup": [1], "dup": [2, 3], "k\u0061": ["escaped key"], "e": "\u00e9\ud83c\udf89"}`,
		`{"m": [true, false, null, -1.5e3, 0, "", {}], "v": 1}`,
	}
	paths, _ := filepath.Glob("testdata/agentsnapshot/*.json")
	more, _ := filepath.Glob("testdata/fixtures/*.json")
	for _, p := range append(paths, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	for _, doc := range docs {
		if _, err := inspectSnapshot([]byte(doc), 0); err != nil {
			continue // not a snapshot pgcheckpoint stores
		}
		p := planDelta(&threadState{}, splitSnapshot([]byte(doc)), nil)
		var want map[string]any
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		if got := rebuild(t, p); !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s: rebuilt %v, want %v", doc, got, want)
		}
	}
}

// A warm plan sends only the new elements and keeps an append-only array in one range; an edit keeps
// the unchanged prefix and appends the rest under new positions.
func TestPlanDeltaAppendsAndRewrites(t *testing.T) {
	t.Parallel()
	st0 := &threadState{}
	p1 := planDelta(st0, splitSnapshot([]byte(`{"m": [1, 2], "s": ["a"]}`)), nil)
	p1.next.head = "h1"
	p2 := planDelta(p1.next, splitSnapshot([]byte(`{"m": [1, 2, 3], "s": ["a", "b"]}`)), nil)
	if string(p2.items) != `[3,"b"]` && string(p2.items) != `["b",3]` {
		t.Errorf("appending sends %s, want only the new elements", p2.items)
	}
	if r := p2.next.arrays["m"].ranges; len(r) != 1 || r[0][1]-r[0][0] != 3 {
		t.Errorf("m's ranges after an append = %v, want one range of 3", r)
	}
	p3 := planDelta(p2.next, splitSnapshot([]byte(`{"m": [1, 9, 3], "s": ["a", "b"]}`)), nil)
	if string(p3.items) != `[9,3]` {
		t.Errorf("an edit of element 1 sends %s, want [9,3] (the tail after the unchanged prefix)", p3.items)
	}
	m := p3.next.arrays["m"].ranges
	if len(m) != 2 || m[0] != [2]int64{0, 1} || m[1][0] != 3 {
		t.Errorf("m's ranges after the edit = %v, want [0,1) then new positions from 3", m)
	}
	// A cold writer that knows only the server's state recognises the prefix by its chain hash.
	cold := &threadState{head: "h3", alloc: p3.next.alloc, arrays: map[string]*arrayState{}}
	for k, a := range p3.next.arrays {
		cold.arrays[k] = &arrayState{ranges: a.ranges, n: a.n, chain: a.chain}
	}
	p4 := planDelta(cold, splitSnapshot([]byte(`{"m": [1, 9, 3, 4], "s": ["a", "b"]}`)), nil)
	if string(p4.items) != `[4]` {
		t.Errorf("a cold append sends %s, want [4]", p4.items)
	}
}
