package pgcheckpoint

// Op names an operation of a Store: it is Event.Op for an Observer and Error.Op for a failed call, so
// code that counts, traces or handles operations compares with these constants instead of strings.
type Op string

// The operations. Each Store method and each Checkpointer method that touches the database has its own.
const (
	OpPut           Op = "put"            // Put
	OpPutAfter      Op = "put_after"      // PutAfter
	OpPutIfEmpty    Op = "put_if_empty"   // PutIfEmpty
	OpGet           Op = "get"            // Get (a checkpoint by id)
	OpLatest        Op = "latest"         // Latest (a thread's newest checkpoint)
	OpList          Op = "list"           // List
	OpDelete        Op = "delete"         // Delete (one checkpoint)
	OpDeleteThread  Op = "delete_thread"  // DeleteThread
	OpThreads       Op = "threads"        // Threads
	OpPrune         Op = "prune"          // Prune
	OpEnsureSchema  Op = "ensure_schema"  // EnsureSchema
	OpRetention     Op = "retention"      // Retention
	OpSetRetention  Op = "set_retention"  // SetRetention
	OpDetectDialect Op = "detect_dialect" // DetectDialect
	OpNew           Op = "new"            // New and ParseDialect refusing their arguments
	OpFork          Op = "fork"           // Fork
	OpAcquire       Op = "acquire"        // Acquire (a lease)
	OpRenew         Op = "renew"          // Lease.Renew
	OpRelease       Op = "release"        // Lease.Release
	OpLeasePut      Op = "lease_put"      // Lease.Put (its put, inside, reports OpPut)
	OpConvert       Op = "convert"        // Convert (a table to the other layout)
	OpEncryption    Op = "encryption"     // Encryption (a table's encryption state)
	OpRekey         Op = "rekey"          // Rekey (sealing a table's rows under the current key)
)
