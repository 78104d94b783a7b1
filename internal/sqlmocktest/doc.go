// Package sqlmocktest holds the tests that run a real pgcheckpoint.Checkpointer against go-sqlmock and
// the drivers' error types: the statement sequences of every operation per dialect (the expected texts
// are the golden files of package pgcheckpoint), the drivers' errors through SQLState and Retryable, and
// the OpenTelemetry adapter end to end.
//
// Why is this a separate module? The library module requires only google/uuid, so that an application
// requiring it gets nothing else in its module graph. These tests need go-sqlmock, pgx and lib/pq; kept
// in a module of their own (as goose keeps its internal/testing), their requirements stay out of the
// library's go.mod. The module is never tagged or published. It has no non-test code.
package sqlmocktest
