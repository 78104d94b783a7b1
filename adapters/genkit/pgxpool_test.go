package genkit_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/firebase/genkit/go/core/x/session"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	pggenkit "github.com/ziroagent/pgcheckpoint/adapters/genkit"
)

// TestPgxPool: a service that already has a *pgxpool.Pool wraps it with stdlib.OpenDBFromPool, and the
// adapter works through it.
func TestPgxPool(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	schemaName := newSchemaName(t, db)
	cp := openCheckpointer(t, db, schemaName)

	store := pggenkit.New[UserState](cp, pggenkit.Options{Fencing: true})
	s, err := session.New(ctx, session.WithID[UserState]("pool"), session.WithInitialState(initialState),
		session.WithStore[UserState](store))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateState(ctx, firstUpdate); err != nil {
		t.Fatal(err)
	}
	loaded, err := session.Load(ctx, pggenkit.New[UserState](cp, pggenkit.Options{}), "pool")
	if err != nil || !reflect.DeepEqual(loaded.State(), firstUpdate) {
		t.Fatalf("loaded %+v, %v", loaded, err)
	}
}
