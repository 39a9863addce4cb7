package sip

import sipmsg "github.com/emiago/sipgo/sip"

// TuneSipgoTimers sets sipgo's package-level transaction timers for a
// B2BUA under load. Call it once, from main, before any transaction
// starts (sipgo reads them without locks).
//
// sipgo keeps every completed transaction, with its request and last
// response, until its wait timer fires: 64*T1 (32 s) over UDP for Timers
// J, L and M (RFC 3261 §17.2.2, RFC 6026 §7.1), even after Terminate
// (the timer holds it). At 1,500 calls a second that is three
// transactions a call held for 32 s: most of veild's heap. Timers J, L
// and M drop to 16*T1 (8 s), which still absorbs the first four
// retransmissions (at 0.5, 1.5, 3.5 and 7.5 s) of a request or 2xx whose
// answer was lost:
//
//   - J (a BYE answered 200): a later copy of the BYE gets 481, which
//     ends the sender's transaction just as well.
//   - L (an INVITE answered 2xx): the call retransmits its 2xx itself
//     until the ACK; later copies of the INVITE are dropped (recentCalls),
//     never taken as a new call.
//   - M (a 2xx from the callee): the call re-ACKs retransmitted 2xx
//     while the transaction lives; a callee still missing the ACK after
//     8 s has lost five datagrams in a row.
//
// Timer D (32 s, re-ACKing a retransmitted error response) is left as
// it is: error answers are a minority of calls.
func TuneSipgoTimers() {
	short := 16 * sipmsg.T1
	sipmsg.Timer_J = short
	sipmsg.Timer_L = short
	sipmsg.Timer_M = short
}
