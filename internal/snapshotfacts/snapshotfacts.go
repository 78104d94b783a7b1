// Package snapshotfacts lets pgcheckpointmock compute a snapshot's version and size exactly as the
// Checkpointer does, from the one scanner (internal/jsonscan) with package pgcheckpoint's errors, without
// making either public.
// Package pgcheckpoint sets Inspect when it is initialised; every importer of this package also
// imports pgcheckpoint, so Inspect is set before any of their code runs.
package snapshotfacts

// Inspect validates snapshot as a put does (with no size limit) and returns the values of its version
// and size_bytes columns, or the error the put returns (wrapping pgcheckpoint.ErrInvalidSnapshot or
// pgcheckpoint.ErrSnapshotTooLarge).
var Inspect func(snapshot []byte) (version int32, size int, err error)
