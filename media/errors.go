package media

import "errors"

var (
	// ErrBadSDP reports an SDP body that Veil will not relay: malformed,
	// empty, too large, without a usable media section, with a connection
	// address that is not an IN IP4/IP6 unicast address, or with a media
	// section that has no connection address. The sip package answers it
	// with 488 Not Acceptable Here (RFC 3261 §21.4.26). Errors returned by
	// this package wrap it with the detail.
	ErrBadSDP = errors.New("unacceptable SDP")

	// ErrBadLeg reports that the caller's [LegAddr] does not fit the SDP
	// being rewritten: an invalid address, a port count different from the
	// number of media sections, or a port out of range. It is a bug in the
	// caller, not in the peer's SDP (a 500, not a 488).
	ErrBadLeg = errors.New("leg address does not fit the SDP")
)

var (
	// ErrBadPortOptions reports [PortPoolOptions] that [NewPortPool]
	// refuses: a port range outside 1024..65535, an odd Min, a Max not above
	// Min, or a negative duration or count. The error names every problem.
	ErrBadPortOptions = errors.New("invalid media port pool options")

	// ErrPortsExhausted reports that every RTP/RTCP pair of the pool is in
	// use or still draining after its last call. The sip package answers
	// the call that needed it with 503 Service Unavailable
	// (RFC 3261 §21.5.4).
	ErrPortsExhausted = errors.New("media ports exhausted")

	// ErrPortsUnbindable reports that [PortPool.AcquireBound] tried as many
	// pairs as it is allowed and could bind none of them (another process
	// holds the ports, or the address is wrong). The error also wraps the
	// last bind error.
	ErrPortsUnbindable = errors.New("no bindable media port pair")
)

var (
	// ErrBadRelayOptions reports [RelayOptions] that [NewRelay] refuses: a
	// missing RTP socket, a socket given twice, or a negative count or
	// duration. The error names every problem.
	ErrBadRelayOptions = errors.New("invalid media relay options")

	// ErrMediaTimeout reports that a [Relay] saw no packet from either
	// leg's latched peer for its MediaTimeout. The call ends: the sip
	// package sends BYE on both legs.
	ErrMediaTimeout = errors.New("media timeout")
)

var (
	// ErrBadBridgeOptions reports [BridgeOptions] that [NewBridge] refuses:
	// no pool, an invalid or unspecified media address, or a negative
	// duration or buffer size. The error names every problem.
	ErrBadBridgeOptions = errors.New("invalid media bridge options")

	// ErrOfferAnswer reports a [Bridge.Answer] out of the offer/answer
	// order of RFC 3264 (no offer yet, or an answer from the leg that made
	// the offer), or an Offer or Answer on a leg other than [LegA] and
	// [LegB]. It is a bug in the caller (a 500), not in the peer's SDP.
	ErrOfferAnswer = errors.New("SDP answer without an offer from the other leg")

	// ErrBridgeClosed reports an Offer or Answer on a [Bridge] after Close.
	ErrBridgeClosed = errors.New("media bridge closed")
)
