// Package pgcheckpoint keeps AI-agent state durable: it stores JSON snapshots per conversation thread in
// PostgreSQL or CockroachDB through database/sql, so agents survive crashes, deploys and human-approval
// pauses that span processes. Bring the *sql.DB you already have (lib/pq or pgx's stdlib); the package
// imports no driver.
//
// A Checkpointer stores each snapshot as a new checkpoint with a client-generated UUIDv7 id that sorts
// after every earlier checkpoint of the thread, keeps the newest MaxCheckpointsPerThread of each thread
// (exactly, in the same atomic step as the insert), and reads them back newest first:
//
//	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
//	if err != nil { ... }
//	if err := cp.EnsureSchema(ctx); err != nil { ... } // or apply SchemaSQL with your migration tool
//	id, err := cp.Put(ctx, "support-42", snapshotJSON)
//	latest, err := cp.Latest(ctx, "support-42")
//
// PutAfter fences writers: it stores only if the thread's newest checkpoint is still the one the caller
// resumed from, so two processes resuming one thread cannot fork it. WithTx joins a caller's transaction.
//
// The table is the one of the TypeScript package @ziro-agent/checkpoint-postgres (same columns and JSON,
// plus a nullable seq column), so Go and TypeScript services can share it.
//
// Errors wrap the sentinel values of this package (ErrNotFound, ErrConflict, ErrInvalidSnapshot, ...);
// test them with errors.Is. Memory is an in-memory Store with the same contract, for tests and demos.
package pgcheckpoint
