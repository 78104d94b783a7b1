// Package testhooks gives the repository's test modules (internal/sqlmocktest, which needs go-sqlmock and
// so cannot live in the library module) the few hooks into package pgcheckpoint that the library's own
// external tests get from export_test.go. Package pgcheckpoint sets them when it is initialised; every
// importer of this package also imports pgcheckpoint. Nothing outside this repository can import it.
package testhooks

// AssumeRetention makes a *pgcheckpoint.Checkpointer take the table's retention policy as read already,
// for ever: cap checkpoints per thread (0: every checkpoint). The statement-shape tests pin each
// operation's own statements; the policy reads have tests of their own.
var AssumeRetention func(checkpointer any, cap int)

// AfterRekeyItemsRead, when set, is called by a delta table's Rekey with its *pgcheckpoint.Checkpointer
// between reading a batch of items and writing it back, so a test can change an item in that window
// deterministically (integration/rekey_test.go). Only tests that do not run in parallel set it.
var AfterRekeyItemsRead func(checkpointer any)

// AfterDeleteThreadRows, when set, is called by DeleteThread with its *pgcheckpoint.Checkpointer and
// thread after the statement that deletes the thread's rows and before what follows in the same
// transaction (a delta table's item gc), so a test can commit a put in that window deterministically
// (integration/regress_deletethread_test.go). Only tests that do not run in parallel set it.
var AfterDeleteThreadRows func(checkpointer any, thread string)
