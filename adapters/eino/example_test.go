package eino_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/cloudwego/eino/compose"
	"github.com/ziroagent/pgcheckpoint"
	pgeino "github.com/ziroagent/pgcheckpoint/adapters/eino"
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
	schema := "eino_example_" + hex.EncodeToString(b[:])
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

// A graph interrupts before a human-review node; a later run (here a new Store, as after a restart)
// resumes it with the same checkpoint id.
func Example() {
	ctx := context.Background()
	cp, done := exampleCheckpointer()
	defer done()

	build := func(store compose.CheckPointStore) compose.Runnable[string, string] {
		g := compose.NewGraph[string, string]()
		_ = g.AddLambdaNode("draft", compose.InvokableLambda(func(_ context.Context, in string) (string, error) {
			return "draft of " + in, nil
		}))
		_ = g.AddLambdaNode("publish", compose.InvokableLambda(func(_ context.Context, in string) (string, error) {
			return strings.ToUpper(in), nil
		}))
		_ = g.AddEdge(compose.START, "draft")
		_ = g.AddEdge("draft", "publish")
		_ = g.AddEdge("publish", compose.END)
		r, err := g.Compile(ctx, compose.WithCheckPointStore(store), compose.WithInterruptBeforeNodes([]string{"publish"}))
		if err != nil {
			log.Fatal(err)
		}
		return r
	}

	_, err := build(pgeino.New(cp, pgeino.Options{})).Invoke(ctx, "the memo", compose.WithCheckPointID("memo-7"))
	if info, ok := compose.ExtractInterruptInfo(err); ok {
		fmt.Println("interrupted before", info.BeforeNodes)
	}

	out, err := build(pgeino.New(cp, pgeino.Options{})).Invoke(ctx, "", compose.WithCheckPointID("memo-7"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output:
	// interrupted before [publish]
	// DRAFT OF THE MEMO
}
