package pgcheckpoint

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// idGen makes UUIDv7 checkpoint ids that are strictly increasing for the life of one Checkpointer, even
// within one millisecond and with an injected clock that stands still or goes back.
//
// Layout (RFC 9562): 48-bit Unix milliseconds, 4-bit version, 12-bit rand_a, 2-bit variant, 62-bit rand_b.
// rand_a and rand_b together form a 74-bit counter: a new millisecond starts it at a random value with the
// top bits clear (room to count), the same or an earlier millisecond adds a random step of 1..2^32. Mixing
// randomness into every step keeps ids of different processes in the same millisecond from colliding.
type idGen struct {
	mu    sync.Mutex
	clock func() time.Time
	skew  uint64 // milliseconds this clock is known to lag behind ids seen in the table (see nextAfter)
	ms    uint64 // milliseconds of the last id
	hi    uint64 // upper 12 bits of the counter (rand_a)
	lo    uint64 // lower 62 bits of the counter (rand_b)
}

const lo62 = 1<<62 - 1

// maxSkew bounds the lag nextAfter learns: a clock behind by more than a day is not corrected for good
// (one stray far-future id must not move every later id of the process), only stepped over each time.
const maxSkew = uint64(24 * time.Hour / time.Millisecond)

// newIDGen returns a generator reading clock (nil means time.Now).
func newIDGen(clock func() time.Time) *idGen {
	if clock == nil {
		clock = time.Now
	}
	return &idGen{clock: clock}
}

// next returns a new id greater than every id this generator returned before.
func (g *idGen) next() uuid.UUID {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance(g.now())
	return g.current()
}

// nextAfter returns a new id greater than floor and than every earlier id. It serves puts from a host
// whose clock lags behind the thread's newest id: the new checkpoint must still sort last. It also learns
// the lag (up to maxSkew), so the next ids of this generator follow the other writers' time instead of
// each having to be stepped over their ids again. A floor further ahead than maxSkew (a stray far-future
// id) is stepped over for this put only: it must not move the ids of every other thread of the process.
// A floor at the very end of the id space has no successor: ErrInvalidCheckpointID.
func (g *idGen) nextAfter(floor uuid.UUID) (uuid.UUID, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fms, fhi, flo := split(floor)
	now := g.now()
	if fms > now && fms-now+g.skew > maxSkew {
		s := idGen{ms: fms, hi: fhi, lo: flo}
		s.advance(0)
		if s.ms > maxMillis {
			return uuid.UUID{}, fmt.Errorf("the thread's newest id %s leaves no room for a newer id: %w", floor, ErrInvalidCheckpointID)
		}
		return s.current(), nil
	}
	if fms > now {
		g.skew += fms - now
	}
	if fms > g.ms || (fms == g.ms && (fhi > g.hi || (fhi == g.hi && flo > g.lo))) {
		g.ms, g.hi, g.lo = fms, fhi, flo
	}
	g.advance(g.now())
	return g.current(), nil
}

// maxMillis is the largest millisecond count an id can hold (48 bits).
const maxMillis = 1<<48 - 1

// now is the clock in Unix milliseconds, corrected by the lag learnt so far.
func (g *idGen) now() uint64 { return uint64(g.clock().UnixMilli()) + g.skew }

// advance moves the state to a fresh value for the clock reading now.
func (g *idGen) advance(now uint64) {
	var r [16]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	if now > g.ms {
		g.ms = now
		g.hi = uint64(binary.BigEndian.Uint16(r[0:2])) & 0x7ff // leave the top bit free for counting
		g.lo = binary.BigEndian.Uint64(r[2:10]) & lo62
		return
	}
	step := uint64(binary.BigEndian.Uint32(r[10:14])) + 1
	g.lo += step
	if g.lo > lo62 {
		g.lo &= lo62
		g.hi++
		if g.hi > 0xfff {
			g.hi = 0
			g.ms++ // borrow the next millisecond; ordering beats wall-clock accuracy
		}
	}
}

// current encodes the state.
func (g *idGen) current() uuid.UUID {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[0:8], g.ms<<16|0x7000|g.hi)
	binary.BigEndian.PutUint64(u[8:16], 0x8000000000000000|g.lo)
	return u
}

// split decodes an id into milliseconds and counter, whatever its version: ordering is by bytes.
func split(u uuid.UUID) (ms, hi, lo uint64) {
	a := binary.BigEndian.Uint64(u[0:8])
	b := binary.BigEndian.Uint64(u[8:16])
	return a >> 16, a & 0xfff, b & lo62
}

// parseID returns the UUID in s when s is a UUID in its 36-character form, in either case.
func parseID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}

// canonicalID returns s in the canonical lower-case form ids are stored in, when s is a UUID: an
// upper-case id names the same checkpoint.
func canonicalID(s string) (string, bool) {
	u, ok := parseID(s)
	if !ok {
		return "", false
	}
	return u.String(), true
}

// checkID returns a checkpoint id given to op in canonical form, or ErrInvalidCheckpointID naming what it
// is (what: "checkpoint id", "cursor", "expected head") when it is not a UUID. Both stores use it, so a
// malformed id gets the same answer from every call.
func checkID(what, id string) (string, error) {
	canon, ok := canonicalID(id)
	if !ok {
		return "", fmt.Errorf("%s %q is not a UUID: %w", what, id, ErrInvalidCheckpointID)
	}
	return canon, nil
}
