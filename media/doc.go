// Package media owns the media plane of a bridged call: SDP offer/answer
// rewriting, the RTP/RTCP port pool, the RTP/SRTP relay between the two legs,
// symmetric latching, per-leg statistics and the recording tap.
//
// media knows nothing of sessions, numbers or SIP dialogs. It must not import
// routing, sip, admin, recorder, smpp or store: the sip package drives it
// through small interfaces that sip declares, and the recording tap is an
// interface the caller injects. Its only third-party dependencies are pion's
// rtp, srtp and sdp packages.
//
// # Data flow
//
// One relay per leg pair; each socket has one reader goroutine and packets are
// forwarded without a lock or an allocation on the hot path:
//
//	        leg A (caller's carrier)                 leg B (callee's carrier)
//	RTP/SRTP --> [socket A] --> decrypt --> relay --> encrypt --> [socket B] --> RTP/SRTP
//	                                          |
//	                                          +--> tap (recorder; never blocks,
//	                                                a full buffer drops and counts)
//	   (and the same path from B to A)
//
// What exists now: the SDP rewrite ([RewriteSDP], [ParseSDP]), the port
// pool ([PortPool]), the plain-RTP relay ([Relay]) and the call's media
// ([Bridge]), which the sip package's B2BUA drives. The rewrite builds a
// new session description per leg from Veil's own address, ports and
// session identifiers, and copies only an allow-list of media attributes, so
// nothing of one leg's SDP (addresses, origin, ICE, tool names, custom
// attributes) reaches the other leg. The pool hands out RTP/RTCP port pairs
// and keeps released pairs out of use for a drain time; it binds nothing.
// The relay forwards RTP and RTCP between two legs with symmetric latching
// (foreign sources dropped after latching, and before it when the leg has
// an allow set: only its SDP address's IP or its carrier's prefixes may
// latch, see [Relay.SetAllowed]), per-direction stats (RFC 3550
// loss and jitter) and a media timeout that may wait for the answer
// ([Relay.Arm]); signalling moves a leg's peer while it runs
// ([Relay.SetPeer]). The bridge turns each offer and answer received on one
// leg into the one to send on the other (Veil's address and ports, a
// session version per leg), and allocates, binds and starts a relay per
// media section: two port pairs, one per leg. Payload types pass through
// unchanged. SRTP re-keying and the tap come with later work.
//
// # Concurrency
//
// [RewriteSDP] and [ParseSDP] are pure functions of their arguments and are
// safe for concurrent use. A [PortPool] is safe for concurrent use: one
// mutex, no goroutine, nothing called under the lock. A [Relay] owns its
// sockets: one reader goroutine per socket, joined by an idempotent Close,
// and a runtime timer for the media timeout (a deadline checked once per
// MediaTimeout, not a goroutine); the latched peers are atomic pointers and
// the counters atomics, so the per-packet path takes no lock and allocates
// nothing; [Relay.SetPeer] publishes a new peer through the same atomic
// pointers. A [Bridge] is driven by its call's goroutine (Offer, Answer,
// Arm); Done, Err, Stats and Close are safe from any goroutine, and Close
// joins every goroutine of the bridge and its relays.
package media
