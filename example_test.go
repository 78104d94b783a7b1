package pgcheckpoint_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// A service opens its pool once, creates the table at boot (or applies SchemaSQL with its migration
// tool), and checkpoints after every agent step. The program imports a driver, as database/sql needs:
// _ "github.com/jackc/pgx/v5/stdlib" (driver name "pgx") or _ "github.com/lib/pq" ("postgres").
func ExampleNew() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(10)
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{MaxCheckpointsPerThread: 50})
	if err != nil {
		log.Fatal(err)
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		log.Fatal(err)
	}
	id, err := cp.Put(ctx, "support-42", []byte(`{"version": 2, "messages": []}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", id)
}

// Resuming after a crash: read the newest checkpoint, or start fresh when the thread has none.
func ExampleCheckpointer_Latest() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{}) // a *Checkpointer behaves the same
	if _, err := store.Put(ctx, "support-42", []byte(`{"version": 2, "step": 3}`)); err != nil {
		log.Fatal(err)
	}
	latest, err := store.Latest(ctx, "support-42")
	switch {
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		fmt.Println("new conversation")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("resume at version %d: %s\n", latest.Version, latest.Snapshot)
	}
	// Output: resume at version 2: {"version": 2, "step": 3}
}

// Two replicas resuming the same thread must not fork it: each names the head it resumed from, and
// only one of them wins; the loser learns where the thread is now.
func ExampleCheckpointer_PutAfter() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	head, _ := store.PutIfEmpty(ctx, "t", []byte(`{"step": 1}`)) // the first put of a new thread

	a, errA := store.PutAfter(ctx, "t", head, []byte(`{"step": 2, "by": "a"}`))
	_, errB := store.PutAfter(ctx, "t", head, []byte(`{"step": 2, "by": "b"}`))
	var e *pgcheckpoint.Error
	fmt.Println(errA == nil, errors.Is(errB, pgcheckpoint.ErrConflict), errors.As(errB, &e) && e.Head == a)
	// Output: true true true
}

// Paging through a long thread, newest first, metadata only.
func ExampleCheckpointer_List() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	for i := range 5 {
		_, _ = store.Put(ctx, "t", fmt.Appendf(nil, `{"version": %d}`, i))
	}
	before := ""
	for {
		page, err := store.List(ctx, "t", pgcheckpoint.ListOptions{Limit: 2, Before: before})
		if err != nil {
			log.Fatal(err)
		}
		for _, cp := range page {
			fmt.Print(cp.Version, " ")
		}
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].ID
	}
	fmt.Println()
	// Output: 4 3 2 1 0
}

// A checkpoint that commits or rolls back together with the caller's own writes. Inside the caller's
// transaction nothing is retried: run the whole transaction again when Retryable(err).
func ExampleCheckpointer_WithTx() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		log.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'waiting' WHERE id = $1`, 42); err != nil {
		log.Fatal(err)
	}
	if _, err := cp.WithTx(tx).Put(ctx, "ticket-42", []byte(`{"version": 2}`)); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
}

// Typed snapshots: encode and decode a Go value with encoding/json.
func ExamplePutJSON() {
	type state struct {
		Version int      `json:"version"`
		Steps   []string `json:"steps"`
	}
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	if _, err := pgcheckpoint.PutJSON(ctx, store, "t", state{Version: 2, Steps: []string{"plan"}}); err != nil {
		log.Fatal(err)
	}
	s, cp, err := pgcheckpoint.LatestJSON[state](ctx, store, "t")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Steps, cp.Version)
	// Output: [plan] 2
}

// The DDL for a migration tool, for a custom schema and table.
func ExampleSchemaSQL() {
	ddl, err := pgcheckpoint.SchemaSQL(pgcheckpoint.PostgreSQL, "agents", "checkpoints")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ddl) > 0)
	// Output: true
}

// Bad input is refused before anything is sent, with an error that says what is wrong.
func ExampleErrInvalidSnapshot() {
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	_, err := store.Put(context.Background(), "t", []byte(`{"text": "a\u0000b"}`))
	fmt.Println(errors.Is(err, pgcheckpoint.ErrInvalidSnapshot))
	fmt.Println(err)
	// Output:
	// true
	// pgcheckpoint: put thread "t": snapshot holds the NUL character (\u0000), which JSONB cannot store: invalid snapshot
}

// Checkpoint after every step of an agent; the id of each checkpoint sorts after the previous one.
func ExampleCheckpointer_Put() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{MaxCheckpointsPerThread: 3})
	var ids []string
	for step := range 5 {
		id, err := store.Put(ctx, "support-42", fmt.Appendf(nil, `{"version": 2, "step": %d}`, step))
		if err != nil {
			log.Fatal(err)
		}
		ids = append(ids, id)
	}
	kept, _ := store.List(ctx, "support-42", pgcheckpoint.ListOptions{})
	fmt.Println(ids[0] < ids[4], len(kept), kept[0].ID == ids[4])
	// Output: true 3 true
}

// Forget one checkpoint, or a whole conversation.
func ExampleCheckpointer_Delete() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	first, _ := store.Put(ctx, "t", []byte(`{"step": 1}`))
	_, _ = store.Put(ctx, "t", []byte(`{"step": 2}`))
	_ = store.Delete(ctx, "t", first) // one checkpoint
	left, _ := store.List(ctx, "t", pgcheckpoint.ListOptions{})
	fmt.Println(len(left))
	_ = store.DeleteThread(ctx, "t") // the whole thread
	_, err := store.Latest(ctx, "t")
	fmt.Println(errors.Is(err, pgcheckpoint.ErrNotFound))
	// Output:
	// 1
	// true
}

// Walk every thread in pages, in byte order of their ids.
func ExampleCheckpointer_Threads() {
	ctx := context.Background()
	store := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	for _, th := range []string{"b", "a", "c"} {
		_, _ = store.Put(ctx, th, []byte(`{}`))
	}
	after := ""
	for {
		page, err := store.Threads(ctx, pgcheckpoint.ThreadsOptions{After: after, Limit: 2})
		if err != nil {
			log.Fatal(err)
		}
		for _, t := range page {
			fmt.Print(t.ThreadID, ":", t.Checkpoints, " ")
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ThreadID
	}
	fmt.Println()
	// Output: a:1 b:1 c:1
}

// A nightly job: delete checkpoints older than 30 days, keeping each thread's newest.
func ExampleCheckpointer_Prune() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: 30 * 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("pruned %d checkpoints in %d threads in %v", res.Deleted, res.Threads, res.Duration)
}

// Pick the dialect by asking the server.
func ExampleDetectDialect() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	d, err := pgcheckpoint.DetectDialect(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: d})
	if err != nil {
		log.Fatal(err)
	}
	if err := cp.EnsureSchema(ctx); err != nil {
		log.Fatal(err)
	}
}

// Statements lists the exact SQL a Checkpointer sends, by name: for a mock of your own, or for an audit
// of what runs against your database (here, what CockroachDB gets for a put with retention).
func ExampleStatements() {
	stmts, err := pgcheckpoint.Statements(pgcheckpoint.CockroachDB, "agents", "checkpoints")
	if err != nil {
		log.Fatal(err)
	}
	_, onePut := stmts["put"]
	fmt.Println(len(stmts), onePut)
	fmt.Println(stmts["trim"])
	// Output:
	// 43 false
	// DELETE FROM "agents"."checkpoints"
	// WHERE thread_id = $1
	//   AND checkpoint_id >= (SELECT checkpoint_id FROM "agents"."checkpoints" WHERE thread_id = $1 ORDER BY checkpoint_id LIMIT 1)
	//   AND checkpoint_id <= (
	//     SELECT checkpoint_id FROM "agents"."checkpoints" WHERE thread_id = $1 AND seq = $2)
}
