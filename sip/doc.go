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
// Today only number handling exists: NumberFromURI and CallerNumber read
// the dialled proxy number (Request-URI or To) and the caller's number
// (P-Asserted-Identity, else From) and normalise them to E.164 with
// routing.ParseE164; FormatNumber writes a number in a carrier's configured
// number_format. These functions are pure and safe for concurrent use.
package sip
