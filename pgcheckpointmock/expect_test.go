package pgcheckpointmock_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
)

const (
	idA = "01900000-0000-7000-8000-00000000000a"
	idB = "01900000-0000-7000-8000-00000000000b"
)

// TestHelpersMatchTheCheckpointer runs a real Checkpointer of each dialect, on the default table and a
// custom one, against the expectations the helpers register: every statement text, argument and the
// order must match what the core sends.
func TestHelpersMatchTheCheckpointer(t *testing.T) {
	t.Parallel()
	for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
		for _, tbl := range [][2]string{{"", ""}, {"agents", "state"}} {
			t.Run(d.Name()+"/"+tbl[0]+tbl[1], func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				db, mock, err := pgcheckpointmock.New()
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				where := pgcheckpointmock.Table(tbl[0], tbl[1])
				cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: d, Schema: tbl[0], Table: tbl[1], MaxCheckpointsPerThread: 3})
				if err != nil {
					t.Fatal(err)
				}
				snap := []byte(`{"version": 2, "step": 1}`)

				pgcheckpointmock.ExpectRetention(mock, d, 3, where)
				id := pgcheckpointmock.ExpectPut(mock, d, "t", snap, where, pgcheckpointmock.Cap(3))
				got, err := cp.Put(ctx, "t", snap)
				if err != nil || got != id.String() {
					t.Fatalf("Put = %q, %v; the mock saw %q", got, err, id)
				}
				// Above the cap: on CockroachDB the trim is a statement of its own.
				pgcheckpointmock.ExpectPut(mock, d, "t", snap, where, pgcheckpointmock.Cap(3), pgcheckpointmock.Seq(5), pgcheckpointmock.Trimmed(1))
				if _, err := cp.Put(ctx, "t", snap); err != nil {
					t.Fatalf("Put above the cap: %v", err)
				}
				pgcheckpointmock.ExpectPut(mock, d, "t", snap, where, pgcheckpointmock.Cap(3), pgcheckpointmock.Fence(idA), pgcheckpointmock.Seq(2))
				if _, err := cp.PutAfter(ctx, "t", idA, snap); err != nil {
					t.Fatalf("PutAfter: %v", err)
				}
				pgcheckpointmock.ExpectPut(mock, d, "t", snap, where, pgcheckpointmock.Cap(3), pgcheckpointmock.Fence(""))
				if _, err := cp.PutIfEmpty(ctx, "t", snap); err != nil {
					t.Fatalf("PutAfter empty: %v", err)
				}

				want := pgcheckpoint.Checkpoint{ID: idA, ThreadID: "t", Snapshot: snap}
				pgcheckpointmock.ExpectGetLatest(mock, d, "t", &want, where)
				if c, err := cp.Latest(ctx, "t"); err != nil || c.ID != idA || c.Version != 2 || int(c.SizeBytes) != len(snap) || string(c.Snapshot) != string(snap) {
					t.Fatalf("Get latest = %+v, %v", c, err)
				}
				pgcheckpointmock.ExpectGet(mock, d, "t", idB, nil, where)
				if _, err := cp.Get(ctx, "t", idB); !errors.Is(err, pgcheckpoint.ErrNotFound) {
					t.Fatalf("Get missing: %v", err)
				}
				pgcheckpointmock.ExpectGet(mock, d, "t", idA, &want, where)
				if c, err := cp.Get(ctx, "t", idA); err != nil || c.ID != idA {
					t.Fatalf("Get by id = %+v, %v", c, err)
				}

				page := []pgcheckpoint.Checkpoint{{ID: idB, Version: 2, SizeBytes: 10}, {ID: idA, Version: 1, SizeBytes: 9}}
				pgcheckpointmock.ExpectList(mock, d, "t", 100, page, where)
				if l, err := cp.List(ctx, "t", pgcheckpoint.ListOptions{}); err != nil || len(l) != 2 || l[0].ID != idB || l[1].Version != 1 {
					t.Fatalf("List = %+v, %v", l, err)
				}
				pgcheckpointmock.ExpectList(mock, d, "t", 1, page[1:], where, pgcheckpointmock.Before(idB))
				if l, err := cp.List(ctx, "t", pgcheckpoint.ListOptions{Limit: 1, Before: idB}); err != nil || len(l) != 1 {
					t.Fatalf("List before = %+v, %v", l, err)
				}

				pgcheckpointmock.ExpectDelete(mock, d, "t", idA, true, where)
				if err := cp.Delete(ctx, "t", idA); err != nil {
					t.Fatalf("Delete: %v", err)
				}
				pgcheckpointmock.ExpectDelete(mock, d, "t", idB, false, where)
				if err := cp.Delete(ctx, "t", idB); err != nil {
					t.Fatalf("Delete of nothing: %v", err)
				}
				pgcheckpointmock.ExpectDeleteThread(mock, d, "t", 4, where)
				if err := cp.DeleteThread(ctx, "t"); err != nil {
					t.Fatalf("Delete thread: %v", err)
				}

				now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
				infos := []pgcheckpoint.ThreadInfo{{ThreadID: "t", Checkpoints: 2, NewestID: idB, NewestAt: now, TotalBytes: 19}}
				pgcheckpointmock.ExpectThreads(mock, d, "", 100, infos, where)
				if got, err := cp.Threads(ctx, pgcheckpoint.ThreadsOptions{}); err != nil || len(got) != 1 || got[0] != infos[0] {
					t.Fatalf("Threads = %+v, %v", got, err)
				}
				if err := mock.ExpectationsWereMet(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestPutWithoutRetention: with retention off the put sends no cap (PostgreSQL) or is a lone insert
// without a transaction (CockroachDB).
func TestPutWithoutRetention(t *testing.T) {
	t.Parallel()
	for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
		db, mock, err := pgcheckpointmock.New()
		if err != nil {
			t.Fatal(err)
		}
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: d, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
		if err != nil {
			t.Fatal(err)
		}
		pgcheckpointmock.ExpectRetention(mock, d, 0)
		pgcheckpointmock.ExpectPut(mock, d, "t", []byte(`{}`), pgcheckpointmock.Cap(pgcheckpoint.NoLimit), pgcheckpointmock.Seq(500))
		if _, err := cp.Put(context.Background(), "t", []byte(`{}`)); err != nil {
			t.Errorf("%s: %v", d.Name(), err)
		}
		// An empty thread: the statement alone (no transaction on CockroachDB), then the first row.
		pgcheckpointmock.ExpectPut(mock, d, "u", []byte(`{}`), pgcheckpointmock.Cap(pgcheckpoint.NoLimit))
		if _, err := cp.Put(context.Background(), "u", []byte(`{}`)); err != nil {
			t.Errorf("%s: first row: %v", d.Name(), err)
		}
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("%s: %v", d.Name(), err)
		}
		db.Close()
	}
}

// TestPutWithByteBudget: a table whose policy has a byte budget makes the put send the statements that
// trim by bytes: PutBytes with cap and budget (PostgreSQL); InsertBytes and TrimBytes in one
// transaction (CockroachDB).
func TestPutWithByteBudget(t *testing.T) {
	t.Parallel()
	for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
		for _, cap := range []int{pgcheckpoint.NoLimit, 5} {
			db, mock, err := pgcheckpointmock.New()
			if err != nil {
				t.Fatal(err)
			}
			cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: d})
			if err != nil {
				t.Fatal(err)
			}
			pgcheckpointmock.ExpectRetention(mock, d, max(cap, 0), pgcheckpointmock.Budget(4096))
			pgcheckpointmock.ExpectPut(mock, d, "t", []byte(`{}`), pgcheckpointmock.Cap(cap), pgcheckpointmock.Budget(4096),
				pgcheckpointmock.Seq(7), pgcheckpointmock.Trimmed(2))
			if _, err := cp.Put(context.Background(), "t", []byte(`{}`)); err != nil {
				t.Errorf("%s cap %d: %v", d.Name(), cap, err)
			}
			pgcheckpointmock.ExpectPut(mock, d, "u", []byte(`{}`), pgcheckpointmock.Cap(cap), pgcheckpointmock.Budget(4096))
			if _, err := cp.Put(context.Background(), "u", []byte(`{}`)); err != nil {
				t.Errorf("%s cap %d: first row: %v", d.Name(), cap, err)
			}
			if err := mock.ExpectationsWereMet(); err != nil {
				t.Errorf("%s cap %d: %v", d.Name(), cap, err)
			}
			db.Close()
		}
	}
}

// Every statement the core sends has a field, filled with the core's own text, for both dialects and
// any table; the fields the dialect never sends are empty.
func TestStatementsForCoversEverything(t *testing.T) {
	t.Parallel()
	for _, d := range []pgcheckpoint.Dialect{pgcheckpoint.PostgreSQL, pgcheckpoint.CockroachDB} {
		for _, tbl := range [][2]string{{"", ""}, {"agents", "State"}} {
			texts, err := pgcheckpoint.Statements(d, tbl[0], tbl[1])
			if err != nil {
				t.Fatal(err)
			}
			s, err := pgcheckpointmock.StatementsFor(d, tbl[0], tbl[1])
			if err != nil {
				t.Fatalf("%s %v: %v", d.Name(), tbl, err)
			}
			v := reflect.ValueOf(s)
			filled := 0
			for i := range v.NumField() {
				name := v.Type().Field(i).Name
				text := v.Field(i).String()
				key := strings.ToLower(name[:1]) + name[1:]
				if text != "" {
					filled++
				}
				if text != texts[key] {
					t.Errorf("%s %v: field %s = %q, want pgcheckpoint's %q", d.Name(), tbl, name, text, texts[key])
				}
			}
			if filled != len(texts) {
				t.Errorf("%s %v: %d fields filled, pgcheckpoint sends %d statements", d.Name(), tbl, filled, len(texts))
			}
		}
	}
	if c := pgcheckpointmock.CockroachDB; c.Put != "" || c.LockFirst != "" || c.LockSchema != "" || c.Insert == "" || c.Trim == "" {
		t.Errorf("CockroachDB: a put is Insert and Trim, and there are no advisory locks: %+v", c)
	}
	if p := pgcheckpointmock.PostgreSQL; p.Put == "" || p.LockFirst == "" || p.LockSchema == "" || p.Insert == "" {
		t.Errorf("PostgreSQL: Put, LockFirst and LockSchema must be set: %+v", p)
	}
}

func TestStatementsFor(t *testing.T) {
	t.Parallel()
	s, err := pgcheckpointmock.StatementsFor(pgcheckpoint.CockroachDB, "agents", "state")
	if err != nil {
		t.Fatal(err)
	}
	if s.Put != "" || !strings.Contains(s.Insert, `INSERT INTO "agents"."state"`) || strings.Contains(s.Trim, "public") {
		t.Errorf("CockroachDB statements for agents.state: %+v", s)
	}
	if d, _ := pgcheckpointmock.StatementsFor(nil, "", ""); d != pgcheckpointmock.PostgreSQL {
		t.Error("the defaults must give the PostgreSQL statements for public.ziro_checkpoints")
	}
	if _, err := pgcheckpointmock.StatementsFor(nil, "bad name", ""); !errors.Is(err, pgcheckpoint.ErrInvalidIdentifier) {
		t.Errorf("bad schema name: %v, want ErrInvalidIdentifier", err)
	}
}

// TestPutVersionAsTheCheckpointer: defect 13. The put expectation reads the version as the Checkpointer
// does, from the exact key "version": before, encoding/json's case-insensitive field matching made the
// mock expect 8 for {"Version": 8} (the Checkpointer sends 0) and panic on {"VERSION": "x"}, which the
// Checkpointer accepts.
func TestPutVersionAsTheCheckpointer(t *testing.T) {
	t.Parallel()
	for _, snap := range []string{`{"Version": 8}`, `{"VERSION": "x"}`, `{"version": 3, "Version": 9}`, `{"vers\u0069on": 4}`, `{"version": 1e0}`} {
		db, mock, err := pgcheckpointmock.New()
		if err != nil {
			t.Fatal(err)
		}
		cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, 100)
		id := pgcheckpointmock.ExpectPut(mock, pgcheckpoint.PostgreSQL, "t", []byte(snap))
		if got, err := cp.Put(context.Background(), "t", []byte(snap)); err != nil || got != id.String() {
			t.Errorf("%s: Put = %q, %v; the mock expected a put of id %q", snap, got, err, id)
		}
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("%s: %v", snap, err)
		}
		db.Close()
	}
}
