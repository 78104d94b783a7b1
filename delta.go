package pgcheckpoint

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ziroagent/pgcheckpoint/internal/jsonscan"
)

// Storage is how a table stores its snapshots (docs/storage.md). The zero value is StorageFull.
type Storage int

const (
	// StorageFull stores every snapshot whole in one row: the layout the TypeScript package shares.
	StorageFull Storage = iota
	// StorageDelta stores each element of a snapshot's top-level arrays once, in <table>_items, and per
	// checkpoint only the rest of the snapshot and which items it holds, in <table>_heads; a view named
	// <table> rebuilds the full layout's columns for readers such as the TypeScript package.
	StorageDelta
)

// String returns "full" or "delta".
func (s Storage) String() string {
	switch s {
	case StorageFull:
		return "full"
	case StorageDelta:
		return "delta"
	}
	return "Storage(" + strconv.Itoa(int(s)) + ")"
}

// ParseStorage returns the storage a name stands for: "full" (or "") and "delta". Anything else is
// ErrInvalidOptions.
func ParseStorage(name string) (Storage, error) {
	switch name {
	case "", "full":
		return StorageFull, nil
	case "delta":
		return StorageDelta, nil
	}
	return 0, fail(OpNew, "", "", fmt.Errorf("unknown storage %q (want \"full\" or \"delta\"): %w", name, ErrInvalidOptions))
}

// The derived names of a delta table: <table>_heads and <table>_items next to the view <table>.
const (
	headsSuffix = "_heads"
	itemsSuffix = "_items"
)

// delta is what a Checkpointer of a delta table has beyond the full layout's machinery, which it runs
// on the heads table (c.names and c.q name <table>_heads: seq, locks, renumbering, list, threads and
// prune statements are the full layout's).
type delta struct {
	view  names // the view <table>, as the user named it
	items string
	q     deltaStatements
	cache *threadCache
	// modeOK: the catalog showed a delta table once (shared with WithTx copies); checked before the
	// first operation.
	modeOK *atomic.Bool
}

// newDelta derives the names of a delta table, checks them as New checks the full table's, and
// returns the heads table's names (the Checkpointer's own) and the delta part.
func newDelta(schema, table string, f dialectFacts) (names, *delta, error) {
	view, err := newNames(schema, table)
	if err != nil {
		return names{}, nil, err
	}
	heads, err := newNames(schema, table+headsSuffix)
	if err != nil {
		return names{}, nil, fmt.Errorf("a delta table's name is at most %d bytes (its heads table's index %q): %w",
			maxIdentifierBytes-len(headsSuffix+seqIndexSuffix), table+headsSuffix+seqIndexSuffix, ErrInvalidIdentifier)
	}
	// The retention policy is the table's (named for the view), not the heads table's.
	heads.policy, heads.rawPolicy = view.policy, view.rawPolicy
	items := quoteIdent(schema) + "." + quoteIdent(table+itemsSuffix)
	d := &delta{view: view, items: items, cache: newThreadCache(defaultCachedThreads), modeOK: new(atomic.Bool)}
	d.q = newDeltaStatements(heads, items, view.table, f)
	return heads, d, nil
}

// member is one top-level member of a snapshot: its key as written (a JSON string), its value, and for
// an array value that is spilled, its elements.
type member struct {
	rawKey, value []byte
	key           string
	elems         [][]byte
	spill         bool
}

// splitSnapshot reads the top-level members of b, a snapshot inspectSnapshot accepted (a valid JSON
// object), and marks the arrays that go to the items table: every array whose key occurs once (with a
// duplicate key, JSONB keeps the last value; such members stay in the head, where JSONB does that).
func splitSnapshot(b []byte) []member {
	var out []member
	i := jsonscan.SkipSpace(b, 0) + 1 // past '{'
	count := map[string]int{}
	for {
		i = jsonscan.SkipSpace(b, i)
		if b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i = jsonscan.SkipSpace(b, i+1)
		}
		kEnd := skipString(b, i)
		m := member{rawKey: b[i:kEnd]}
		m.key = decodeKey(m.rawKey)
		i = jsonscan.SkipSpace(b, kEnd)
		i = jsonscan.SkipSpace(b, i+1) // past ':'
		vEnd := skipValue(b, i)
		m.value = b[i:vEnd]
		if b[i] == '[' {
			m.elems = arrayElems(m.value)
			m.spill = true
		}
		count[m.key]++
		out = append(out, m)
		i = vEnd
	}
	for k := range out {
		if count[out[k].key] > 1 {
			out[k].spill = false
		}
	}
	return out
}

// decodeKey returns the string a JSON string literal stands for.
func decodeKey(raw []byte) string {
	for _, c := range raw {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(raw, &s) // valid: the scanner accepted it
			return s
		}
	}
	return string(raw[1 : len(raw)-1])
}

// arrayElems returns the elements of a JSON array (valid JSON), as written.
func arrayElems(a []byte) [][]byte {
	var out [][]byte
	i := jsonscan.SkipSpace(a, 1)
	for a[i] != ']' {
		end := skipValue(a, i)
		out = append(out, a[i:end])
		i = jsonscan.SkipSpace(a, end)
		if a[i] == ',' {
			i = jsonscan.SkipSpace(a, i+1)
		}
	}
	return out
}

// skipString returns the index after the JSON string starting at b[i] (valid JSON).
func skipString(b []byte, i int) int {
	i++
	for {
		j := i
		for b[j] != '"' {
			j++
		}
		k := j - 1
		for k >= i && b[k] == '\\' {
			k--
		}
		if (j-1-k)%2 == 0 {
			return j + 1
		}
		i = j + 1
	}
}

// skipValue returns the index after the JSON value starting at b[i] (valid JSON).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// chainHash identifies an array's prefix across processes: chain(i) = H(chain(i-1) || element i), cut
// to 16 bytes, from sixteen zero bytes. A head stores it for each array, so a writer that did not write
// the head (a new process, another writer moved the thread) can tell whether its snapshot's array starts
// with what the head holds. H is SHA-256 for plaintext heads; a sealed put keys it (see chainer), since a
// plain hash of plaintext elements would let anyone who guesses an array's content confirm the guess.
type chainHash [16]byte

// chainer computes chain hashes: SHA-256 when key is nil, else HMAC-SHA256 under key, a key derived
// from the encryption key id (chainKeyOf). A head's stored hash names that id ("id:hex"), so a cold
// writer recognises a prefix only under the key it hashes with itself.
type chainer struct {
	id  string
	key []byte
}

func (c chainer) next(h chainHash, elem []byte) chainHash {
	var s hash.Hash
	if c.key == nil {
		s = sha256.New()
	} else {
		s = hmac.New(sha256.New, c.key)
	}
	s.Write(h[:])
	s.Write(elem)
	var out chainHash
	copy(out[:], s.Sum(nil))
	return out
}

// fastHash identifies an element within this process (two independent seeded hashes: 128 bits), so a
// warm writer compares its new snapshot with the one it wrote without hashing it with SHA-256.
type fastHash [2]uint64

var fastSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func fastOf(b []byte) fastHash {
	return fastHash{maphash.Bytes(fastSeeds[0], b), maphash.Bytes(fastSeeds[1], b)}
}

// threadState is what a writer knows of a thread's newest head: its id ("" for an empty thread), the
// position allocation (alloc), and per spilled array its item ranges and hashes. States are never
// changed once made (the cache replaces them), so concurrent puts can share them.
type threadState struct {
	head   string
	alloc  map[string]slot
	arrays map[string]*arrayState
}

// slot is where a key's items go: positions slotBase*n .. slotBase*(n+1)-1, the next free one next.
// Each key that was ever an array in the thread keeps its slot (also while it is not one), so a key's
// new items always follow its last range, which then just grows: an append-only array stays one range.
// Heads inherit the allocation of the head they follow, so no position is ever handed out twice along
// a thread's heads.
type slot struct {
	n    int64
	next int64
}

// slotBase is the size of one key's position space (2^40 items).
const slotBase = int64(1) << 40

// arrayState describes one array of a head. fast and chains (per element) are known when this process
// wrote the head; a state read from the server (cold) has only n and chain.
type arrayState struct {
	ranges [][2]int64 // item positions [lo, hi), in order
	n      int
	chain  chainHash // of all n elements
	// chainID is the chainer id chain was made with ("" plain SHA-256; a key id for a sealed head).
	chainID string
	fast    []fastHash
	chains  []chainHash
	kept    int // while planning: how many elements the basis held already (the rest are new items)
}

// maxRanges bounds the ranges of one array: a history edited at many places is written out afresh.
const maxRanges = 32

// deltaPlan is what one put sends: the head (the snapshot without its spilled arrays), the arrays'
// ranges, the new items and where they go, and the state the thread is in once it is stored.
type deltaPlan struct {
	head   []byte
	arrays []byte
	items  []byte
	nItems int
	pos    []byte // the new items' positions, a bigint[] literal
	alloc  []byte // the allocation after this put, as the heads' alloc column
	lo, hi string // every range's bounds as bigint[] literals (the spans columns)
	next   *threadState
}

// planSeal is how a sealed put hides what it stores (see Checkpointer.planPut): item seals a new item
// for its position, and chain keys the arrays' chain hashes. A nil *planSeal stores items as they are
// with plain hashes.
type planSeal struct {
	item  func(pos int64, elem []byte) []byte
	chain chainer
}

// planDelta computes a put of the split snapshot ms on a thread in state st, sealed by seal when it is
// not nil.
func planDelta(st *threadState, ms []member, seal *planSeal) deltaPlan {
	var ch chainer
	if seal != nil {
		ch = seal.chain
	}
	var p deltaPlan
	next := &threadState{alloc: make(map[string]slot, len(st.alloc)+1), arrays: map[string]*arrayState{}}
	maxSlot := int64(-1)
	for k, v := range st.alloc {
		next.alloc[k] = v
		maxSlot = max(maxSlot, v.n)
	}
	pos := []byte{'{'}
	head := []byte{'{'}
	items := []byte{'['}
	arrays := []byte{'{'}
	for _, m := range ms {
		if !m.spill {
			if len(head) > 1 {
				head = append(head, ',')
			}
			head = append(append(append(head, m.rawKey...), ':'), m.value...)
			continue
		}
		sl, ok := next.alloc[m.key]
		if !ok {
			maxSlot++
			sl = slot{n: maxSlot, next: maxSlot * slotBase}
		}
		first := sl.next
		a := planArray(st.arrays[m.key], m.elems, &sl.next, ch)
		next.alloc[m.key] = sl
		for i, e := range m.elems[a.kept:] {
			if p.nItems > 0 {
				items = append(items, ',')
				pos = append(pos, ',')
			}
			if seal != nil {
				e = seal.item(first+int64(i), e)
			}
			items = append(items, e...)
			pos = strconv.AppendInt(pos, first+int64(i), 10)
			p.nItems++
		}
		next.arrays[m.key] = a
		if len(arrays) > 1 {
			arrays = append(arrays, ',')
		}
		arrays = appendArrayMeta(append(append(arrays, m.rawKey...), ':'), a, sl.n)
	}
	// The spans in position order: get reads them in this order, so items come back sorted.
	var spans [][2]int64
	for _, a := range next.arrays {
		spans = append(spans, a.ranges...)
	}
	slices.SortFunc(spans, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	lo, hi := []byte{'{'}, []byte{'{'}
	for _, r := range spans {
		if len(lo) > 1 {
			lo, hi = append(lo, ','), append(hi, ',')
		}
		lo, hi = strconv.AppendInt(lo, r[0], 10), strconv.AppendInt(hi, r[1], 10)
	}
	p.lo, p.hi = string(append(lo, '}')), string(append(hi, '}'))
	p.pos = append(pos, '}')
	p.alloc = appendAlloc(next.alloc)
	p.head = append(head, '}')
	p.items = append(items, ']')
	p.arrays = append(arrays, '}')
	p.next = next
	return p
}

// planArray returns the state of an array of elems after a put, given its state prev in the basis head
// (nil when the head has no such array), taking new positions from *next, hashing with ch. A cold
// basis (read from the server) lends its prefix only when its hash was made by ch's key (the same
// chainer id): a sealed put never keeps the items of a plaintext head (they would be plaintext items
// under an encrypted head), nor compares with a hash made under another key; it writes the array
// afresh then.
func planArray(prev *arrayState, elems [][]byte, next *int64, ch chainer) *arrayState {
	fast := make([]fastHash, len(elems))
	for i, e := range elems {
		fast[i] = fastOf(e)
	}
	keep := 0 // elements of the basis kept as they are
	var chains []chainHash
	switch {
	case prev == nil:
	case prev.fast != nil:
		for keep < len(elems) && keep < prev.n && fast[keep] == prev.fast[keep] {
			keep++
		}
		chains = make([]chainHash, 0, len(elems))
		if prev.chainID == ch.id {
			chains = append(chains, prev.chains[:keep]...)
		} else {
			// The key changed since this process wrote the basis: its prefix is hashed again.
			chains = appendChains(chains, ch, chainHash{}, elems[:keep])
		}
	case prev.chainID != ch.id:
		// Cold, hashed under another key or none: nothing is kept (see above).
	default:
		// Cold: the basis was read from the server; its prefix is recognised by its chain hash alone.
		if len(elems) >= prev.n {
			chains = appendChains(make([]chainHash, 0, len(elems)), ch, chainHash{}, elems[:prev.n])
			if prev.n == 0 || chains[prev.n-1] == prev.chain {
				keep = prev.n
			} else {
				chains = chains[:0]
			}
		}
	}
	var ranges [][2]int64
	if keep > 0 {
		ranges = truncateRanges(prev.ranges, keep)
	}
	if keep < len(elems) && len(ranges) >= maxRanges {
		keep, ranges, chains = 0, nil, chains[:0]
	}
	if chains == nil {
		chains = make([]chainHash, 0, len(elems))
	}
	var h chainHash
	if keep > 0 {
		h = chains[keep-1]
	}
	chains = appendChains(chains, ch, h, elems[keep:])
	if len(chains) > 0 {
		h = chains[len(chains)-1]
	}
	if fresh := int64(len(elems) - keep); fresh > 0 {
		if l := len(ranges) - 1; l >= 0 && ranges[l][1] == *next {
			ranges[l][1] += fresh // appended right after the last range: it grows
		} else {
			ranges = append(ranges, [2]int64{*next, *next + fresh})
		}
		*next += fresh
	}
	return &arrayState{ranges: ranges, n: len(elems), chain: h, chainID: ch.id, fast: fast, chains: chains, kept: keep}
}

// appendChains appends the chain hashes of elems, continuing from h, to chains.
func appendChains(chains []chainHash, ch chainer, h chainHash, elems [][]byte) []chainHash {
	for _, e := range elems {
		h = ch.next(h, e)
		chains = append(chains, h)
	}
	return chains
}

// truncateRanges returns the ranges that hold the first n items of rs.
func truncateRanges(rs [][2]int64, n int) [][2]int64 {
	out := make([][2]int64, 0, len(rs)+1)
	left := int64(n)
	for _, r := range rs {
		if left == 0 {
			break
		}
		l := min(r[1]-r[0], left)
		out = append(out, [2]int64{r[0], r[0] + l})
		left -= l
	}
	return out
}

// appendArrayMeta appends a's entry of the heads' arrays column:
// {"s":slot,"r":[[lo,hi],...],"n":N,"h":"hex"}, or for a hash keyed by a sealed put "h":"keyid:hex"
// (see chainer: a plain hash of plaintext elements would let anyone who guesses an array's content
// confirm the guess; the keyed one still lets a cold writer with the key recognise the prefix).
func appendArrayMeta(b []byte, a *arrayState, slot int64) []byte {
	b = append(b, `{"s":`...)
	b = strconv.AppendInt(b, slot, 10)
	b = append(b, `,"r":[`...)
	for i, r := range a.ranges {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, r[0], 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r[1], 10)
		b = append(b, ']')
	}
	b = append(b, `],"n":`...)
	b = strconv.AppendInt(b, int64(a.n), 10)
	b = append(b, `,"h":"`...)
	if a.chainID != "" {
		b = append(append(b, a.chainID...), ':')
	}
	b = hex.AppendEncode(b, a.chain[:])
	return append(b, `"}`...)
}

// appendAlloc writes the alloc column: {"key": [slot, next], ...}.
func appendAlloc(alloc map[string]slot) []byte {
	b := []byte{'{'}
	for k, v := range alloc {
		if len(b) > 1 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		b = append(append(b, kb...), ":["...)
		b = strconv.AppendInt(b, v.n, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, v.next, 10)
		b = append(b, ']')
	}
	return append(b, '}')
}

// parseState reads a head's state as the server holds it (cold: no per-element hashes).
func parseState(head string, arraysJSON, allocJSON []byte) (*threadState, error) {
	var alloc map[string][2]int64
	if err := json.Unmarshal(allocJSON, &alloc); err != nil {
		return nil, fmt.Errorf("head %s: alloc column: %w", head, err)
	}
	var raw map[string]struct {
		R [][2]int64 `json:"r"`
		N int        `json:"n"`
		H string     `json:"h"`
	}
	if err := json.Unmarshal(arraysJSON, &raw); err != nil {
		return nil, fmt.Errorf("head %s: arrays column: %w", head, err)
	}
	st := &threadState{head: head, alloc: make(map[string]slot, len(alloc)), arrays: make(map[string]*arrayState, len(raw))}
	for k, v := range alloc {
		st.alloc[k] = slot{n: v[0], next: v[1]}
	}
	for k, v := range raw {
		a := &arrayState{ranges: v.R, n: v.N}
		hexHash := v.H
		if id, rest, keyed := strings.Cut(v.H, ":"); keyed {
			a.chainID, hexHash = id, rest
		}
		if h, err := hex.DecodeString(hexHash); err != nil || len(h) != len(a.chain) {
			return nil, fmt.Errorf("head %s: array %q: bad hash %q", head, k, v.H)
		} else {
			copy(a.chain[:], h)
		}
		st.arrays[k] = a
	}
	return st, nil
}

// threadCache holds, per thread, the state of the head this process last wrote or read, bounded in
// the number of threads (a full cache forgets an arbitrary thread: a forgotten thread costs its next
// put one small read).
type threadCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*threadState
}

// defaultCachedThreads bounds each Checkpointer's cache.
const defaultCachedThreads = 4096

func newThreadCache(max int) *threadCache {
	return &threadCache{max: max, m: map[string]*threadState{}}
}

func (tc *threadCache) get(thread string) *threadState {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.m[thread]
}

func (tc *threadCache) set(thread string, st *threadState) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if _, ok := tc.m[thread]; !ok && len(tc.m) >= tc.max {
		for k := range tc.m {
			delete(tc.m, k)
			break
		}
	}
	tc.m[thread] = st
}

// drop forgets the thread's state if it is still old (another put may have replaced it meanwhile).
func (tc *threadCache) drop(thread string, old *threadState) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m[thread] == old {
		delete(tc.m, thread)
	}
}

// forget drops whatever state the cache holds for the thread.
func (tc *threadCache) forget(thread string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	delete(tc.m, thread)
}

// useStorage sets a Checkpointer up for its storage: for StorageDelta its names and statements become
// the heads table's, and the delta part is added.
func (c *Checkpointer) useStorage(s Storage) error {
	switch s {
	case StorageFull:
		return nil
	case StorageDelta:
	default:
		return fmt.Errorf("unknown storage %v: %w", s, ErrInvalidOptions)
	}
	heads, d, err := newDelta(c.names.rawSchema, c.names.rawTable, c.facts)
	if err != nil {
		return err
	}
	c.names, c.q, c.delta = heads, headsStatements(heads, d.view, c.facts), d
	return nil
}

// headsStatements is the full layout's statements a delta table runs on its heads table, except the
// leases': those name the lease table for the view (<table>_leases, as the user named the table, not
// <table>_heads_leases), so they are the very statements a full table of that name has.
func headsStatements(heads, view names, f dialectFacts) statements {
	s := newStatements(heads, f)
	leaseStatements(&s, view, f)
	return s
}
