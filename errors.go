package pgcheckpoint

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Sentinel errors. Every error pgcheckpoint returns wraps at most one of them, so callers test with
// errors.Is and never match strings. Errors from the database driver are wrapped as they are (with %w)
// after classification, so their SQLSTATE stays reachable through errors.As.
var (
	// ErrNotFound means Get found no checkpoint: the thread or the id is unknown.
	ErrNotFound = errors.New("checkpoint not found")

	// ErrConflict means a fenced put lost: the thread's newest checkpoint is not the one the caller named
	// (or the thread is no longer empty), or, inside a caller's transaction, another writer stored a
	// checkpoint for the same thread at the same moment. Nothing was written; read the head and decide again.
	ErrConflict = errors.New("checkpoint conflict: thread head moved")

	// ErrInvalidSnapshot means the snapshot is not storable: not valid UTF-8 JSON, not a JSON object, a
	// top-level "version" that is not an integer within int32, a string holding the NUL character
	// (\u0000) or a lone UTF-16 surrogate, or a number beyond PostgreSQL numeric's range, which is what
	// JSONB stores numbers as: written out in full without an exponent, as PostgreSQL prints it back
	// (1e3 is 1000, 1.50e-1 is 0.150), a number may have at most 131072 digits before the decimal point
	// and 16383 after it (trailing zeros count), and its exponent must be within ±1073741822. Nothing was
	// written.
	ErrInvalidSnapshot = errors.New("invalid snapshot")

	// ErrSnapshotTooLarge means the snapshot is larger than Options.MaxSnapshotBytes, as sent or as
	// PostgreSQL prints it back with every number written out in full (a 9-byte 1e131071 prints as
	// 131072 bytes); with no limit (or one above it), the latter may still not exceed 268,435,455 bytes,
	// JSONB's own largest document. Nothing was written.
	ErrSnapshotTooLarge = errors.New("snapshot too large")

	// ErrInvalidThreadID means the thread id is empty, longer than 1024 bytes, not valid UTF-8, or holds a
	// NUL byte; for ThreadsOptions.After (which may be empty), the same but for the empty string. Nothing
	// was written or sent.
	ErrInvalidThreadID = errors.New("invalid thread id")

	// ErrInvalidCheckpointID means a checkpoint id given to Get, Delete, PutAfter or List (Before) is not a
	// UUID (every call answers alike; an upper-case UUID is the same id), or that a thread's newest id
	// leaves no room for a newer one. Nothing was written.
	ErrInvalidCheckpointID = errors.New("invalid checkpoint id")

	// ErrInvalidIdentifier means a schema or table name (or an index name derived from them) is not a
	// plain SQL identifier of at most 63 bytes. New returns it; nothing touches the database.
	ErrInvalidIdentifier = errors.New("invalid identifier")

	// ErrInvalidOptions means an Options or ListOptions field has a value that has no meaning, New got a
	// handle it cannot use (nil, a typed nil, or a DBTX that can neither begin transactions nor is a
	// *sql.Tx), or a caller's transaction runs at an isolation level the dialect's put is not built for
	// (PostgreSQL: READ COMMITTED; CockroachDB: SERIALIZABLE). Nothing was written.
	ErrInvalidOptions = errors.New("invalid options")

	// ErrSchemaMissing means the checkpoint table (or its schema, or its seq column, which a table created
	// by the TypeScript package lacks until it is upgraded) does not exist: run EnsureSchema or the CLI's
	// migrate first.
	ErrSchemaMissing = errors.New("checkpoint table missing: run EnsureSchema or `pgcheckpoint migrate`")

	// ErrRetentionMismatch means the client's Options.MaxCheckpointsPerThread names a cap other than
	// the one the table records (see Retention): every writer of a table trims alike, so the put was
	// refused before anything was written. Leave the option 0 to follow the table, or change the
	// table's policy with SetRetention (`pgcheckpoint migrate --max-per-thread N`).
	ErrRetentionMismatch = errors.New("retention policy mismatch")

	// ErrPermission means the database role lacks a privilege the operation needs; the wrapped driver
	// error names it.
	ErrPermission = errors.New("insufficient privilege")

	// ErrOutcomeUnknown means a put may or may not have stored its checkpoint: the statement (or the
	// COMMIT) had been sent when the connection broke, the context ended or the server reported an
	// unknown commit outcome (SQLSTATE 40003), and pgcheckpoint could not settle which (the message names
	// the checkpoint id it used). pgcheckpoint settles it by itself where it can: it looks that id up
	// once and, when it is stored, returns it as a success. It never stores the snapshot again: an
	// attempt that is not found may have committed and been deleted, trimmed or pruned since, or may
	// still commit. Read the thread (Get, List) to find out; when the context ended, its error is in the
	// chain too. A connection that broke before the statement was sent, or inside the put's own
	// transaction before its COMMIT, wrote nothing: the put runs again and this error does not arise.
	ErrOutcomeUnknown = errors.New("outcome unknown: the checkpoint may or may not have been stored")

	// ErrThreadExists means Fork's target thread already has a checkpoint: a fork starts a new thread
	// and never adds to one. Nothing was written.
	ErrThreadExists = errors.New("thread exists")

	// ErrLeaseHeld means Acquire found the thread leased to another owner, and the lease in force.
	// Nothing was written; try again after its expiry.
	ErrLeaseHeld = errors.New("thread leased to another owner")

	// ErrLeaseLost means a lease's Put or Renew found the lease expired, released or taken over by a
	// newer grant (by the server's clock). Nothing was written: the owner no longer drives the thread.
	ErrLeaseLost = errors.New("lease lost")

	// ErrRetriesExhausted means a transaction kept failing with a retryable error (SQLSTATE 40001) for
	// Options.MaxAttempts attempts; the last driver error is wrapped too. Nothing was written.
	ErrRetriesExhausted = errors.New("retries exhausted")

	// ErrStorageMismatch means the table is stored in the other layout than Options.Storage says: a delta
	// Checkpointer found a full table of that name, or a full Checkpointer tried to write to a delta
	// table's view. Nothing was written.
	ErrStorageMismatch = errors.New("table storage does not match Options.Storage")

	// ErrTableNotEmpty means Convert's target table has checkpoints (or, for a delta table, items)
	// and ConvertOptions.Resume was not set: a conversion starts into an empty table. Nothing was
	// written.
	ErrTableNotEmpty = errors.New("table not empty")

	// ErrKeyMissing means a snapshot could not be sealed or opened for want of a key: the client has no
	// Options.Keys and met an encrypted snapshot, the key provider has no key of the id a stored
	// snapshot names (it was dropped from the ring before `pgcheckpoint rekey` moved its rows), or the
	// provider failed to hand out its current key. Messages name key ids, never key material. Nothing
	// was written.
	ErrKeyMissing = errors.New("encryption key missing")

	// ErrDecryptFailed means a stored ciphertext did not authenticate: it was altered, truncated,
	// moved or copied from another row, thread, checkpoint or table (each ciphertext is bound to its
	// row), or sealed under another secret that carries the same key id. pgcheckpoint never returns a
	// snapshot it could not authenticate. Nothing was written.
	ErrDecryptFailed = errors.New("snapshot fails to decrypt")

	// ErrEncryptionRequired means the table requires encryption and met plaintext: a client with
	// Options.Keys read a plaintext snapshot from a table that `pgcheckpoint rekey` (or EnsureSchema)
	// marked encrypted, or a client without keys tried to write to a table being encrypted or
	// encrypted (the server's check constraint refused the row). Nothing was written.
	ErrEncryptionRequired = errors.New("table requires encryption")
)

// errNoHead is PutAfter's answer to an empty expected head.
var errNoHead = fmt.Errorf("expected head is empty (PutIfEmpty stores only into an empty thread): %w", ErrInvalidCheckpointID)

// sqlStater is implemented by both drivers' error types (*pq.Error and *pgconn.PgError).
type sqlStater interface{ SQLState() string }

// SQLState returns the five-character SQLSTATE code of the first database error in err's chain, or "" when
// err carries none. It understands lib/pq's and pgx's error types.
func SQLState(err error) string {
	var s sqlStater
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// Retryable reports whether err is a transaction conflict after which the whole transaction may simply
// run again: SQLSTATE 40001 (serialization_failure, which is every CockroachDB retry error whatever its
// "restart transaction" reason) or 40P01 (deadlock_detected). Both drivers' error types are understood,
// also when wrapped. It is false for 40003 (statement_completion_unknown): that commit may have happened,
// so only work that is safe to repeat may run again (pgcheckpoint's own puts check whether their row is
// there first). Callers that run pgcheckpoint inside their own transactions (WithTx) use it in their
// retry loop.
func Retryable(err error) bool {
	switch SQLState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// connLost reports whether err says that the connection broke rather than that the statement failed:
// SQLSTATE class 08, an administrator or crash shutdown of the backend (57P01-57P03), a network error
// without a SQLSTATE, or a connection-level error of pgx (pgconn's errors without a SQLSTATE report
// SafeToRetry; "conn closed" after a request was sent is one, and is the error pgx returns when the
// connection broke while it waited for the reply to a COMMIT). Whatever the statement did is unknown.
func connLost(err error) bool {
	switch code := SQLState(err); {
	case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03":
		return true
	case code != "":
		return false
	}
	var ne net.Error
	var pgconnErr interface{ SafeToRetry() bool }
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &ne) || errors.As(err, &pgconnErr)
}

// The SQLSTATE codes interpreted below.
const (
	stateUniqueViolation  = "23505"
	stateDuplicateTable   = "42P07"
	stateDuplicateObject  = "42710"
	stateAmbiguousCommit  = "40003"
	stateUndefinedTable   = "42P01"
	stateUndefinedSchema  = "3F000"
	stateUndefinedColumn  = "42703" // a table created by the TypeScript package, not upgraded yet
	stateInsufficientPriv = "42501"
	stateUntranslatable   = "22P05" // unsupported Unicode escape: \u0000 in JSONB
	stateNumericRange     = "22003" // a JSONB number beyond the server's numeric range
	stateLockNotAvailable = "55P03" // lock_timeout ran out (adding an encryption constraint)
	stateCheckViolation   = "23514" // a check constraint: the encryption one (encryptedSuffix) is interpreted
)

// interpret is the one place where driver errors become pgcheckpoint errors: it adds the sentinel an
// error's SQLSTATE stands for and leaves every other error as it is. The public methods then wrap the
// result in an *Error (see fail).
func interpret(err error) error {
	if err == nil {
		return nil
	}
	switch SQLState(err) {
	case stateUndefinedTable, stateUndefinedSchema, stateUndefinedColumn:
		if !errors.Is(err, ErrSchemaMissing) {
			return fmt.Errorf("%w: %w", ErrSchemaMissing, err)
		}
	case stateInsufficientPriv:
		if !errors.Is(err, ErrPermission) {
			return fmt.Errorf("%w: %w", ErrPermission, err)
		}
	case stateCheckViolation:
		if strings.Contains(err.Error(), encryptedSuffix+`"`) && !errors.Is(err, ErrEncryptionRequired) {
			return fmt.Errorf("%w (a plaintext snapshot was refused by the table's encryption constraint): %w", ErrEncryptionRequired, err)
		}
	case stateUntranslatable, stateNumericRange:
		if !errors.Is(err, ErrInvalidSnapshot) {
			return fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
		}
	}
	return err
}

// Error is the error of every failed call: errors.As(err, &e) tells which operation failed and on what,
// and Err is the cause, which wraps at most one of the sentinel errors above (test it with errors.Is on
// the *Error itself) and the driver's error where there is one. Its message starts with "pgcheckpoint: ",
// the operation and the thread.
type Error struct {
	Op           Op     // the call that failed
	ThreadID     string // the thread it was about ("" for Threads, Prune, EnsureSchema, New)
	CheckpointID string // the checkpoint id the call named (Get, Delete, PutAfter), when it named one
	// Head is, for ErrConflict from PutAfter or PutIfEmpty, the thread's newest checkpoint id when the
	// put lost ("" when the thread was empty or the head is not known, as inside a caller's
	// transaction when another writer got in first). Fencing callers read from there instead of
	// asking again.
	Head string
	Err  error // the cause
}

// Error returns "pgcheckpoint: <op> thread <thread>: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pgcheckpoint: ")
	b.WriteString(string(e.Op))
	if e.ThreadID != "" {
		fmt.Fprintf(&b, " thread %q", e.ThreadID)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause, so errors.Is and errors.As see the sentinel and the driver's error.
func (e *Error) Unwrap() error { return e.Err }

// headMoved is the cause of a fenced put's ErrConflict: it carries the head the put lost to, which fail
// copies into Error.Head.
type headMoved struct {
	head  string // the thread's newest id, "" when it is empty or unknown
	cause error  // what the message says, wrapping ErrConflict
}

func (h *headMoved) Error() string { return h.cause.Error() }
func (h *headMoved) Unwrap() error { return h.cause }

// conflict is the cause of ErrConflict when a fenced put found head ("" when the thread is empty) where
// it expected want ("" when it expected an empty thread).
func conflict(head, want string) error {
	var msg string
	switch {
	case head == "":
		msg = fmt.Sprintf("thread is empty, not at %s", want)
	case want == "":
		msg = fmt.Sprintf("thread is at %s, not empty", head)
	default:
		msg = fmt.Sprintf("thread is at %s, not at %s", head, want)
	}
	return &headMoved{head: head, cause: fmt.Errorf("%s: %w", msg, ErrConflict)}
}

// fail turns the error of an operation into an *Error naming it (nil stays nil). An error that is
// already an *Error (a call made by another) is returned as it is.
func fail(op Op, threadID, checkpointID string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	e = &Error{Op: op, ThreadID: threadID, CheckpointID: checkpointID, Err: interpret(err)}
	var h *headMoved
	if errors.As(err, &h) {
		e.Head = h.head
	}
	return e
}
