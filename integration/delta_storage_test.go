package integration

import (
	"errors"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestDeltaStorageMismatch: each layout refuses the other's table with ErrStorageMismatch, before
// writing anything; a full reader still reads a delta table through its view.
func TestDeltaStorageMismatch(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			schema := newSchema(t, db)
			full := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "fulltab"})
			delta := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "deltatab", Storage: pgcheckpoint.StorageDelta})
			id, err := delta.Put(ctx, "t", []byte(`{"messages": [1, 2], "x": 1}`))
			if err != nil {
				t.Fatal(err)
			}
			deltaOnFull, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "fulltab", Storage: pgcheckpoint.StorageDelta})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := deltaOnFull.Put(ctx, "t", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrStorageMismatch) {
				t.Errorf("delta put on a full table: %v, want ErrStorageMismatch", err)
			}
			if err := deltaOnFull.EnsureSchema(ctx); !errors.Is(err, pgcheckpoint.ErrStorageMismatch) {
				t.Errorf("delta EnsureSchema on a full table: %v, want ErrStorageMismatch", err)
			}
			if _, err := deltaOnFull.Latest(ctx, "t"); !errors.Is(err, pgcheckpoint.ErrStorageMismatch) {
				t.Errorf("delta get on a full table: %v, want ErrStorageMismatch", err)
			}
			fullOnDelta, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, Table: "deltatab"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fullOnDelta.Put(ctx, "t", []byte(`{}`)); !errors.Is(err, pgcheckpoint.ErrStorageMismatch) {
				t.Errorf("full put on a delta table: %v, want ErrStorageMismatch", err)
			}
			if err := fullOnDelta.EnsureSchema(ctx); !errors.Is(err, pgcheckpoint.ErrStorageMismatch) {
				t.Errorf("full EnsureSchema on a delta table: %v, want ErrStorageMismatch", err)
			}
			cp, err := fullOnDelta.Latest(ctx, "t")
			if err != nil || cp.ID != id || !jsonbEqual(t, ctx, db, cp.Snapshot, []byte(`{"messages": [1, 2], "x": 1}`)) {
				t.Errorf("full get through the view = %s %s, %v; want %s", cp.ID, cp.Snapshot, err, id)
			}
			if list, err := delta.List(ctx, "t", pgcheckpoint.ListOptions{}); err != nil || len(list) != 1 {
				t.Errorf("after the refused writes the delta thread holds %d checkpoints (%v), want 1", len(list), err)
			}
			_ = full
		})
	}
}

// TestDeltaViewWrites: an INSERT through the view (what a TypeScript put sends) fails loudly; a DELETE
// through it (a TypeScript delete, on PostgreSQL) leaves items that the next Go put over their
// positions overwrites and the next Go delete removes, and never a wrong snapshot.
func TestDeltaViewWrites(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	ctx := testCtx(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Table: "v", Storage: pgcheckpoint.StorageDelta})
	view := `"` + schema + `"."v"`
	_, err := db.ExecContext(ctx, `INSERT INTO `+view+` (thread_id, checkpoint_id, snapshot, version, size_bytes) VALUES ('t', 'x', '{}', 0, 2)`)
	if err == nil || !strings.Contains(err.Error(), "view") {
		t.Fatalf("INSERT through the view: %v, want an error naming the view", err)
	}
	a, err := cp.Put(ctx, "t", []byte(`{"messages": ["a", "b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Put(ctx, "t", []byte(`{"messages": ["a", "b", "c"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM `+view+` WHERE thread_id = 't' AND checkpoint_id <> $1`, a); err != nil {
		t.Fatalf("DELETE through the view: %v", err)
	}
	// The cache's basis is gone: the put learns the newest head from the statement and plans again.
	if _, err := cp.Put(ctx, "t", []byte(`{"messages": ["a", "b", "d"]}`)); err != nil {
		t.Fatal(err)
	}
	got, err := cp.Latest(ctx, "t")
	if err != nil || !jsonbEqual(t, ctx, db, got.Snapshot, []byte(`{"messages": ["a", "b", "d"]}`)) {
		t.Fatalf("newest = %s, %v; want messages a, b, d", got.Snapshot, err)
	}
	if err := cp.Delete(ctx, "t", a); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+schema+`"."v_items" AS i WHERE NOT EXISTS (
		SELECT 1 FROM "`+schema+`"."v_heads" AS h, unnest(h.lo, h.hi) AS u(lo, hi) WHERE h.thread_id = i.thread_id AND u.lo <= i.pos AND i.pos < u.hi)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d items left that no head holds after a Go delete", orphans)
	}
}

// TestDeltaCallerTx: a delta put inside a caller's transaction commits or rolls back with it; after a
// rollback the writer's cached plan names a head that never existed, and the next put is still right.
func TestDeltaCallerTx(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Table: "txd", Storage: pgcheckpoint.StorageDelta})
			if _, err := cp.Put(ctx, "t", []byte(`{"m": [1]}`)); err != nil {
				t.Fatal(err)
			}
			for _, commit := range []bool{false, true, false} {
				tx, err := db.BeginTx(ctx, tg.callerTx())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cp.WithTx(tx).Put(ctx, "t", []byte(`{"m": [1, 2]}`)); err != nil {
					t.Fatalf("put in the caller's transaction: %v", err)
				}
				if commit {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cp.Put(ctx, "t", []byte(`{"m": [1, 2, 3]}`)); err != nil {
				t.Fatal(err)
			}
			list, err := cp.List(ctx, "t", pgcheckpoint.ListOptions{})
			if err != nil || len(list) != 3 {
				t.Fatalf("List: %d checkpoints, %v; want 3 (two rolled back)", len(list), err)
			}
			want := []string{`{"m": [1, 2, 3]}`, `{"m": [1, 2]}`, `{"m": [1]}`}
			for i, c := range list {
				got, err := cp.Get(ctx, "t", c.ID)
				if err != nil || !jsonbEqual(t, ctx, db, got.Snapshot, []byte(want[i])) {
					t.Errorf("checkpoint %d = %s, %v; want %s", i, got.Snapshot, err, want[i])
				}
			}
		})
	}
}
