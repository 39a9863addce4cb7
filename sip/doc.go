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
// What exists now (the call flow itself does not, and nothing is wired into
// veild yet):
//   - number handling: NumberFromURI and CallerNumber read the dialled
//     proxy number (Request-URI or To) and the caller's number
//     (P-Asserted-Identity, else From) and normalise them to E.164 with
//     routing.ParseE164; FormatNumber writes a number in a carrier's
//     configured number_format. These are pure and safe for concurrent use;
//   - the edge (server.go, acl.go): UDP/TCP listeners on sipgo, OPTIONS
//     answered 200, INVITEs accepted only from a carrier's inbound_cidrs
//     (else 403), numbers read before 100 Trying (404 dialled / 400 caller
//     unreadable), then handed to a CallHandler on sipgo's request
//     goroutine with a context cancelled when the transaction ends or the
//     server closes. Out-of-dialog BYE/CANCEL/UPDATE get 481, unsupported
//     methods 405/501. All refusal codes are chosen in statusFor.
//
// Concurrency: a *Server is safe for concurrent use; Close is idempotent,
// cancels every handler's context and joins the listener goroutines and
// handler calls before it returns.
package sip
