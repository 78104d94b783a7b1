// Package pgcheckpoint keeps AI-agent state durable: it stores JSON snapshots per conversation thread in
// PostgreSQL or CockroachDB through database/sql, so agents survive crashes, deploys and human-approval
// pauses that span processes. Bring the *sql.DB you already have (lib/pq or pgx's stdlib); the package
// imports no driver, and its module requires nothing but github.com/google/uuid.
//
// A [Checkpointer] ([New]) stores each snapshot as a new checkpoint with a client-generated UUIDv7 id that
// sorts after every earlier checkpoint of the thread, keeps the newest [Options].MaxCheckpointsPerThread
// of each thread, and under a byte budget ([Retention].MaxBytesPerThread) only the newest whose sizes
// fit in it (exactly, in the same atomic step as the insert), and reads them back newest first:
//
//	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
//	if err != nil { ... }
//	if err := cp.EnsureSchema(ctx); err != nil { ... } // or apply SchemaSQL with your migration tool
//	id, err := cp.Put(ctx, "support-42", snapshotJSON)
//	latest, err := cp.Latest(ctx, "support-42")
//
// [Checkpointer.PutAfter] fences writers: it stores only if the thread's newest checkpoint is still the
// one the caller resumed from, so two processes resuming one thread cannot fork it.
// [Checkpointer.WithTx] joins a caller's transaction. [PutJSON], [LatestJSON] and [GetJSON] encode and
// decode for you.
//
// The table is the one of the TypeScript package @ziro-agent/checkpoint-postgres (same columns and JSON,
// plus a nullable seq column), so Go and TypeScript services can share it; [SchemaSQL] gives its DDL and
// [Statements] every statement a Checkpointer sends.
//
// Errors wrap the sentinel values of this package ([ErrNotFound], [ErrConflict], [ErrInvalidSnapshot],
// ...); test them with errors.Is. [Memory] ([NewMemory]) is an in-memory [Store] with the same contract,
// for tests and demos.
//
// Related packages:
//   - [github.com/ziroagent/pgcheckpoint/agentsnapshot]: the TypeScript agent SDK's snapshot types, to
//     read and resolve the pending approvals of TypeScript agents.
//   - [github.com/ziroagent/pgcheckpoint/pgcheckpointtest]: the Store contract suite, for your own
//     implementations and wrappers.
//   - github.com/ziroagent/pgcheckpoint/pgcheckpointmock: go-sqlmock expectations built from the exact
//     statements (a module of its own).
//   - github.com/ziroagent/pgcheckpoint/pgcheckpointotel: traces and metrics through OpenTelemetry (a
//     module of its own).
//   - github.com/ziroagent/pgcheckpoint/cmd/pgcheckpoint: the CLI to inspect, prune, benchmark and demo
//     (a module of its own).
package pgcheckpoint
