package pgcheckpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// noDB fails every call: tests that must not reach a database use it.
type noDB struct{}

func (noDB) ExecContext(context.Context, string, ...any) (sql.Result, error) { panic("no database") }
func (noDB) QueryContext(context.Context, string, ...any) (*sql.Rows, error) { panic("no database") }
func (noDB) QueryRowContext(context.Context, string, ...any) *sql.Row        { panic("no database") }
func (noDB) BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)        { panic("no database") }

func TestIDsStrictlyIncreasing(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clocks := map[string]func() time.Time{
		"frozen": func() time.Time { return base },
		"backward": func() func() time.Time {
			now := base
			return func() time.Time { now = now.Add(-time.Millisecond); return now }
		}(),
		"real": time.Now,
	}
	for name, clock := range clocks {
		g := &idGen{clock: clock}
		prev := ""
		for i := range 100000 {
			u := g.next()
			s := u.String()
			if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
				t.Fatalf("%s: id %s is not a UUIDv7", name, s)
			}
			if s <= prev {
				t.Fatalf("%s: id %d %s does not sort after %s", name, i, s, prev)
			}
			prev = s
		}
	}
}

func TestIDTimestampFollowsClock(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	g := &idGen{clock: func() time.Time { return at }}
	u := g.next()
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec).UTC(); !got.Equal(at) {
		t.Fatalf("id time = %v, want %v", got, at)
	}
}

func TestNextAfterFloor(t *testing.T) {
	t.Parallel()
	clock := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &idGen{clock: func() time.Time { return clock }}
	// Floors within a day of the clock (a lagging clock): the generator follows them for good. Floors
	// further ahead are stepped over for one put only (TestNextAfterExtremeIDs).
	ms := fmt.Sprintf("%012x", clock.Add(time.Hour).UnixMilli())
	for _, floor := range []string{
		ms[:8] + "-" + ms[8:] + "-7000-8000-000000000000",
		ms[:8] + "-" + ms[8:] + "-7fff-bfff-ffffffffffff", // counter exhausted: the millisecond must roll over
	} {
		f := uuid.MustParse(floor)
		u, err := g.nextAfter(f)
		if err != nil || u.String() <= floor || u.Version() != 7 {
			t.Fatalf("nextAfter(%s) = %s, %v; want a UUIDv7 above it", floor, u, err)
		}
		if v := g.next(); v.String() <= u.String() {
			t.Fatalf("next after nextAfter went back: %s <= %s", v, u)
		}
	}
}

// Defect 5 of issue 10: one extreme id must not break id generation for the process. A head at the end
// of the id space has no successor (a typed error for that thread only), and a far-future head is stepped
// over for that put without moving the ids of every other thread.
func TestNextAfterExtremeIDs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	g := &idGen{clock: func() time.Time { return now }}
	before := g.next()
	if _, err := g.nextAfter(uuid.MustParse("ffffffff-ffff-ffff-ffff-ffffffffffff")); !errors.Is(err, ErrInvalidCheckpointID) {
		t.Fatalf("nextAfter(max) error = %v, want ErrInvalidCheckpointID", err)
	}
	near := "ffffffff-fffe-7fff-bfff-ffffffffffff"
	u, err := g.nextAfter(uuid.MustParse(near))
	if err != nil || u.String() <= near {
		t.Fatalf("nextAfter(%s) = %s, %v; want an id above it", near, u, err)
	}
	v := g.next()
	if v.String() <= before.String() {
		t.Fatalf("next went back: %s <= %s", v, before)
	}
	sec, _ := v.Time().UnixTime()
	if got := time.Unix(sec, 0).UTC(); got.Sub(now) > time.Second || now.Sub(got) > time.Second {
		t.Fatalf("after a far-future head, the next id's time is %v, want the clock's %v", got, now)
	}
}

// A generator that learns its clock lags (nextAfter of a newer id) keeps following the other writers'
// time, so its next ids do not each have to be stepped over their ids again; a stray id more than a day
// ahead is stepped over but not learnt.
func TestNextAfterLearnsLag(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	g := &idGen{clock: func() time.Time { return now }}
	ahead := (&idGen{clock: func() time.Time { return now.Add(time.Hour) }}).next()
	if _, err := g.nextAfter(ahead); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	sec, nsec := g.next().Time().UnixTime()
	if got, want := time.Unix(sec, nsec).UTC(), now.Add(time.Hour); !got.Equal(want) {
		t.Fatalf("after learning a lag of an hour, id time = %v, want %v", got, want)
	}

	h := &idGen{clock: func() time.Time { return now }}
	far := (&idGen{clock: func() time.Time { return now.Add(48 * time.Hour) }}).next()
	if u, err := h.nextAfter(far); err != nil || u.String() <= far.String() {
		t.Fatalf("nextAfter(%s) = %s, want above it", far, u)
	}
	now = now.Add(time.Second)
	h.ms = 0 // forget the state: only the learnt lag may move the time
	sec, nsec = h.next().Time().UnixTime()
	if got := time.Unix(sec, nsec).UTC(); !got.Equal(now) {
		t.Fatalf("a lag over a day was learnt: id time = %v, want %v", got, now)
	}
}
