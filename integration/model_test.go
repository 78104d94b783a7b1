package integration

// The sequential model of one thread that the linearizability checker (linearizability_test.go) holds
// every history against. It is the behaviour contract of ../shared/docs/design.md, written as a state
// machine: a thread is the list of its checkpoints, oldest first, each named by its id and by the tag of
// the put that wrote it (every put of a run writes a snapshot with a tag of its own, so a read says which
// put it sees). Porcupine partitions a history by thread, so the model knows one thread only.

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind names an operation of the model.
type opKind string

const (
	opPut          opKind = "put"       // Put: append, trim to the newest Cap and Budget
	opPutAfter     opKind = "putafter"  // PutAfter(Head): append only if Head is the newest ("" = empty thread)
	opGetLatest    opKind = "get"       // Get(thread, ""): the newest checkpoint
	opGetByID      opKind = "getid"     // Get(thread, ID)
	opList         opKind = "list"      // List(thread, Limit -1): every checkpoint, newest first
	opDeleteOne    opKind = "delete"    // Delete(thread, ID)
	opDeleteThread opKind = "deleteall" // Delete(thread, "")
	opPrune        opKind = "prune"     // Prune(OlderThan tiny): removes some of the thread's older checkpoints, never the newest
	// opFork is Fork(Thread, ID, To, History) as a client calls it. The history records it as two
	// operations, one per thread, which porcupine checks apart (it checks each thread's partition on its
	// own): opForkFrom in the source thread, a read of whether checkpoint ID exists, and opForkInto in the
	// target thread, an insert into an empty thread of the copies.
	opFork     opKind = "fork"
	opForkFrom opKind = "forkfrom" // the source half: ok or ErrThreadExists: ID existed; ErrNotFound: it did not
	opForkInto opKind = "forkinto" // the target half: ok: the thread was empty and now holds the copies
	// Leases (lease.go): Acquire(Thread, Owner, TTL), and through the client's lease of the thread (its
	// token is the output's), Renew(TTL), Release and Put. Expiry is the server's clock: see mLease.
	opAcquire  opKind = "acquire"  // ok: a new grant, token Output.Token; held: another owner's lease was in force
	opRenew    opKind = "renew"    // ok: the lease was in force and is now until TTL after; lost: it was not
	opRelease  opKind = "release"  // ok: the lease is no longer in force (it may have ended before)
	opLeasePut opKind = "leaseput" // Put through the lease: as opPut while the lease is in force; lost: nothing written
)

// isLease reports whether kind is a lease operation.
func isLease(kind opKind) bool {
	return kind == opAcquire || kind == opRenew || kind == opRelease || kind == opLeasePut
}

// mInput is what a client asked for. Cap and Budget are the retention policy of the table the thread
// lives in (Budget 0: no byte budget; a checkpoint's size is its tag's checkerSnapshot's).
type mInput struct {
	Thread string
	Kind   opKind
	Cap    int
	Budget int64
	Tag    int    // puts: the tag the snapshot carries
	Head   string // PutAfter: the head the caller names
	ID     string // GetByID, DeleteOne; forks: the checkpoint forked
	// Forks: the target thread, whether the older checkpoints are copied too; for opForkInto, the tag of
	// checkpoint ID and, with History, Cands: the older checkpoints the copies may include (checkHistory
	// fills both in from the history, as it does an unknown put's id).
	From, To string
	History  bool
	Cands    []mEntry
	// Leases: the owner (one per client), the TTL of Acquire and Renew, the call's time (ns from the
	// epoch's start, as the history's), and Prev: through the lease the client held before its last grant.
	Owner string
	TTL   time.Duration
	At    int64
	Prev  bool
	Via   string // how it ran, for the visualisation: "", "tx", "timeout", "stmt-timeout", "proc1", ...
}

// outcome says what an operation's result tells the model.
type outcome int

const (
	// done: the call returned without error; the rest of mOutput is the result.
	done outcome = iota
	// unknown: an error after which the operation may or may not have taken effect (a broken
	// connection, a deadline, a server error, a retry loop that gave up). The history gives it no return
	// time, so it may take effect at any moment after its call, or never.
	unknown
	// failed: an error that means nothing was written (invalid input, a caller's transaction that was
	// rolled back): no effect on the thread, nothing to check.
	failed
	// conflict: a PutAfter returned ErrConflict: the head was not the one named, nothing was written.
	conflict
	// notFound: a Get returned ErrNotFound, or a Fork did (its source checkpoint did not exist).
	notFound
	// exists: a Fork returned ErrThreadExists: the target thread had checkpoints, nothing was written.
	// The source is checked first, so the source checkpoint existed.
	exists
	// held: an Acquire returned ErrLeaseHeld: another owner's lease was in force, nothing was granted.
	held
	// lost: a lease's Put or Renew returned ErrLeaseLost: the lease was not in force, nothing was written.
	lost
	// sealBroken: an encryption error (ErrDecryptFailed, ErrKeyMissing, ErrEncryptionRequired) on an
	// encrypted epoch's table, where every client holds both keys and every row is sealed: never legal,
	// so no state follows it and the history fails.
	sealBroken
)

func (o outcome) String() string {
	return [...]string{"ok", "unknown", "failed", "conflict", "not found", "thread exists", "held", "lost", "encryption error"}[o]
}

// mEntry is one checkpoint of the model: its id and the tag of the put that wrote it. ID is "" for a
// put whose outcome was unknown and whose row no read ever saw: it matches no id a read returns.
type mEntry struct {
	ID  string
	Tag int
}

// mOutput is what the call returned.
type mOutput struct {
	Outcome outcome
	ID      string   // puts: the new id (for an unknown put, the id a read saw its tag under, if any); gets: the id read
	Tag     int      // gets: the tag of the snapshot read
	List    []mEntry // List: newest first
	Token   int64    // leases: Acquire's new token; the others: the token of the lease they went through (0: unknown)
	Ret     int64    // leases: the return's time (ns from the epoch's start; meaningless for an unknown outcome)
}

// mState is the model's state of one thread: its checkpoints, oldest first (ids increase along the
// list), and its lease. Values are never changed once made (porcupine requires a pure step function).
type mState struct {
	entries []mEntry
	lease   mLease
	key     string // canonical text: equality and hash
}

// mLease is what the model knows of a thread's lease: the highest token granted (a lower bound, when an
// Acquire whose outcome is unknown may have granted one more) and the current grant, the newest, which
// alone can be in force. The model does not know the server's clock, only that the now() of a statement
// lies between its call and its return: the current grant may expire at any instant from Until (its
// Acquire's or last Renew's call + the TTL) to Ends (their return + the TTL). An operation that sees it
// ended by expiry (a Put or Renew that lost it, another owner's Acquire) must return after Until; one
// that finds it in force (a Put or Renew that succeeds, an Acquire that finds it held) must be called
// before Ends.
type mLease struct {
	Top   int64  // the highest token granted, or a lower bound on it
	Owner string // the current grant's owner ("": never granted)
	Token int64  // the current grant's token (0: granted by an Acquire whose outcome is unknown)
	Live  bool   // the current grant may be in force: not released, not seen expired
	Until int64  // ns from the epoch's start: the current grant is in force at least until then, unless released
	Ends  int64  // ns from the epoch's start: the current grant is not in force after then (noEnd: unknown)
}

// noEnd is the Ends of a grant or Renew whose outcome is unknown: it may land at any instant.
const noEnd = math.MaxInt64 / 2

// clockSlack is how far the server's clock may run ahead of the checker's over one lease's TTL (the
// server's now() against the test's monotonic clock, on one machine): far more than any slew.
const clockSlack = int64(5 * time.Millisecond)

// with is the state with s's lease and these checkpoints.
func (s *mState) with(entries []mEntry) *mState { return makeState(entries, s.lease) }

// leased is the state with s's checkpoints and lease l.
func (s *mState) leased(l mLease) *mState { return makeState(s.entries, l) }

// makeState is the state of these checkpoints and lease l, with its key.
func makeState(entries []mEntry, l mLease) *mState {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s:%d,", e.ID, e.Tag)
	}
	if l.Owner != "" {
		fmt.Fprintf(&b, "|%d %s %d %t %d %d", l.Top, l.Owner, l.Token, l.Live, l.Until, l.Ends)
	}
	return &mState{entries: entries, lease: l, key: b.String()}
}

// newest is the thread's head, ok false when it is empty.
func (s *mState) newest() (mEntry, bool) {
	if len(s.entries) == 0 {
		return mEntry{}, false
	}
	return s.entries[len(s.entries)-1], true
}

// maxKnownID is the largest id of the thread that some call has revealed ("" when none).
func (s *mState) maxKnownID() string {
	for _, e := range slices.Backward(s.entries) {
		if e.ID != "" {
			return e.ID
		}
	}
	return ""
}

// holds reports whether id is one of the thread's checkpoints.
func (s *mState) holds(id string) bool {
	return slices.ContainsFunc(s.entries, func(e mEntry) bool { return e.ID == id })
}

// appended is the state after a put of e, trimmed to the newest limit checkpoints (limit <= 0: no cap)
// and to the newest whose sizes sum to at most budget bytes, at least e (budget 0: none).
func (s *mState) appended(e mEntry, limit int, budget int64) *mState {
	next := append(slices.Clip(slices.Clone(s.entries)), e)
	if limit > 0 && len(next) > limit {
		next = next[len(next)-limit:]
	}
	if budget > 0 {
		sum, keep := int64(0), 0
		for _, x := range slices.Backward(next) {
			if sum += sizeOf(x.Tag); sum > budget && keep > 0 {
				break
			}
			keep++
		}
		next = next[len(next)-keep:]
	}
	return s.with(next)
}

// sizeOf is the size of the snapshot of a tag's put (0 for the tags no put writes: see completeForks).
func sizeOf(tag int) int64 {
	if tag <= 0 {
		return 0
	}
	return int64(len(checkerSnapshot(tag)))
}

// without is the state with the checkpoints for which drop is true removed.
func (s *mState) without(drop func(i int, e mEntry) bool) *mState {
	var next []mEntry
	for i, e := range s.entries {
		if !drop(i, e) {
			next = append(next, e)
		}
	}
	return s.with(next)
}

// step is the model's transition: the states the thread can be in after in returned out, starting from
// s; none when that result is impossible from s.
func step(s *mState, in mInput, out mOutput) []*mState {
	switch out.Outcome {
	case failed:
		return []*mState{s}
	case sealBroken:
		return nil
	}
	switch in.Kind {
	case opPut:
		return stepPut(s, in, out, true)
	case opPutAfter:
		head, ok := s.newest()
		matches := (in.Head == "" && !ok) || (in.Head != "" && ok && head.ID == in.Head)
		if out.Outcome == conflict {
			return when(!matches, s)
		}
		if out.Outcome == unknown && !matches {
			return []*mState{s} // had it run here it would have conflicted
		}
		return stepPut(s, in, out, matches)
	case opGetLatest:
		head, ok := s.newest()
		if out.Outcome == notFound {
			return when(!ok, s)
		}
		return when(ok && head.ID == out.ID && head.Tag == out.Tag, s)
	case opGetByID:
		i := slices.IndexFunc(s.entries, func(e mEntry) bool { return e.ID == in.ID })
		if out.Outcome == notFound {
			return when(i < 0, s)
		}
		return when(i >= 0 && out.ID == in.ID && s.entries[i].Tag == out.Tag, s)
	case opList:
		want := slices.Clone(s.entries)
		slices.Reverse(want)
		return when(slices.Equal(want, out.List), s)
	case opDeleteOne:
		return []*mState{s.without(func(_ int, e mEntry) bool { return e.ID == in.ID })}
	case opDeleteThread:
		return []*mState{s.with(nil)}
	case opPrune:
		return pruned(s)
	case opForkFrom:
		switch out.Outcome {
		case notFound:
			return when(!s.holds(in.ID), s)
		case done, exists:
			return when(s.holds(in.ID), s)
		}
		return []*mState{s} // unknown: not recorded (a read that failed), but harmless
	case opForkInto:
		switch out.Outcome {
		case notFound:
			return []*mState{s} // the source is checked first: nothing is known of the target
		case exists:
			return when(len(s.entries) > 0, s)
		case done:
			if len(s.entries) > 0 {
				return nil
			}
			return forked(s, in)
		case unknown:
			if len(s.entries) > 0 {
				return []*mState{s} // had it run here it would have been refused
			}
			return append([]*mState{s}, forked(s, in)...)
		}
	case opAcquire:
		return acquired(s, in, out)
	case opRenew, opRelease, opLeasePut:
		return throughLease(s, in, out)
	}
	panic("model: unknown operation " + string(in.Kind))
}

// stepPut appends the put's checkpoint when allowed: its id must be new and above every id of the
// thread (a put becomes the newest checkpoint).
func stepPut(s *mState, in mInput, out mOutput, allowed bool) []*mState {
	if !allowed {
		return nil
	}
	if out.ID != "" && (s.holds(out.ID) || out.ID <= s.maxKnownID()) {
		return nil
	}
	return []*mState{s.appended(mEntry{ID: out.ID, Tag: in.Tag}, in.Cap, in.Budget)}
}

// acquired is every state an Acquire by in.Owner that returned out can leave. A grant needs the current
// one to be the owner's or no longer in force (released, or expired: not before its Until); its token is
// above every earlier one, and it is in force at least until the call + the TTL. With an unknown outcome
// it may land at any instant, or never, with a token the model does not know.
func acquired(s *mState, in mInput, out mOutput) []*mState {
	l := s.lease
	switch out.Outcome {
	case held:
		return when(l.mayHold(in.At) && l.Owner != in.Owner, s)
	case done:
		if out.Token <= l.Top || (l.Owner != in.Owner && !l.canEnd(out.Ret)) {
			return nil
		}
		return []*mState{s.leased(grant(in, out.Token, out.Token, out.Ret+int64(in.TTL)))}
	case unknown:
		return []*mState{s, s.leased(grant(in, l.Top+1, 0, noEnd))}
	}
	return nil
}

// grant is the lease after a grant to in.Owner of token (0: unknown) that ends by ends, top the highest
// token since.
func grant(in mInput, top, token, ends int64) mLease {
	return mLease{Top: top, Owner: in.Owner, Token: token, Live: true, Until: in.At + int64(in.TTL), Ends: ends}
}

// canEnd reports whether the current grant may have ended by an instant before ret: it is no longer in
// force, or it may have expired by then (the server's clock past its Until).
func (l mLease) canEnd(ret int64) bool {
	return !l.Live || ret+clockSlack >= l.Until
}

// mayHold reports whether the current grant may be in force at an instant after at: it is live, and at
// is before its Ends.
func (l mLease) mayHold(at int64) bool {
	return l.Live && at < l.Ends+clockSlack
}

// throughLease is every state a Renew, Release or Put through the lease of token out.Token that returned
// out can leave. Only the current grant, in force, renews or puts; a lease not in force was superseded,
// released or expired. Losing the current grant ends it, by expiry (not before its Until); a Release of it
// ends it; a Renew moves its Until and Ends to the call and the return + the TTL (an unknown one may
// have: the earlier Until, no Ends).
func throughLease(s *mState, in mInput, out mOutput) []*mState {
	l := s.lease
	// The lease it went through: token out.Token (tokens start at 1: an unknown grant's 0 matches none);
	// for an unknown outcome without a token (its client process was killed), any lease of the owner's.
	mine := (out.Token != 0 && l.Token == out.Token) || (out.Token == 0 && l.Owner == in.Owner)
	inForce := mine && l.mayHold(in.At)
	ended := l
	ended.Live = false
	switch {
	case !inForce:
		// Nothing happens; only an Acquire makes a grant current and in force.
		return when(out.Outcome != done || in.Kind == opRelease, s)
	case out.Outcome == lost:
		return when(l.canEnd(out.Ret), s.leased(ended))
	case in.Kind == opRelease && out.Outcome == done:
		return []*mState{s.leased(ended)}
	case in.Kind == opRelease:
		return []*mState{s, s.leased(ended)}
	case in.Kind == opRenew:
		renewed := l
		renewed.Until, renewed.Ends = in.At+int64(in.TTL), out.Ret+int64(in.TTL)
		if out.Outcome == unknown {
			renewed.Until, renewed.Ends = min(l.Until, renewed.Until), noEnd
		}
		return []*mState{s.leased(renewed)}
	}
	return stepPut(s, in, out, true)
}

// pruned is every state Prune can leave: any subset of the older checkpoints removed, never the newest.
// (Which ones are old enough depends on created_at, which the model does not know.)
func pruned(s *mState) []*mState {
	n := len(s.entries)
	if n <= 1 {
		return []*mState{s}
	}
	var out []*mState
	for mask := 0; mask < 1<<(n-1); mask++ {
		out = append(out, s.without(func(i int, _ mEntry) bool { return i < n-1 && mask&(1<<i) != 0 }))
	}
	return out
}

// forked is every state a fork into an empty thread can leave: the copy of checkpoint in.ID and, with
// in.History, copies of any of the older candidates in.Cands that together keep within the cap and the
// byte budget (Fork copies the newest that the retention policy keeps, the forked one always). The model
// knows only the candidates, the older checkpoints that reads of the target revealed, not which
// checkpoints the source held at the fork's instant: a copy no read of the target ever saw is one that
// left the target before any list, and a model without it explains the same reads.
func forked(s *mState, in mInput) []*mState {
	top := mEntry{ID: in.ID, Tag: in.Tag}
	if !in.History {
		return []*mState{s.with([]mEntry{top})}
	}
	cands := in.Cands // oldest first, ids below in.ID
	if len(cands) > 12 {
		cands = cands[len(cands)-12:] // a bound on the states; more means a bug elsewhere already
	}
	var out []*mState
	for mask := 0; mask < 1<<len(cands); mask++ {
		var es []mEntry
		size := sizeOf(in.Tag)
		for i, e := range cands {
			if mask&(1<<i) != 0 {
				es = append(es, e)
				size += sizeOf(e.Tag)
			}
		}
		if (in.Cap > 0 && len(es)+1 > in.Cap) || (in.Budget > 0 && len(es) > 0 && size > in.Budget) {
			continue
		}
		out = append(out, s.with(append(es, top)))
	}
	return out
}

// when returns s if ok, else no state.
func when(ok bool, s *mState) []*mState {
	if ok {
		return []*mState{s}
	}
	return nil
}

// threadModel is the model as porcupine takes it.
var threadModel = (&porcupine.NondeterministicModel{
	Partition: partitionByThread,
	Init:      func() []any { return []any{makeState(nil, mLease{})} },
	Step: func(state, input, output any) []any {
		var out []any
		for _, s := range step(state.(*mState), input.(mInput), output.(mOutput)) {
			out = append(out, s)
		}
		return out
	},
	Equal: func(a, b any) bool { return a.(*mState).key == b.(*mState).key },
	Hash: func(s any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(s.(*mState).key))
		return h.Sum64()
	},
	DescribeOperation: describeOperation,
	DescribeState: func(s any) string {
		st := s.(*mState)
		return describeEntries(st.entries) + " " + st.lease.String()
	},
}).ToModel()

// partitionByThread splits a history into one history per thread.
func partitionByThread(history []porcupine.Operation) [][]porcupine.Operation {
	var order []string
	parts := map[string][]porcupine.Operation{}
	for _, op := range history {
		th := op.Input.(mInput).Thread
		if _, ok := parts[th]; !ok {
			order = append(order, th)
		}
		parts[th] = append(parts[th], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, th := range order {
		out = append(out, parts[th])
	}
	return out
}

// shortID is the end of a UUIDv7: the part that differs between ids made close together.
func shortID(id string) string {
	if id == "" {
		return "?"
	}
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// String renders a lease state, e.g. "lease c1 token 3 in force until 312.0-320.0ms (top 3)".
func (l mLease) String() string {
	if l.Owner == "" {
		return "no lease"
	}
	state := fmt.Sprintf("in force until %.1f-%.1fms", float64(l.Until)/1e6, float64(l.Ends)/1e6)
	switch {
	case !l.Live:
		state = "ended"
	case l.Ends == noEnd:
		state = fmt.Sprintf("in force until %.1fms or later", float64(l.Until)/1e6)
	}
	return fmt.Sprintf("lease %s token %d %s (top %d)", l.Owner, l.Token, state, l.Top)
}

// describeEntries renders checkpoints as "id#tag", oldest first.
func describeEntries(es []mEntry) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("%s#%d", shortID(e.ID), e.Tag)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// describeOperation renders one operation for the visualisation, e.g. "put #17 (cap 3) -> 1a2b3c4d".
func describeOperation(input, output any) string {
	in, out := input.(mInput), output.(mOutput)
	var call string
	switch in.Kind {
	case opPut:
		call = fmt.Sprintf("put #%d", in.Tag)
	case opPutAfter:
		call = fmt.Sprintf("putAfter(%s) #%d", shortID(in.Head), in.Tag)
	case opGetByID, opDeleteOne:
		call = fmt.Sprintf("%s(%s)", in.Kind, shortID(in.ID))
	case opAcquire:
		call = fmt.Sprintf("acquire(%s, %v)", in.Owner, in.TTL)
	case opRenew, opRelease, opLeasePut:
		call = fmt.Sprintf("%s(%s token %d, %v)", in.Kind, in.Owner, out.Token, in.TTL)
		if in.Kind == opLeasePut {
			call += fmt.Sprintf(" #%d", in.Tag)
		}
	case opFork, opForkFrom, opForkInto:
		call = fmt.Sprintf("%s(%s %s#%d -> %s)", in.Kind, in.From, shortID(in.ID), in.Tag, in.To)
		if in.History {
			call += " history"
			if len(in.Cands) > 0 {
				call += " of " + describeEntries(in.Cands)
			}
		}
	default:
		call = string(in.Kind)
	}
	call += fmt.Sprintf(" cap %d", in.Cap)
	if in.Budget > 0 {
		call += fmt.Sprintf(" budget %d", in.Budget)
	}
	if in.Via != "" {
		call += " [" + in.Via + "]"
	}
	res := out.Outcome.String()
	if out.Outcome == done {
		switch in.Kind {
		case opPut, opPutAfter, opLeasePut:
			res = shortID(out.ID)
		case opAcquire:
			res = fmt.Sprintf("token %d", out.Token)
		case opGetLatest, opGetByID:
			res = fmt.Sprintf("%s#%d", shortID(out.ID), out.Tag)
		case opList:
			res = describeEntries(out.List)
		}
	} else if out.Outcome == unknown && out.ID != "" {
		res += " (seen as " + shortID(out.ID) + ")"
	}
	return call + " -> " + res
}

// TestLinearizableModel checks the model itself on small histories: what it must accept and what it
// must reject, with the defect-1 history (a put overlapping a delete leaves one row) among the latter.
func TestLinearizableModel(t *testing.T) {
	op := func(client int, call, ret int64, in mInput, out mOutput) porcupine.Operation {
		in.Thread, in.Cap = "t", 3
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	put := func(c int, call, ret int64, tag int, id string) porcupine.Operation {
		return op(c, call, ret, mInput{Kind: opPut, Tag: tag}, mOutput{ID: id})
	}
	list := func(c int, call, ret int64, es ...mEntry) porcupine.Operation {
		return op(c, call, ret, mInput{Kind: opList}, mOutput{List: es})
	}
	const never = 1 << 40
	// Under a byte budget that holds the snapshots of tags 2 and 3 exactly, puts 1-3 keep 2 and 3.
	budget := int64(len(checkerSnapshot(2)) + len(checkerSnapshot(3)))
	putB := func(c int, call, ret int64, tag int, id string) porcupine.Operation {
		return op(c, call, ret, mInput{Kind: opPut, Tag: tag, Budget: budget}, mOutput{ID: id})
	}
	cases := []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"puts trim to the cap", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), put(0, 2, 3, 2, "b"), put(0, 4, 5, 3, "c"), put(0, 6, 7, 4, "d"),
			list(0, 8, 9, mEntry{"d", 4}, mEntry{"c", 3}, mEntry{"b", 2}),
		}, true},
		{"puts trim to the byte budget", []porcupine.Operation{
			putB(0, 0, 1, 1, "a"), putB(0, 2, 3, 2, "b"), putB(0, 4, 5, 3, "c"),
			list(0, 8, 9, mEntry{"c", 3}, mEntry{"b", 2}),
		}, true},
		{"no put keeps beyond the byte budget", []porcupine.Operation{
			putB(0, 0, 1, 1, "a"), putB(0, 2, 3, 2, "b"), putB(0, 4, 5, 3, "c"),
			list(0, 8, 9, mEntry{"c", 3}, mEntry{"b", 2}, mEntry{"a", 1}),
		}, false},
		{"a put keeps its own checkpoint however small the budget", []porcupine.Operation{
			op(0, 0, 1, mInput{Kind: opPut, Tag: 1, Budget: 1}, mOutput{ID: "a"}),
			op(0, 2, 3, mInput{Kind: opPut, Tag: 2, Budget: 1}, mOutput{ID: "b"}),
			list(0, 8, 9, mEntry{"b", 2}),
		}, true},
		{"a put must become the newest", []porcupine.Operation{
			put(0, 0, 1, 1, "b"), put(0, 2, 3, 2, "a"),
		}, false},
		{"concurrent puts in either order", []porcupine.Operation{
			put(0, 0, 10, 1, "b"), put(1, 0, 10, 2, "a"),
			list(0, 11, 12, mEntry{"b", 1}, mEntry{"a", 2}),
		}, true},
		{"an unknown put may have happened", []porcupine.Operation{
			put(0, 0, 1, 1, "a"),
			op(1, 2, never, mInput{Kind: opPut, Tag: 2}, mOutput{Outcome: unknown, ID: "b"}),
			list(0, 5, 6, mEntry{"b", 2}, mEntry{"a", 1}),
		}, true},
		{"an unknown put may not have happened", []porcupine.Operation{
			put(0, 0, 1, 1, "a"),
			op(1, 2, never, mInput{Kind: opPut, Tag: 2}, mOutput{Outcome: unknown}),
			list(0, 5, 6, mEntry{"a", 1}),
		}, true},
		{"a fenced put on a stale head conflicts", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), put(0, 2, 3, 2, "b"),
			op(0, 4, 5, mInput{Kind: opPutAfter, Head: "a", Tag: 3}, mOutput{Outcome: conflict}),
			op(0, 6, 7, mInput{Kind: opPutAfter, Head: "b", Tag: 4}, mOutput{ID: "c"}),
			op(0, 8, 9, mInput{Kind: opGetLatest}, mOutput{ID: "c", Tag: 4}),
		}, true},
		{"a fenced put on the right head cannot conflict", []porcupine.Operation{
			put(0, 0, 1, 1, "a"),
			op(0, 4, 5, mInput{Kind: opPutAfter, Head: "a", Tag: 3}, mOutput{Outcome: conflict}),
		}, false},
		{"prune keeps the newest", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), put(0, 2, 3, 2, "b"), put(0, 4, 5, 3, "c"),
			op(0, 6, 7, mInput{Kind: opPrune}, mOutput{}),
			list(0, 8, 9, mEntry{"c", 3}, mEntry{"a", 1}),
			op(0, 10, 11, mInput{Kind: opPrune}, mOutput{}),
			list(0, 12, 13, mEntry{"c", 3}),
		}, true},
		{"a whole-thread delete removes what a read saw before it took effect", []porcupine.Operation{
			put(0, 0, 1, 1, "a"),
			op(0, 2, 10, mInput{Kind: opDeleteThread}, mOutput{}),
			put(1, 3, 6, 2, "b"),
			list(1, 7, 8, mEntry{"b", 2}, mEntry{"a", 1}),
			list(1, 11, 12, mEntry{"b", 2}),
		}, false},
		{"defect 1: a put overlapping a delete of one checkpoint empties the thread", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), put(0, 2, 3, 2, "b"), put(0, 4, 5, 3, "c"),
			op(0, 6, 10, mInput{Kind: opDeleteOne, ID: "b"}, mOutput{}),
			put(1, 7, 11, 4, "d"),
			list(0, 12, 13, mEntry{"d", 4}),
		}, false},
	}
	// Forks: the source half in thread t, the target half in thread u, checked apart.
	from := func(c int, call, ret int64, id string, o outcome) porcupine.Operation {
		return op(c, call, ret, mInput{Kind: opForkFrom, From: "t", To: "u", ID: id}, mOutput{Outcome: o})
	}
	inU := func(x porcupine.Operation) porcupine.Operation {
		in := x.Input.(mInput)
		in.Thread = "u"
		x.Input = in
		return x
	}
	into := func(c int, call, ret int64, in mInput, o outcome) porcupine.Operation {
		in.Kind, in.From, in.To = opForkInto, "t", "u"
		return inU(op(c, call, ret, in, mOutput{Outcome: o}))
	}
	withCap := func(n int, x porcupine.Operation) porcupine.Operation {
		in := x.Input.(mInput)
		in.Cap = n
		x.Input = in
		return x
	}
	cases = append(cases, []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"fork: the source checkpoint existed and the target holds its copy", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), put(0, 2, 3, 2, "b"),
			from(0, 4, 5, "a", done), into(0, 4, 5, mInput{ID: "a", Tag: 1}, done),
			inU(list(0, 6, 7, mEntry{"a", 1})), inU(put(0, 8, 9, 3, "c")),
			inU(list(0, 10, 11, mEntry{"c", 3}, mEntry{"a", 1})),
		}, true},
		{"fork: finds a checkpoint deleted before it began", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), op(0, 2, 3, mInput{Kind: opDeleteOne, ID: "a"}, mOutput{}),
			from(0, 4, 5, "a", done),
		}, false},
		{"fork: a wrong copy in the target", []porcupine.Operation{
			into(0, 4, 5, mInput{ID: "a", Tag: 1}, done), inU(list(0, 6, 7, mEntry{"b", 2})),
		}, false},
		{"fork: not found while the checkpoint exists", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), from(0, 2, 3, "a", notFound),
		}, false},
		{"fork: not found overlapping the delete", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), op(1, 2, 6, mInput{Kind: opDeleteOne, ID: "a"}, mOutput{}),
			from(0, 3, 5, "a", notFound), into(0, 3, 5, mInput{ID: "a", Tag: 1}, notFound),
			inU(list(0, 7, 8)),
		}, true},
		{"fork: thread exists when the target has a checkpoint", []porcupine.Operation{
			put(0, 0, 1, 1, "a"), inU(put(1, 0, 1, 2, "b")),
			from(0, 2, 3, "a", exists), into(0, 2, 3, mInput{ID: "a", Tag: 1}, exists),
			inU(list(0, 4, 5, mEntry{"b", 2})),
		}, true},
		{"fork: thread exists into an empty target", []porcupine.Operation{
			into(0, 2, 3, mInput{ID: "a", Tag: 1}, exists),
		}, false},
		{"fork: ok into a target that has a checkpoint (the copy inserted anyway)", []porcupine.Operation{
			inU(put(1, 0, 1, 2, "b")), into(0, 2, 3, mInput{ID: "a", Tag: 1}, done),
		}, false},
		{"fork: an unknown fork may have happened", []porcupine.Operation{
			into(0, 2, never, mInput{ID: "a", Tag: 1}, unknown), inU(list(0, 4, 5, mEntry{"a", 1})),
		}, true},
		{"fork: an unknown fork may not have happened", []porcupine.Operation{
			into(0, 2, never, mInput{ID: "a", Tag: 1}, unknown), inU(list(0, 4, 5)),
			inU(put(0, 6, 7, 2, "b")), inU(list(0, 8, 9, mEntry{"b", 2})),
		}, true},
		{"fork: an unknown fork cannot land in a thread that has a checkpoint", []porcupine.Operation{
			inU(put(1, 0, 1, 2, "b")), into(0, 2, never, mInput{ID: "a", Tag: 1}, unknown),
			inU(list(0, 4, 5, mEntry{"b", 2}, mEntry{"a", 1})),
		}, false},
		{"fork with history: older copies within the cap", []porcupine.Operation{
			into(0, 2, 3, mInput{ID: "c", Tag: 3, History: true, Cands: []mEntry{{"a", 1}, {"b", 2}}}, done),
			inU(list(0, 4, 5, mEntry{"c", 3}, mEntry{"b", 2}, mEntry{"a", 1})),
		}, true},
		{"fork with history: more copies than the cap", []porcupine.Operation{
			withCap(2, inU(op(0, 2, 3, mInput{Kind: opForkInto, ID: "c", Tag: 3, History: true, Cands: []mEntry{{"a", 1}, {"b", 2}}}, mOutput{}))),
			inU(list(0, 4, 5, mEntry{"c", 3}, mEntry{"b", 2}, mEntry{"a", 1})),
		}, false},
		{"fork with history: no more than the byte budget", []porcupine.Operation{
			inU(op(0, 2, 3, mInput{Kind: opForkInto, ID: "c", Tag: 3, History: true, Budget: budget, Cands: []mEntry{{"a", 1}, {"b", 2}}}, mOutput{})),
			inU(list(0, 4, 5, mEntry{"c", 3}, mEntry{"b", 2}, mEntry{"a", 1})),
		}, false},
		{"fork without history copies one checkpoint", []porcupine.Operation{
			into(0, 2, 3, mInput{ID: "c", Tag: 3, Cands: []mEntry{{"a", 1}}}, done),
			inU(list(0, 4, 5, mEntry{"c", 3}, mEntry{"a", 1})),
		}, false},
	}...)
	// Leases: times in ms, every TTL 100 ms.
	ms := int64(time.Millisecond)
	lop := func(c int, call, ret int64, in mInput, out mOutput) porcupine.Operation {
		in.TTL, in.At, out.Ret = 100*time.Millisecond, call*ms, ret*ms
		return op(c, call*ms, ret*ms, in, out)
	}
	acq := func(c int, call, ret int64, owner string, token int64, o outcome) porcupine.Operation {
		return lop(c, call, ret, mInput{Kind: opAcquire, Owner: owner}, mOutput{Outcome: o, Token: token})
	}
	thru := func(c int, call, ret int64, kind opKind, token int64, o outcome) porcupine.Operation {
		return lop(c, call, ret, mInput{Kind: kind}, mOutput{Outcome: o, Token: token})
	}
	lput := func(c int, call, ret int64, token int64, tag int, id string, o outcome) porcupine.Operation {
		return lop(c, call, ret, mInput{Kind: opLeasePut, Tag: tag}, mOutput{Outcome: o, Token: token, ID: id})
	}
	listAt := func(c int, call, ret int64, es ...mEntry) porcupine.Operation { return list(c, call*ms, ret*ms, es...) }
	cases = append(cases, []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"lease: grant, put, renew, release, takeover, the old lease lost", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 2, 3, 1, 1, "a", done), thru(0, 4, 5, opRenew, 1, done),
			thru(0, 6, 7, opRelease, 1, done), acq(1, 8, 9, "b", 2, done), lput(0, 10, 11, 1, 2, "", lost),
			lput(1, 12, 13, 2, 3, "c", done), listAt(0, 14, 15, mEntry{"c", 3}, mEntry{"a", 1}),
		}, true},
		{"lease: another owner takes over after the TTL, the old lease's put is lost", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 10, 11, "b", 0, held), acq(1, 150, 151, "b", 2, done),
			lput(0, 152, 153, 1, 1, "", lost), lput(1, 154, 155, 2, 2, "b", done),
		}, true},
		{"lease: a takeover before the TTL could pass", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 50, 51, "b", 2, done),
		}, false},
		{"lease: a takeover before the renewed TTL could pass", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 80, 81, opRenew, 1, done), acq(1, 150, 151, "b", 2, done),
		}, false},
		{"lease: the owner acquires again at once, with a new token", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(0, 2, 3, "a", 2, done), lput(0, 4, 5, 1, 1, "", lost),
			lput(0, 6, 7, 2, 2, "b", done),
		}, true},
		{"lease: tokens must grow", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 150, 151, "b", 1, done),
		}, false},
		{"lease: a put through a superseded lease lands", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 150, 151, "b", 2, done), lput(0, 152, 153, 1, 1, "a", done),
		}, false},
		{"lease: a put through a lease lost before", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 120, 121, 1, 1, "", lost), lput(0, 130, 131, 1, 2, "b", done),
		}, false},
		{"lease: a renew of a lease lost before", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 120, 121, 1, 1, "", lost), thru(0, 130, 131, opRenew, 1, done),
		}, false},
		{"lease: a put through a released lease lands", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 2, 3, opRelease, 1, done), lput(0, 4, 5, 1, 1, "a", done),
		}, false},
		{"lease: lost before the TTL could pass", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 20, 21, 1, 1, "", lost),
		}, false},
		{"lease: a put through a lease after it surely expired", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 110, 111, 1, 1, "a", done),
		}, false},
		{"lease: a renew after the lease surely expired", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 80, 90, opRenew, 1, done), thru(0, 200, 201, opRenew, 1, done),
		}, false},
		{"lease: held after the lease surely expired", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 110, 111, "b", 0, held),
		}, false},
		{"lease: an unknown renew may have extended the lease", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 50, never, opRenew, 1, unknown), lput(1, 200, 201, 1, 1, "a", done),
		}, true},
		{"lease: a renew extends the lease to its return + the TTL", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 80, 90, opRenew, 1, done), lput(0, 185, 186, 1, 1, "a", done),
		}, true},
		{"lease: a put through a lease the model knows no token of may land while the owner's lease is in force", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lop(0, 2, never, mInput{Kind: opLeasePut, Owner: "a", Tag: 1}, mOutput{Outcome: unknown, ID: "a"}),
			listAt(1, 50, 51, mEntry{"a", 1}),
		}, true},
		{"lease: a put through a lease the model knows no token of lands after another owner's grant", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lop(0, 2, never, mInput{Kind: opLeasePut, Owner: "a", Tag: 1}, mOutput{Outcome: unknown, ID: "a"}),
			acq(1, 150, 151, "b", 2, done), listAt(1, 160, 161), listAt(1, 170, 171, mEntry{"a", 1}),
		}, false},
		{"lease: held after the lease was released", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 2, 3, opRelease, 1, done), acq(1, 4, 5, "b", 0, held),
		}, false},
		{"lease: an unknown acquire may have granted a token", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), acq(1, 150, never, "b", 0, unknown), acq(0, 300, 301, "a", 3, done),
		}, true},
		{"lease: an unknown release may have ended the lease", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), thru(0, 2, never, opRelease, 1, unknown), acq(1, 4, 5, "b", 2, done),
		}, true},
		{"lease: an unknown put through a superseded lease lands after the takeover", []porcupine.Operation{
			acq(0, 0, 1, "a", 1, done), lput(0, 2, never, 1, 1, "a", unknown), acq(1, 150, 151, "b", 2, done),
			listAt(1, 160, 161), listAt(1, 170, 171, mEntry{"a", 1}),
		}, false},
	}...)
	for _, c := range cases {
		if got := porcupine.CheckOperations(threadModel, c.history); got != c.ok {
			t.Errorf("%s: linearizable = %v, want %v", c.name, got, c.ok)
		}
	}
}
