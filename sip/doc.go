// Package sip is Veil's SIP side: it owns the listeners, the trunk ACL and
// authentication, the B2BUA dialog bridge between an inbound and an
// outbound leg, and header scrubbing, so that nothing of the caller's
// signalling reaches the callee's carrier.
//
//	carrier A-side --INVITE From:A To:P--> listener (trunk ACL/auth)
//	  -> Router (routing.ResolveCall(A, P))  -> decision: callee B, caller ID P
//	  -> Media (offer/answer SDP rewrite, relay)
//	  -> outbound leg --INVITE From:P To:B--> carrier B-side
//
// It is an adapter between the wire protocol and routing: it uses routing
// and media through small interfaces it declares itself, and imports
// sipgo's message package under the fixed alias sipmsg (ours is also
// called sip). It must not import store, smpp, recorder, events, admin or
// cmd.
//
// Pieces:
//   - number handling (number.go): NumberFromURI and CallerNumber read the
//     dialled proxy number (Request-URI or To) and the caller's number
//     (P-Asserted-Identity, else From) and normalise them to E.164;
//     FormatNumber writes a number in a carrier's number_format;
//   - the edge (server.go, acl.go): UDP/TCP listeners on sipgo, OPTIONS
//     answered 200, INVITEs accepted only from a carrier's inbound_cidrs
//     (else 403), numbers read before 100 Trying (404 dialled / 400 caller
//     unreadable), requests within a dialog (BYE, re-INVITE, UPDATE, ACK)
//     routed to their call, 481 when none has the dialog. sipgo's logs go
//     through a handler that shows message text only at debug level;
//   - the B2BUA (b2bua.go, call.go, dialog.go): one goroutine per call
//     resolves it with the Router, opens the media Bridge, places the
//     outbound INVITE built entirely by Veil (From and P-Asserted-Identity
//     P, fresh Call-ID, tags, Via, Contact, SDP from the bridge), bridges
//     18x/200 back with rewritten SDP, fails over to the route's next
//     carrier on 5xx, 408, 3xx, 401/407 or ring_timeout (503 when none is
//     left), propagates other final errors with Veil's own reason phrase,
//     cancels the outbound leg when the caller cancels (a 200 crossing the
//     CANCEL is ACKed and hung up), bridges re-INVITE and UPDATE offers
//     (hold, resume), retransmits its 2xx until the ACK, and hangs both
//     legs up on BYE, media timeout, max_call_duration or shutdown. Calls
//     out of session go to the fallback number when one is configured,
//     else 404. Each call ends with a record written through the Router,
//     by the B2BUA's record writer, which batches the records of 10 ms so
//     that their synced writes share fsyncs.
//
// Not supported yet: INVITEs without SDP (delayed offer, answered 488),
// reliable provisional responses (100rel/PRACK), INFO, TLS listeners.
//
// Concurrency: a *Server is safe for concurrent use; Close is idempotent,
// cancels every handler's context and joins the listener goroutines, the
// handler calls and the record writer (after it has written every queued
// record) before it returns.
package sip
