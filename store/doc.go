// Package store owns Veil's Pebble database: opening and closing it, the
// table of key prefixes (keys.go), record codecs and atomic, synced batches.
//
// Every package that keeps state (routing, admin, and later smpp, recorder,
// events) writes under its own key prefix through this package; none of them
// opens Pebble itself. Store knows nothing of sessions or numbers: it moves
// bytes and guarantees that a committed Batch is on disk.
//
// Key layout (on-disk format: never renumber or reuse a prefix):
//
//	meta/schema                      -> schema version of the database
//	num/<e164>                       -> proxy number record
//	sess/<id>                        -> session record (open and closed)
//	sessidx/<participant>/<proxy>    -> id of the OPEN session of that pair
//	sesslast/<participant>/<proxy>   -> id of the latest session of that pair
//	sesspart/<participant>/<id>      -> "" (every session a number took part in)
//	sessuniq/<unique_name>           -> id of the OPEN session with that name
//	route/<prefix>                   -> route record
//	tok/<sha256 of token, hex>       -> API token record
//	call/<id>                        -> call record (From/To masked)
//	inter/<session>/<time>/<id>      -> "call" (a session's interactions, time-ordered)
//
// A session and its index rows are written in one Batch, so after any crash
// either all of them exist or none do.
//
// Concurrency: a *DB is safe for concurrent use. A Batch belongs to one
// goroutine until it is committed or discarded. Commit with sync waits for
// the write-ahead log to reach the disk; concurrent synced commits share
// one fsync (Pebble's group commit), which is what makes synced session
// creates fast under load.
package store
