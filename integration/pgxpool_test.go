package integration

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ziroagent/pgcheckpoint"
)

// A pgxpool user does not pass the pool to New (it is not a database/sql handle and does not compile):
// stdlib.OpenDBFromPool wraps it in a *sql.DB that borrows the pool's connections, and everything works
// through that, the pool's own size limit included.
func TestPgxPool(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cfg, err := pgxpool.ParseConfig(postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConnsPerPool
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	schema := newSchema(t, db)
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		id, err := cp.Put(ctx, "pool", []byte(`{"step": 1}`))
		if err != nil {
			t.Fatalf("put %d through OpenDBFromPool: %v", i, err)
		}
		ids = append(ids, id)
	}
	list, err := cp.List(ctx, "pool", pgcheckpoint.ListOptions{})
	if err != nil || len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("List = %v, %v; want the newest two of %v", list, err, ids)
	}
}
