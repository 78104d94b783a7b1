package genkit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log"
	"os"

	"github.com/firebase/genkit/go/core/x/session"
	"github.com/ziroagent/pgcheckpoint"
	pggenkit "github.com/ziroagent/pgcheckpoint/adapters/genkit"
)

// exampleCheckpointer stands in for a service's setup, which is just
//
//	db, _ := sql.Open("pgx", os.Getenv("DATABASE_URL"))
//	cp, _ := pgcheckpoint.New(db, pgcheckpoint.Options{})
//	cp.EnsureSchema(ctx)
//
// With PGCHECKPOINT_TEST_DSN set (always in CI) it runs that against PostgreSQL on a schema of its own,
// dropped by the returned func; without it the example uses pgcheckpoint.NewMemory, which behaves alike.
func exampleCheckpointer() (pgcheckpoint.Store, func()) {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		return pgcheckpoint.NewMemory(pgcheckpoint.Options{}), func() {}
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "genkit_example_" + hex.EncodeToString(b[:])
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schema})
	if err != nil {
		log.Fatal(err)
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		log.Fatal(err)
	}
	return cp, func() {
		_, _ = db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		db.Close()
	}
}

type Cart struct {
	Items []string `json:"items"`
}

// One request creates and updates a session; a later one (here a new Store, as in another process)
// loads it.
func Example() {
	ctx := context.Background()
	cp, done := exampleCheckpointer()
	defer done()

	s, err := session.New(ctx,
		session.WithID[Cart]("cart-7"),
		session.WithInitialState(Cart{Items: []string{"tea"}}),
		session.WithStore[Cart](pggenkit.New[Cart](cp, pggenkit.Options{})))
	if err != nil {
		log.Fatal(err)
	}
	if err := s.UpdateState(ctx, Cart{Items: []string{"tea", "cups"}}); err != nil {
		log.Fatal(err)
	}

	loaded, err := session.Load(ctx, pggenkit.New[Cart](cp, pggenkit.Options{}), "cart-7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loaded.ID(), loaded.State().Items)
	// Output: cart-7 [tea cups]
}
