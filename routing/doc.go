// Package routing owns proxy numbers, carrier routes, masking sessions and
// the decisions that map a call or a message to a session.
//
// It knows nothing of SIP or SMPP: sip and smpp ask it questions
// (ResolveCall, ResolveMessage) and act on the answers. It must not import
// sip, media, smpp, admin or cmd.
//
// The core rule: a participant never holds two open sessions on the same
// proxy number, so (participant, proxy number) identifies at most one open
// session. The allocator enforces it:
//
//	CreateSession(A, B)
//	  lock ── pick P free for A and B (A's country first, then B's, then any;
//	  │       never a reserved number) ── reserve (A,P),(B,P) in memory
//	unlock
//	  synced batch: sess/<id> + sessidx/A/P + sessidx/B/P + ... (all or nothing)
//	  on error: lock, unreserve, unlock
//
// The in-memory index of open sessions is the source of truth for
// allocation and is rebuilt from the sessidx/ rows at start. Reserving in
// memory before the write and freeing in memory only after the close is on
// disk keeps the index conservative: a pair is never handed out while a
// record on disk still holds it.
//
// Interactions: the SIP B2BUA hands each ended call to RecordCall, which
// writes the record and, for a call in a session, its row in the session's
// time-ordered index in one synced batch:
//
//	call/<id>                                     -> CallRecord (From/To masked)
//	inter/<session>/<20060102T150405.000000000Z>/<id> -> "call"
//
// ListInteractions scans inter/<session>/ (oldest first) and reads each
// record; Check verifies both directions. Records are written once.
//
// Concurrency: a *Service is safe for concurrent use. One mutex guards the
// index; no I/O happens under it (disk writes happen between a reserve and
// a confirm), so concurrent creates share Pebble's group commit.
// ResolveCall and ResolveMessage take only a read lock; a hit does no I/O
// (a miss reads one row to tell "closed" from "never").
package routing
