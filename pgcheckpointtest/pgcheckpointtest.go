// Package pgcheckpointtest checks a pgcheckpoint.Store implementation against the behaviour contract:
// validation, ids, ordering, retention, fencing, paging, deletion and thread listing. The PostgreSQL and
// CockroachDB Checkpointer (see the repository's integration tests) and the in-memory Memory store pass
// it; run it on your own implementations and wrappers:
//
//	func TestMyStore(t *testing.T) {
//		pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
//			return newMyStore(t, opts)
//		})
//	}
//
// What only a real server can show (statement atomicity, crashes, concurrency across processes) is not
// part of this suite.
package pgcheckpointtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ziroagent/pgcheckpoint"
)

// NewStore returns a Store for one subtest, configured by opts (retention cap, snapshot limit, clock),
// with no checkpoints in it. Register cleanup with t.Cleanup.
type NewStore func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store

// Run runs the contract suite as subtests of t.
func Run(t *testing.T, newStore NewStore) { RunWithout(t, newStore) }

// RunWithout runs the contract suite without the named cases, for a store that does not offer that part
// of the contract yet; the caller tests what the store does instead. A name
// that is no case fails the test, so the list cannot go stale.
func RunWithout(t *testing.T, newStore NewStore, without ...string) {
	skip := map[string]bool{}
	for _, name := range without {
		skip[name] = true
	}
	for _, tc := range cases {
		if skip[tc.name] {
			delete(skip, tc.name)
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore)
		})
	}
	for name := range skip {
		t.Errorf("RunWithout: no contract case is named %q", name)
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, newStore NewStore)
}

var cases = []testCase{
	{"PutGetRoundTrip", testPutGetRoundTrip},
	{"GetNewestAndByID", testGetNewestAndByID},
	{"GetNotFound", testGetNotFound},
	{"OrderingSameMillisecond", testOrderingSameMillisecond},
	{"ClockGoingBack", testClockGoingBack},
	{"RetentionExact", testRetentionExact},
	{"RetentionDisabled", testRetentionDisabled},
	{"RetentionAfterMiddleDelete", testRetentionAfterMiddleDelete},
	{"ListPaging", testListPaging},
	{"Delete", testDelete},
	{"Fencing", testFencing},
	{"BadSnapshots", testBadSnapshots},
	{"BadThreadIDs", testBadThreadIDs},
	{"SizeLimit", testSizeLimit},
	{"CancelledContext", testCancelledContext},
	{"Threads", testThreads},
	{"ThreadsPrefix", testThreadsPrefix},
	{"Fork", testFork},
	{"ForkHistoryRetention", testForkHistoryRetention},
	{"TypedJSON", testTypedJSON},
	{"ConcurrentPutsOneThread", testConcurrentPuts},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, s pgcheckpoint.Store, thread string, snap string) string {
	t.Helper()
	id, err := s.Put(ctx(t), thread, []byte(snap))
	if err != nil {
		t.Fatalf("Put(%q, %s): %v", thread, snap, err)
	}
	return id
}

func ids(t *testing.T, s pgcheckpoint.Store, thread string) []string {
	t.Helper()
	list, err := s.List(ctx(t), thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		t.Fatalf("List(%q): %v", thread, err)
	}
	out := make([]string, len(list))
	for i, cp := range list {
		out[i] = cp.ID
	}
	return out
}

// sameJSON reports whether a and b encode the same value (JSONB reorders keys and adds spaces).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("stored snapshot is not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("snapshot is not JSON: %v: %s", err, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// reversed returns a reversed copy of s.
func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func testPutGetRoundTrip(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	snap := `{"version": 2, "messages": [{"role": "user", "content": "héllo \"quoted\" \\ done"}], "n": 1.5, "z": null, "a": {"b": [true, false]}}`
	id := mustPut(t, s, "round-trip", snap)
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.String() != id {
		t.Fatalf("id %q is not a canonical lower-case UUIDv7 (parse error %v)", id, err)
	}
	cp, err := s.Get(ctx(t), "round-trip", id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if cp.ID != id || cp.ThreadID != "round-trip" || cp.Version != 2 || int(cp.SizeBytes) != len(snap) {
		t.Errorf("Get metadata = id %s thread %q version %d size %d; want %s, round-trip, 2, %d",
			cp.ID, cp.ThreadID, cp.Version, cp.SizeBytes, id, len(snap))
	}
	if cp.CreatedAt.IsZero() || time.Since(cp.CreatedAt) > time.Hour || time.Until(cp.CreatedAt) > time.Hour {
		t.Errorf("CreatedAt = %v, want about now", cp.CreatedAt)
	}
	if !sameJSON(t, cp.Snapshot, []byte(snap)) {
		t.Errorf("snapshot came back as %s, want the same JSON as %s", cp.Snapshot, snap)
	}
	if id2 := mustPut(t, s, "round-trip", `{"steps": []}`); id2 <= id {
		t.Errorf("second id %s does not sort after first %s", id2, id)
	}
	if cp, err := s.Latest(ctx(t), "round-trip"); err != nil || cp.Version != 0 {
		t.Errorf("snapshot without version: Get = version %d, err %v; want version 0", cp.Version, err)
	}
}

func testGetNewestAndByID(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	var put []string
	for i := range 5 {
		put = append(put, mustPut(t, s, "newest", fmt.Sprintf(`{"step": %d}`, i)))
	}
	cp, err := s.Latest(ctx(t), "newest")
	if err != nil || cp.ID != put[4] {
		t.Fatalf("Get newest = %s, %v; want %s", cp.ID, err, put[4])
	}
	cp, err = s.Get(ctx(t), "newest", put[1])
	if err != nil || cp.ID != put[1] || !sameJSON(t, cp.Snapshot, []byte(`{"step": 1}`)) {
		t.Fatalf("Get(%s) = %s %s, %v; want step 1", put[1], cp.ID, cp.Snapshot, err)
	}
	// The same id under another thread is not there.
	if _, err := s.Get(ctx(t), "other-thread", put[1]); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Errorf("Get of another thread's id: err = %v, want ErrNotFound", err)
	}
}

func testGetNotFound(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	mustPut(t, s, "present", `{}`)
	if _, err := s.Latest(ctx(t), "absent"); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Errorf("Latest(%q): err = %v, want ErrNotFound", "absent", err)
	}
	for _, tc := range []struct{ thread, id string }{
		{"absent", uuid.Must(uuid.NewV7()).String()},
		{"present", uuid.Must(uuid.NewV7()).String()},
	} {
		_, err := s.Get(ctx(t), tc.thread, tc.id)
		if !errors.Is(err, pgcheckpoint.ErrNotFound) {
			t.Errorf("Get(%q, %q): err = %v, want ErrNotFound", tc.thread, tc.id, err)
		}
	}
	testMalformedIDs(t, s)
}

// testMalformedIDs: a checkpoint id that is not a UUID gets one answer from every call,
// ErrInvalidCheckpointID, before anything is sent; an upper-case UUID names the same checkpoint.
func testMalformedIDs(t *testing.T, s pgcheckpoint.Store) {
	head := mustPut(t, s, "malformed", `{}`)
	// The empty string is no id either: Latest, DeleteThread and PutIfEmpty are the calls without one.
	for _, bad := range []string{"", "not-a-uuid", "'; DROP TABLE x; --", strings.Repeat("f", 36)} {
		if _, err := s.Get(ctx(t), "malformed", bad); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidCheckpointID", bad, err)
		}
		if _, err := s.List(ctx(t), "malformed", pgcheckpoint.ListOptions{Before: bad}); bad != "" && !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
			t.Errorf("List(Before %q): err = %v, want ErrInvalidCheckpointID", bad, err)
		}
		if err := s.Delete(ctx(t), "malformed", bad); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidCheckpointID", bad, err)
		}
		if _, err := s.PutAfter(ctx(t), "malformed", bad, []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
			t.Errorf("PutAfter(%q): err = %v, want ErrInvalidCheckpointID", bad, err)
		}
	}
	if got := ids(t, s, "malformed"); !slices.Equal(got, []string{head}) {
		t.Fatalf("after the refused calls: %v, want [%s] (nothing written or deleted)", got, head)
	}
	upper := strings.ToUpper(head)
	if cp, err := s.Get(ctx(t), "malformed", upper); err != nil || cp.ID != head {
		t.Errorf("Get(%s) = %s, %v; want %s (the same id in upper case)", upper, cp.ID, err, head)
	}
	next, err := s.PutAfter(ctx(t), "malformed", upper, []byte(`{}`))
	if err != nil {
		t.Fatalf("PutAfter(%s), the head in upper case: %v", upper, err)
	}
	if err := s.Delete(ctx(t), "malformed", strings.ToUpper(next)); err != nil {
		t.Fatalf("Delete(upper-case id): %v", err)
	}
	if got := ids(t, s, "malformed"); !slices.Equal(got, []string{head}) {
		t.Errorf("after deleting %s by its upper-case id: %v, want [%s]", next, got, head)
	}
}

func testOrderingSameMillisecond(t *testing.T, newStore NewStore) {
	frozen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newStore(t, pgcheckpoint.Options{Clock: func() time.Time { return frozen }, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var put []string
	for i := range 50 {
		put = append(put, mustPut(t, s, "same-ms", fmt.Sprintf(`{"i": %d}`, i)))
	}
	for i := 1; i < len(put); i++ {
		if put[i] <= put[i-1] {
			t.Fatalf("id %d (%s) does not sort after id %d (%s) within one millisecond", i, put[i], i-1, put[i-1])
		}
	}
	if got := ids(t, s, "same-ms"); !slices.Equal(got, reversed(put)) {
		t.Fatalf("List order = %v, want newest first %v", got, reversed(put))
	}
	cp, err := s.Latest(ctx(t), "same-ms")
	if err != nil || cp.ID != put[len(put)-1] {
		t.Fatalf("newest = %s, %v; want the last put %s", cp.ID, err, put[len(put)-1])
	}
}

func testClockGoingBack(t *testing.T, newStore NewStore) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(-time.Second) // every reading is earlier than the last
		return now
	}
	s := newStore(t, pgcheckpoint.Options{Clock: clock, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var put []string
	for i := range 10 {
		put = append(put, mustPut(t, s, "clock-back", fmt.Sprintf(`{"i": %d}`, i)))
	}
	if got := ids(t, s, "clock-back"); !slices.Equal(got, reversed(put)) {
		t.Fatalf("with a clock going back, List = %v, want put order reversed %v", got, reversed(put))
	}
}

func testRetentionExact(t *testing.T, newStore NewStore) {
	for _, cap := range []int{1, 3, 10} {
		s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: cap})
		thread := fmt.Sprintf("cap-%d", cap)
		var put []string
		for i := range 2*cap + 3 {
			put = append(put, mustPut(t, s, thread, fmt.Sprintf(`{"i": %d}`, i)))
			want := reversed(put[max(0, len(put)-cap):])
			if got := ids(t, s, thread); !slices.Equal(got, want) {
				t.Fatalf("cap %d after %d puts: thread holds %v, want exactly the newest %v", cap, i+1, got, want)
			}
		}
	}
}

func testRetentionDisabled(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	for i := range 120 {
		mustPut(t, s, "no-cap", fmt.Sprintf(`{"i": %d}`, i))
	}
	if got := ids(t, s, "no-cap"); len(got) != 120 {
		t.Fatalf("retention disabled: %d checkpoints kept, want 120", len(got))
	}
	if l, err := s.List(ctx(t), "no-cap", pgcheckpoint.ListOptions{}); err != nil || len(l) != 100 {
		t.Fatalf("List with limit 0 and no cap = %d rows, %v; want the default 100", len(l), err)
	}
}

func testRetentionAfterMiddleDelete(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 4})
	var put []string
	for i := range 4 {
		put = append(put, mustPut(t, s, "middle", fmt.Sprintf(`{"i": %d}`, i)))
	}
	if err := s.Delete(ctx(t), "middle", put[1]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	put = append(put[:1], put[2:]...)
	put = append(put, mustPut(t, s, "middle", `{"i": 4}`))
	if got, want := ids(t, s, "middle"), reversed(put); !slices.Equal(got, want) {
		t.Fatalf("after deleting a middle checkpoint and one put: thread holds %v, want %v", got, want)
	}
	put = append(put, mustPut(t, s, "middle", `{"i": 5}`))
	if got, want := ids(t, s, "middle"), reversed(put[1:]); !slices.Equal(got, want) {
		t.Fatalf("after the next put: thread holds %v, want %v", got, want)
	}
}

func testListPaging(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: 25})
	var put []string
	for i := range 25 {
		put = append(put, mustPut(t, s, "paging", fmt.Sprintf(`{"version": %d}`, i)))
	}
	var got []string
	before := ""
	for page := 0; ; page++ {
		l, err := s.List(ctx(t), "paging", pgcheckpoint.ListOptions{Limit: 10, Before: before})
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		for _, cp := range l {
			if cp.Snapshot != nil {
				t.Fatalf("List returned a snapshot; it returns metadata only")
			}
			if cp.ThreadID != "paging" || cp.SizeBytes <= 0 || cp.CreatedAt.IsZero() {
				t.Fatalf("List metadata incomplete: %+v", cp)
			}
			got = append(got, cp.ID)
		}
		if len(l) < 10 {
			break
		}
		before = l[len(l)-1].ID
	}
	if !slices.Equal(got, reversed(put)) {
		t.Fatalf("paging with Before returned %v, want %v", got, reversed(put))
	}
	if l, _ := s.List(ctx(t), "paging", pgcheckpoint.ListOptions{}); len(l) != 25 || l[0].Version != 24 {
		t.Fatalf("List with limit 0 = %d rows (first version %v), want the cap's 25 newest first", len(l), l)
	}
	if l, err := s.List(ctx(t), "nobody", pgcheckpoint.ListOptions{}); err != nil || len(l) != 0 {
		t.Fatalf("List of an unknown thread = %v, %v; want empty, no error", l, err)
	}
	if _, err := s.List(ctx(t), "paging", pgcheckpoint.ListOptions{Before: "bogus"}); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Fatalf("List with a malformed cursor: err = %v, want ErrInvalidCheckpointID", err)
	}
}

func testDelete(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	a := mustPut(t, s, "del", `{"a": 1}`)
	b := mustPut(t, s, "del", `{"b": 1}`)
	mustPut(t, s, "keep", `{}`)
	if err := s.Delete(ctx(t), "del", b); err != nil {
		t.Fatalf("Delete one: %v", err)
	}
	if got := ids(t, s, "del"); !slices.Equal(got, []string{a}) {
		t.Fatalf("after deleting %s: %v, want [%s]", b, got, a)
	}
	for _, id := range []string{b, uuid.Must(uuid.NewV7()).String()} {
		if err := s.Delete(ctx(t), "del", id); err != nil {
			t.Errorf("Delete of nothing (%q): %v, want nil", id, err)
		}
	}
	if err := s.DeleteThread(ctx(t), "del"); err != nil {
		t.Fatalf("Delete thread: %v", err)
	}
	if got := ids(t, s, "del"); len(got) != 0 {
		t.Fatalf("after deleting the thread: %v, want empty", got)
	}
	if got := ids(t, s, "keep"); len(got) != 1 {
		t.Fatalf("deleting one thread touched another: %v", got)
	}
	if err := s.DeleteThread(ctx(t), "never-existed"); err != nil {
		t.Errorf("Delete of an unknown thread: %v, want nil", err)
	}
}

func testFencing(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	c := ctx(t)
	first, err := s.PutIfEmpty(c, "fence", []byte(`{"i": 0}`))
	if err != nil {
		t.Fatalf("PutAfter on an empty thread with head \"\": %v", err)
	}
	if _, err := s.PutIfEmpty(c, "fence", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Fatalf("PutAfter expecting empty on a non-empty thread: err = %v, want ErrConflict", err)
	}
	second, err := s.PutAfter(c, "fence", first, []byte(`{"i": 1}`))
	if err != nil {
		t.Fatalf("PutAfter with the current head: %v", err)
	}
	for _, stale := range []string{first, uuid.Must(uuid.NewV7()).String()} {
		if _, err := s.PutAfter(c, "fence", stale, []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrConflict) {
			t.Errorf("PutAfter with head %q: err = %v, want ErrConflict", stale, err)
		}
	}
	if got := ids(t, s, "fence"); !slices.Equal(got, []string{second, first}) {
		t.Fatalf("after fenced puts the thread holds %v, want [%s %s]: a losing put wrote something", got, second, first)
	}
	// Unfenced puts keep working and move the head.
	third := mustPut(t, s, "fence", `{"i": 2}`)
	if _, err := s.PutAfter(c, "fence", second, []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrConflict) {
		t.Errorf("PutAfter with a head an unfenced put replaced: err = %v, want ErrConflict", err)
	}
	if _, err := s.PutAfter(c, "fence", third, []byte(`{}`)); err != nil {
		t.Errorf("PutAfter after an unfenced put, naming it: %v", err)
	}
}

func testBadSnapshots(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	for _, bad := range []string{
		``, `{`, `{"a": }`, `[1, 2]`, `"text"`, `42`, `null`, `true`,
		`{"a": "\u0000"}`, `{"nested": {"deep": ["x\u0000y"]}}`, `{"\u0000": 1}`,
		`{"a": "\ud800"}`, `{"a": "\udc00 alone"}`,
		`{"version": 1.5}`, `{"version": 2147483648}`, `{"version": -2147483649}`, `{"version": "2"}`,
		`{"version": null}`, `{"version": [1]}`, `{"version": {"major": 1}}`, `{"version": 1, "version": 1e10}`,
		`{"a": 1e131072}`, `{"a": 10e131071}`, `{"a": 1e-16384}`, `{"a": 1.50e-16382}`, `{"a": 0e1073741823}`,
		"{\"a\": \"\xff\"}",
	} {
		_, err := s.Put(ctx(t), "bad-snap", []byte(bad))
		if !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidSnapshot", bad, err)
		}
	}
	if got := ids(t, s, "bad-snap"); len(got) != 0 {
		t.Fatalf("bad snapshots wrote %d checkpoints", len(got))
	}
	for _, good := range []struct {
		snap    string
		version int32
	}{
		{`{"version": 2147483647}`, 2147483647}, {`{"version": -2147483648}`, -2147483648},
		{`{"version": 3.0}`, 3}, {`{"version": 1e1}`, 10}, {`{"version": "x", "version": 7}`, 7},
		{`{"nested": {"version": 9}}`, 0}, {`{"a": "\\u0000 is text"}`, 0}, {`{"a": "\ud83d\ude00"}`, 0},
		{` {"vers\u0069on": 5} `, 5}, {`{"a": 1e131071}`, 0}, {`{"a": -1e-16383}`, 0}, {`{"a": 0e200000}`, 0},
	} {
		id, err := s.Put(ctx(t), "good-snap", []byte(good.snap))
		if err != nil {
			t.Errorf("Put(%s): %v", good.snap, err)
			continue
		}
		if cp, err := s.Get(ctx(t), "good-snap", id); err != nil || cp.Version != good.version {
			t.Errorf("Put(%s): stored version %d (%v), want %d", good.snap, cp.Version, err, good.version)
		}
	}
}

func testBadThreadIDs(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	for _, bad := range []string{"", strings.Repeat("x", 1025), "bad\xffutf8", "nul\x00inside"} {
		if _, err := s.Put(ctx(t), bad, []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Put with thread %q: err = %v, want ErrInvalidThreadID", bad, err)
		}
		if _, err := s.Latest(ctx(t), bad); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Get with thread %q: err = %v, want ErrInvalidThreadID", bad, err)
		}
	}
	for _, good := range []string{"x", strings.Repeat("é", 512), "with space/and'quote\"", "🙂"} {
		id := mustPut(t, s, good, `{}`)
		if cp, err := s.Get(ctx(t), good, id); err != nil || cp.ThreadID != good {
			t.Errorf("thread %q: Get = %q, %v", good, cp.ThreadID, err)
		}
	}
}

func testSizeLimit(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{MaxSnapshotBytes: 64})
	ok := `{"pad": "` + strings.Repeat("a", 64-11) + `"}`
	if len(ok) != 64 {
		t.Fatalf("test bug: %d", len(ok))
	}
	if _, err := s.Put(ctx(t), "size", []byte(ok)); err != nil {
		t.Fatalf("Put of exactly the limit: %v", err)
	}
	if _, err := s.Put(ctx(t), "size", []byte(ok[:9]+"b"+ok[9:])); !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge) {
		t.Fatalf("Put over the limit: err = %v, want ErrSnapshotTooLarge", err)
	}
	// The limit holds for the snapshot as PostgreSQL prints it back, numbers written out in full.
	if _, err := s.Put(ctx(t), "size", []byte(`{"n": 1e60}`)); !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge) {
		t.Fatalf("Put of {\"n\": 1e60} (68 bytes printed): err = %v, want ErrSnapshotTooLarge", err)
	}
	if _, err := s.Put(ctx(t), "size", []byte(`{"n": 1e56}`)); err != nil {
		t.Fatalf("Put of {\"n\": 1e56} (64 bytes printed): %v", err)
	}
	if got := ids(t, s, "size"); len(got) != 2 {
		t.Fatalf("oversized put wrote something: %v", got)
	}
}

func testCancelledContext(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(c, "cancelled", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.PutIfEmpty(c, "cancelled", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("PutAfter with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.Latest(c, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.List(c, "cancelled", pgcheckpoint.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: err = %v, want context.Canceled", err)
	}
	if err := s.DeleteThread(c, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context: err = %v, want context.Canceled", err)
	}
	if got := ids(t, s, "cancelled"); len(got) != 0 {
		t.Fatalf("a cancelled put wrote %v", got)
	}
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if _, err := s.Put(expired, "cancelled", []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put with an expired context: err = %v, want context.DeadlineExceeded", err)
	}
}

func testThreads(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	want := map[string]int{"b": 2, "a": 1, "c": 3, "a b": 1, "B": 1}
	newest := map[string]string{}
	bytesOf := map[string]int64{}
	for th, n := range want {
		for i := range n {
			snap := fmt.Sprintf(`{"i": %d}`, i)
			newest[th] = mustPut(t, s, th, snap)
			bytesOf[th] += int64(len(snap))
		}
	}
	all, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{})
	if err != nil {
		t.Fatalf("Threads: %v", err)
	}
	var order []string
	for _, ti := range all {
		order = append(order, ti.ThreadID)
		if ti.Checkpoints != want[ti.ThreadID] || ti.NewestID != newest[ti.ThreadID] || ti.TotalBytes != bytesOf[ti.ThreadID] || ti.NewestAt.IsZero() {
			t.Errorf("Threads row %+v; want %d checkpoints, newest %s, %d bytes", ti, want[ti.ThreadID], newest[ti.ThreadID], bytesOf[ti.ThreadID])
		}
	}
	if !slices.Equal(order, []string{"B", "a", "a b", "b", "c"}) {
		t.Fatalf("Threads order = %v, want byte order [B a a b b c]", order)
	}
	page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{After: "a", Limit: 2})
	if err != nil || len(page) != 2 || page[0].ThreadID != "a b" || page[1].ThreadID != "b" {
		t.Fatalf("Threads after \"a\" limit 2 = %+v, %v; want [a b, b]", page, err)
	}
	// Every input is decided the same way by every store: a cursor that is no thread id is refused.
	for _, bad := range []string{"bad\xffutf8", "nul\x00inside", strings.Repeat("x", 1025)} {
		if page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{After: bad}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Threads after %q = %d threads, %v; want ErrInvalidThreadID", bad, len(page), err)
		}
	}
	for _, limit := range []int{1, pgcheckpoint.MaxListLimit} {
		page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{After: strings.Repeat("\U0010FFFF", 256), Limit: limit})
		if err != nil || len(page) != 0 {
			t.Errorf("Threads after the last possible id, limit %d = %d threads, %v; want none", limit, len(page), err)
		}
	}
	// A page size Threads cannot give is refused, not cut short.
	for _, limit := range []int{-1, pgcheckpoint.MaxListLimit + 1} {
		if page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{Limit: limit}); !errors.Is(err, pgcheckpoint.ErrInvalidOptions) {
			t.Errorf("Threads limit %d = %d threads, %v; want ErrInvalidOptions", limit, len(page), err)
		}
	}
}

// testThreadsPrefix checks ThreadsOptions.Prefix against strings.HasPrefix: byte for byte, with LIKE's
// metacharacters taken literally, on multi-byte UTF-8 and at U+10FFFF, the last code point.
func testThreadsPrefix(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	const max = "\U0010FFFF"
	all := []string{"tenant-1/a", "tenant-1/b", "tenant-10/x", "tenant-1%/y", "tenant-1_/z", `tenant-1\/w`, "tenant-2/a",
		"tenant-", "é/1", "ê/1", "¿x", "Àx", "e", max, max + "a", "a" + max, "b", "%", "_", `\`}
	newest := map[string]string{}
	for _, th := range all {
		newest[th] = mustPut(t, s, th, `{}`)
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	for _, prefix := range []string{"", "tenant-1/", "tenant-1%", "tenant-1_", `tenant-1\`, "tenant-1", "tenant-", "tenant-1/a",
		"é", "¿", "e", max, "a" + max, "a", "%", "_", `\`, "nothing-here", "tenant-1/a/deeper"} {
		var want []string
		for _, th := range sorted {
			if strings.HasPrefix(th, prefix) {
				want = append(want, th)
			}
		}
		page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{Prefix: prefix, Limit: 1000})
		if err != nil {
			t.Fatalf("Threads with prefix %q: %v", prefix, err)
		}
		var got []string
		for _, ti := range page {
			got = append(got, ti.ThreadID)
			if ti.Checkpoints != 1 || ti.NewestID != newest[ti.ThreadID] {
				t.Errorf("Threads with prefix %q: row %+v, want 1 checkpoint, newest %s", prefix, ti, newest[ti.ThreadID])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Threads with prefix %q = %q, want %q", prefix, got, want)
		}
		// Paging within the prefix, one thread a page, ends with the same threads.
		var paged []string
		after := ""
		for range len(all) + 1 {
			p, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{Prefix: prefix, After: after, Limit: 1})
			if err != nil {
				t.Fatalf("Threads with prefix %q after %q: %v", prefix, after, err)
			}
			if len(p) == 0 {
				break
			}
			paged = append(paged, p[0].ThreadID)
			after = p[0].ThreadID
		}
		if !slices.Equal(paged, want) {
			t.Errorf("Threads with prefix %q, one a page = %q, want %q", prefix, paged, want)
		}
	}
	for _, bad := range []string{"bad\xffutf8", "nul\x00inside", strings.Repeat("x", 1025)} {
		if page, err := s.Threads(ctx(t), pgcheckpoint.ThreadsOptions{Prefix: bad}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Threads with prefix %q = %d threads, %v; want ErrInvalidThreadID", bad, len(page), err)
		}
	}
}

// testFork: a fork copies one checkpoint into a new thread, keeping its id and metadata; the two threads
// then live apart; a fork never adds to a thread that has checkpoints, nor forks what does not exist.
func testFork(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	a := mustPut(t, s, "src", `{"version": 1, "step": "a"}`)
	b := mustPut(t, s, "src", `{"version": 2, "step": "b"}`)
	c := mustPut(t, s, "src", `{"version": 3, "step": "c"}`)
	orig, err := s.Get(ctx(t), "src", b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Fork(ctx(t), "src", strings.ToUpper(b), "dst", pgcheckpoint.ForkOptions{})
	if err != nil || got != b {
		t.Fatalf("Fork(src, %s, dst) = %q, %v; want %s", b, got, err, b)
	}
	if ids := ids(t, s, "dst"); !slices.Equal(ids, []string{b}) {
		t.Fatalf("after the fork dst holds %v, want [%s]", ids, b)
	}
	cp, err := s.Latest(ctx(t), "dst")
	if err != nil || cp.ID != b || cp.ThreadID != "dst" || cp.Version != 2 || cp.SizeBytes != orig.SizeBytes ||
		!cp.CreatedAt.Equal(orig.CreatedAt) || !sameJSON(t, cp.Snapshot, orig.Snapshot) {
		t.Fatalf("dst's newest = %+v, %v; want a copy of %+v", cp, err, orig)
	}
	// With its history: the forked checkpoint and the older ones, not the newer.
	if got, err := s.Fork(ctx(t), "src", b, "dst-history", pgcheckpoint.ForkOptions{History: true}); err != nil || got != b {
		t.Fatalf("Fork with history = %q, %v", got, err)
	}
	if ids := ids(t, s, "dst-history"); !slices.Equal(ids, []string{b, a}) {
		t.Fatalf("after the fork with history dst-history holds %v, want [%s %s]", ids, b, a)
	}
	// Into a thread that has checkpoints, the source thread included: ErrThreadExists, nothing written.
	for _, to := range []string{"dst", "src"} {
		if _, err := s.Fork(ctx(t), "src", c, to, pgcheckpoint.ForkOptions{History: true}); !errors.Is(err, pgcheckpoint.ErrThreadExists) {
			t.Errorf("Fork into %s, which has checkpoints: err = %v, want ErrThreadExists", to, err)
		}
	}
	if ids := ids(t, s, "dst"); !slices.Equal(ids, []string{b}) {
		t.Fatalf("a refused fork changed dst: %v", ids)
	}
	if ids := ids(t, s, "src"); !slices.Equal(ids, []string{c, b, a}) {
		t.Fatalf("a refused fork changed src: %v", ids)
	}
	// From what does not exist: ErrNotFound; malformed input: typed errors; nothing written.
	missing := uuid.Must(uuid.NewV7()).String()
	for _, from := range []struct{ thread, id string }{{"src", missing}, {"no-such-thread", b}} {
		if _, err := s.Fork(ctx(t), from.thread, from.id, "nowhere", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrNotFound) {
			t.Errorf("Fork of %s/%s: err = %v, want ErrNotFound", from.thread, from.id, err)
		}
	}
	if _, err := s.Fork(ctx(t), "src", "not-a-uuid", "nowhere", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID) {
		t.Errorf("Fork of a malformed id: err = %v, want ErrInvalidCheckpointID", err)
	}
	for _, bad := range []string{"", "bad\xffutf8"} {
		if _, err := s.Fork(ctx(t), bad, b, "nowhere", pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Fork from thread %q: err = %v, want ErrInvalidThreadID", bad, err)
		}
		if _, err := s.Fork(ctx(t), "src", b, bad, pgcheckpoint.ForkOptions{}); !errors.Is(err, pgcheckpoint.ErrInvalidThreadID) {
			t.Errorf("Fork into thread %q: err = %v, want ErrInvalidThreadID", bad, err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Fork(cancelled, "src", b, "nowhere", pgcheckpoint.ForkOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Fork with a cancelled context: err = %v, want context.Canceled", err)
	}
	if ids := ids(t, s, "nowhere"); len(ids) != 0 {
		t.Fatalf("a refused fork wrote %v", ids)
	}
	// The threads live apart: a put into the fork sorts after the copy, the source does not change, and
	// deleting the source leaves the fork.
	next := mustPut(t, s, "dst", `{"version": 4, "step": "d"}`)
	if ids := ids(t, s, "dst"); !slices.Equal(ids, []string{next, b}) || next <= b {
		t.Fatalf("after a put into the fork dst holds %v, want [%s %s] with the new id after the copy", ids, next, b)
	}
	if ids := ids(t, s, "src"); !slices.Equal(ids, []string{c, b, a}) {
		t.Fatalf("a put into the fork changed src: %v", ids)
	}
	if err := s.DeleteThread(ctx(t), "src"); err != nil {
		t.Fatal(err)
	}
	if ids := ids(t, s, "dst"); !slices.Equal(ids, []string{next, b}) {
		t.Fatalf("deleting the source changed the fork: %v", ids)
	}
	// A fork's own checkpoint can be forked again, into a third thread.
	if got, err := s.Fork(ctx(t), "dst", next, "dst-of-dst", pgcheckpoint.ForkOptions{History: true}); err != nil || got != next {
		t.Fatalf("Fork of a fork = %q, %v", got, err)
	}
	if ids := ids(t, s, "dst-of-dst"); !slices.Equal(ids, []string{next, b}) {
		t.Fatalf("fork of a fork holds %v, want [%s %s]", ids, next, b)
	}
}

// testForkHistoryRetention: a fork with history copies at most the retention cap, and the new thread
// keeps to the cap afterwards.
func testForkHistoryRetention(t *testing.T, newStore NewStore) {
	const cap = 3
	s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: cap})
	var put []string
	for i := range 5 {
		put = append(put, mustPut(t, s, "long", fmt.Sprintf(`{"i": %d}`, i)))
	}
	// The thread holds put[2..4]; fork put[3] with history: put[3], put[2] (put[1] is gone).
	if _, err := s.Fork(ctx(t), "long", put[3], "branch", pgcheckpoint.ForkOptions{History: true}); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if ids := ids(t, s, "branch"); !slices.Equal(ids, []string{put[3], put[2]}) {
		t.Fatalf("fork with history holds %v, want [%s %s]", ids, put[3], put[2])
	}
	if _, err := s.Fork(ctx(t), "long", put[4], "full", pgcheckpoint.ForkOptions{History: true}); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if ids := ids(t, s, "full"); !slices.Equal(ids, reversed(put[2:])) {
		t.Fatalf("fork with history of a full thread holds %v, want %v", ids, reversed(put[2:]))
	}
	// Puts into the fork trim it to the cap like any thread.
	var more []string
	for i := range 2 {
		more = append(more, mustPut(t, s, "branch", fmt.Sprintf(`{"branch": %d}`, i)))
	}
	if ids := ids(t, s, "branch"); !slices.Equal(ids, []string{more[1], more[0], put[3]}) {
		t.Fatalf("after two puts the fork holds %v, want [%s %s %s]", ids, more[1], more[0], put[3])
	}
	// Without retention, the whole history up to the checkpoint.
	all := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
	var every []string
	for i := range 150 {
		every = append(every, mustPut(t, all, "long", fmt.Sprintf(`{"i": %d}`, i)))
	}
	if _, err := all.Fork(ctx(t), "long", every[139], "branch", pgcheckpoint.ForkOptions{History: true}); err != nil {
		t.Fatalf("Fork without retention: %v", err)
	}
	if ids := ids(t, all, "branch"); !slices.Equal(ids, reversed(every[:140])) {
		t.Fatalf("fork with history without retention holds %d checkpoints, want 140", len(ids))
	}
}

// Snapshot is a small typed snapshot for PutJSON/GetJSON.
type snapshot struct {
	Version int      `json:"version"`
	Steps   []string `json:"steps"`
}

func testTypedJSON(t *testing.T, newStore NewStore) {
	s := newStore(t, pgcheckpoint.Options{})
	in := snapshot{Version: 2, Steps: []string{"plan", "act"}}
	id, err := pgcheckpoint.PutJSON(ctx(t), s, "typed", in)
	if err != nil {
		t.Fatalf("PutJSON: %v", err)
	}
	out, cp, err := pgcheckpoint.LatestJSON[snapshot](ctx(t), s, "typed")
	if err != nil || cp.ID != id || out.Version != 2 || len(out.Steps) != 2 || out.Steps[1] != "act" || cp.Version != 2 {
		t.Fatalf("GetJSON = %+v %+v %v; want %+v", out, cp, err, in)
	}
	if _, err := pgcheckpoint.PutJSON(ctx(t), s, "typed", []int{1}); !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
		t.Fatalf("PutJSON of a slice: err = %v, want ErrInvalidSnapshot", err)
	}
}

func testConcurrentPuts(t *testing.T, newStore NewStore) {
	const writers, each, cap = 4, 10, 5
	s := newStore(t, pgcheckpoint.Options{MaxCheckpointsPerThread: cap})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Put(ctx(t), "concurrent", []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	mustPut(t, s, "concurrent", `{"last": true}`)
	if got := ids(t, s, "concurrent"); len(got) != cap {
		t.Fatalf("after concurrent writers and one more put the thread holds %d checkpoints, want the cap %d", len(got), cap)
	}
}
