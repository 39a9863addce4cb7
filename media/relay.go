package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [RelayOptions].
const (
	// DefaultLatchPackets is how many consecutive packets from a new
	// source latch it when LatchPackets is zero.
	DefaultLatchPackets = 1
	// DefaultRelatchAfter is how long the latched source must be silent
	// before another source may take its place, when RelatchAfter is zero.
	DefaultRelatchAfter = 3 * time.Second
	// DefaultMediaTimeout is how long the relay waits without a packet
	// from either leg before it stops with [ErrMediaTimeout], when
	// MediaTimeout is zero.
	DefaultMediaTimeout = 30 * time.Second
	// DefaultClockRate is the RTP clock rate, in Hz, used for jitter when
	// ClockRate is zero: 8000, the rate of PCMU, PCMA, G.729 and
	// telephone-event (RFC 3551 §6).
	DefaultClockRate = 8000
)

// MaxPacketSize is the largest datagram the relay forwards, in bytes: an
// Ethernet MTU. A larger datagram is dropped and counted as malformed rather
// than forwarded truncated.
const MaxPacketSize = 1500

// minTimeoutCheck is the shortest delay between two media timeout checks
// of a relay (see Relay.check).
const minTimeoutCheck = time.Millisecond

// LegSockets are the UDP sockets Veil receives one leg's media on, already
// bound by the caller (see [PortPool.AcquireBound]). The relay sends to the
// leg from the same sockets, as symmetric RTP requires (RFC 4961).
type LegSockets struct {
	// RTP receives and sends the leg's RTP, and its RTCP too when RTCP is
	// nil. It must not be nil.
	RTP net.PacketConn
	// RTCP receives and sends the leg's RTCP. It is nil when the leg
	// negotiated rtcp-mux (RFC 5761): RTCP then shares the RTP socket.
	RTCP net.PacketConn
}

// RelayOptions configures [NewRelay]. Apart from the sockets, the zero value
// of each field means its default.
//
// A *net.UDPConn is relayed without allocation; any other net.PacketConn
// works but costs an allocation per packet (its ReadFrom returns a net.Addr).
type RelayOptions struct {
	// A and B are the sockets of the two legs: media read from A's sockets
	// is sent from B's to B's peer, and the other way round. Both RTP
	// sockets are required; every socket given must be distinct.
	A, B LegSockets
	// PeerA and PeerB are where each leg's peer said, in its SDP, it
	// receives RTP ([MediaInfo].Peer). The relay sends there until it
	// latches the peer's real source, and a packet from that address
	// latches at once, in place of any other source. An invalid or
	// unspecified address, or port 0, means unknown: the relay then learns
	// the peer from its first packets and sends nothing to it before.
	// [Relay.SetPeer] changes them while the relay runs.
	PeerA, PeerB netip.AddrPort
	// PeerRTCPA and PeerRTCPB are where each peer receives RTCP, for a leg
	// with an RTCP socket. Default: the RTP peer's port plus one
	// (RFC 3550 §11); set them from an a=rtcp attribute (RFC 3605). Ignored
	// for a leg without an RTCP socket.
	PeerRTCPA, PeerRTCPB netip.AddrPort
	// AllowA and AllowB restrict which sources may latch on each leg: a
	// source latches only if its IP is the leg's signalled (SDP) address
	// or inside one of the prefixes, at any port (a NAT'd peer sends from
	// another port than its SDP says). Packets from other sources are
	// dropped and counted in DroppedSource. nil means any source may
	// latch; an empty non-nil slice only the signalled address.
	// [Relay.SetAllowed] changes them while the relay runs.
	AllowA, AllowB []netip.Prefix
	// LatchPackets is how many consecutive packets a new source must send
	// to a socket before the relay latches it, the first time or in place
	// of a silent one. Until then its packets are dropped and counted.
	// Default 1.
	LatchPackets int
	// RelatchAfter is how long the latched source of a socket must be
	// silent before a new source may latch; carriers' media can move. Until
	// then packets from any other source are dropped and counted, so that
	// no foreign RTP bleeds into the call. Default 3 s.
	RelatchAfter time.Duration
	// MediaTimeout is how long the relay waits without a packet from
	// either leg's latched peer before it stops with [ErrMediaTimeout].
	// Default 30 s.
	MediaTimeout time.Duration
	// ClockRate is the RTP clock rate of the media, in Hz, used to express
	// arrival times in timestamp units for the jitter estimate
	// (RFC 3550 §6.4.1). Default 8000.
	ClockRate int
	// Now is the clock of latching, timeouts and jitter. Default time.Now.
	Now func() time.Time
	// ArmLater leaves the media timeout off until [Relay.Arm]. A call's
	// media section exists from the INVITE on, but may ring for a minute
	// with no media (or with early media that then stops): only the answer
	// starts the clock. By default a relay is armed from Start.
	ArmLater bool
}

// Leg names one of the two legs of a [Relay] or [Bridge].
type Leg uint8

// The legs: A is the caller's carrier, B the callee's.
const (
	LegA Leg = iota
	LegB
)

// String returns "leg A" or "leg B".
func (l Leg) String() string {
	switch l {
	case LegA:
		return "leg A"
	case LegB:
		return "leg B"
	}
	return "Leg(" + strconv.Itoa(int(l)) + ")"
}

// other returns the leg facing l.
func (l Leg) other() Leg { return l ^ 1 }

// RelayStats is a snapshot of a [Relay], one entry per direction.
type RelayStats struct {
	// AToB is the media read from leg A and sent to leg B.
	AToB DirectionStats
	// BToA is the media read from leg B and sent to leg A.
	BToA DirectionStats
}

// DirectionStats counts the media of one direction of a [Relay]: read from
// the sending leg's sockets, sent on the other leg's. Each field is read
// atomically, but the fields are not read at one instant: a snapshot taken
// while media flows may be off by a packet between fields.
type DirectionStats struct {
	// Packets and Bytes count the datagrams forwarded, RTP and RTCP.
	Packets uint64
	Bytes   uint64
	// RTCPPackets counts the RTCP datagrams among Packets.
	RTCPPackets uint64
	// DroppedSource counts packets dropped because they came from a
	// source other than the latched one (or arrived before a source
	// latched, while LatchPackets was not yet reached).
	DroppedSource uint64
	// DroppedMalformed counts packets dropped as not RTP or RTCP: shorter
	// than a header, version other than 2, or larger than MaxPacketSize.
	DroppedMalformed uint64
	// DroppedNoPeer counts packets dropped because the receiving leg's
	// peer was not known yet (no SDP address, nothing received from it).
	DroppedNoPeer uint64
	// WriteErrors counts packets the receiving leg's socket failed to send.
	WriteErrors uint64
	// Relatches counts the times the sending leg's source moved to a new
	// address after RelatchAfter of silence.
	Relatches uint64
	// RTPReceived counts the RTP packets accepted from the sending leg,
	// the base of Expected and Lost.
	RTPReceived uint64
	// Expected is the number of RTP packets the sequence numbers account
	// for (RFC 3550 §A.3), summed over the sources seen.
	Expected uint64
	// Lost is Expected minus the packets received; duplicates can make it
	// negative (RFC 3550 §6.4.1).
	Lost int64
	// Jitter is the interarrival jitter of the current source, in RTP
	// timestamp units (RFC 3550 §6.4.1, §A.8).
	Jitter uint32
	// SSRC is the synchronisation source of the last RTP packet.
	SSRC uint32
}

// Relay forwards the media of one media section of a bridged call between
// two legs, A and B: RTP and RTCP, each from the socket that received it to
// the other leg's socket of the same kind, and on to that leg's peer.
//
//	peer A --> [A.RTP]  --reader--> [B.RTP]  --> peer B
//	peer A <-- [A.RTP]  <--reader-- [B.RTP]  <-- peer B
//	           [A.RTCP] <-reader->  [B.RTCP]            (unless rtcp-mux)
//
// Each socket has one reader goroutine with its own 1500-byte buffer; a
// packet is forwarded without a lock and without an allocation. Each socket
// latches the source of its peer (symmetric RTP, RFC 4961): the first
// LatchPackets consecutive packets from one address latch it, and the other
// leg's reader sends to the latched address, read through an atomic
// pointer. After that, packets from any other source are dropped and
// counted, unless the latched source has been silent for RelatchAfter or
// the packet comes from the address signalling gave for the peer. With an
// allow set (RelayOptions.AllowA, [Relay.SetAllowed]) only a source whose
// IP is the signalled one or inside the set may latch at all, first time or
// later: the leg's carrier, at any port (NAT), never an attacker spraying
// the relay's ports before the peer's first packet. RTCP
// arriving on an RTP socket (rtcp-mux, RFC 5761 §4) is sent to the other
// leg's RTCP socket, or its RTP socket when that leg muxes too.
//
// [Relay.SetPeer] tells the relay, while it runs, where signalling says a
// leg's peer now receives (an answer, a re-INVITE): it publishes the address
// through the same atomic pointer, and the reader of that leg's socket sees
// the change with the one atomic load it already makes per packet and
// forgets what it had latched.
//
// Stats counters are atomics; the loss and jitter state of a direction is
// kept by the reader of that direction's RTP socket and published through
// atomics.
//
// The relay owns the sockets given to [NewRelay] and closes them when it
// stops. A Relay is safe for concurrent use; Close is idempotent and joins
// every goroutine the relay started.
type Relay struct {
	now          func() time.Time
	start        time.Time
	mediaTimeout time.Duration

	socks   []net.PacketConn
	readers []*reader

	// legs holds each leg's latches, indexed by Leg, for SetPeer.
	legs [2]relayLeg

	// armed turns the media timeout on; armedAt is the relay time it was
	// last armed at, stored before armed.
	armed   atomic.Bool
	armedAt atomic.Int64

	mu      sync.Mutex // guards the fields below and serialises SetPeer
	started bool
	closed  bool
	ended   bool // end ran: the timeout check must not be scheduled again
	err     error
	// timeout runs check; nil until the relay is first armed and started.
	timeout *time.Timer
	// onStop, when set (by the Bridge, before Start), is called once with
	// the error when the relay stops on its own (not on Close), from the
	// goroutine that stopped it. It must not call Close.
	onStop func(error)

	wg       sync.WaitGroup
	stop     chan struct{} // closed when the relay stops; tells the readers a read error is the stop
	done     chan struct{} // closed when the relay stops; see Done
	endOnce  sync.Once
	closeErr error // of closing the sockets; written once in end
}

// packetConn is the allocation-free interface of *net.UDPConn the relay
// reads and writes through.
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// pcAdapter makes a net.PacketConn that is not a *net.UDPConn a
// packetConn. It allocates a net.Addr per packet.
type pcAdapter struct {
	pc net.PacketConn
}

func (a pcAdapter) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, addr, err := a.pc.ReadFrom(b)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	if u, ok := addr.(*net.UDPAddr); ok {
		return n, u.AddrPort(), nil
	}
	// An unparsable address yields the invalid AddrPort, which never
	// latches.
	ap, _ := netip.ParseAddrPort(addr.String())
	return n, ap, nil
}

func (a pcAdapter) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return a.pc.WriteTo(b, net.UDPAddrFromAddrPort(addr))
}

func asPacketConn(pc net.PacketConn) packetConn {
	if c, ok := pc.(packetConn); ok {
		return c
	}
	return pcAdapter{pc}
}

// relayLeg is what SetPeer needs of one leg.
type relayLeg struct {
	rtp  *latch
	rtcp *latch // nil when the leg has no RTCP socket
	// mux sends the RTCP bound for this leg through its RTP socket to its
	// RTP peer, as rtcp-mux (RFC 5761) negotiated after NewRelay wants.
	// Only meaningful when rtcp is not nil.
	mux atomic.Bool
}

// dest is what a latch publishes: where to send to the peer and what
// signalling said. A published dest is never modified, only replaced.
type dest struct {
	// addr is where packets for the peer go; invalid while unknown.
	addr netip.AddrPort
	// sdp is the peer's address from signalling; invalid if unknown or
	// unusable.
	sdp netip.AddrPort
	// gen counts SetPeer calls on the latch. A reader that finds a gen
	// other than its own forgets what it latched and starts over from sdp.
	gen uint64
}

// signalled is the dest of a peer address from signalling at generation
// gen: sent to at once if usable, unknown otherwise.
func signalled(sdp netip.AddrPort, gen uint64) *dest {
	d := &dest{gen: gen}
	if usablePeer(sdp) {
		d.sdp = unmap(sdp)
		d.addr = d.sdp
	}
	return d
}

// latch is the peer of one socket: where the relay sends to it and which
// source it accepts from it. peer and relatches are read by any goroutine;
// pubGen belongs to SetPeer (under Relay.mu); every other field belongs to
// the reader goroutine of the socket.
type latch struct {
	// peer is the destination of packets sent from this socket; never nil.
	// SetPeer replaces it with a new generation; the reader replaces it,
	// by compare-and-swap on the value it loaded, when it latches, so a
	// SetPeer racing a latch always wins.
	peer      atomic.Pointer[dest]
	relatches atomic.Uint64
	pubGen    uint64
	// allow, when not nil, is the set of prefixes a source other than
	// the signalled address must be in to latch (see RelayOptions.AllowA).
	allow atomic.Pointer[[]netip.Prefix]

	need         int
	relatchAfter int64
	gen          uint64         // generation of the state below
	sdp          netip.AddrPort // from signalling; the invalid value if unknown
	latched      bool
	cur          netip.AddrPort
	lastSeen     int64
	cand         netip.AddrPort
	candN        int
}

func newLatch(sdp netip.AddrPort, need int, relatchAfter time.Duration) *latch {
	l := &latch{need: need, relatchAfter: int64(relatchAfter)}
	d := signalled(sdp, 0)
	l.sdp = d.sdp
	l.peer.Store(d)
	return l
}

// publish makes sdp the signalled peer address: sent to from now on, and
// latched by its first packet. The caller holds Relay.mu.
func (l *latch) publish(sdp netip.AddrPort) {
	l.pubGen++
	l.peer.Store(signalled(sdp, l.pubGen))
}

// accept reports whether a packet from src, arriving at now (relay time in
// ns), comes from the latched peer, latching or re-latching src when it
// qualifies.
func (l *latch) accept(src netip.AddrPort, now int64) bool {
	// The one atomic load of the latch's own state per packet: it tells
	// whether SetPeer published a new address since the last packet.
	d := l.peer.Load()
	if d.gen != l.gen {
		l.reset(d)
	}
	if l.latched && src == l.cur {
		l.lastSeen = now
		return true
	}
	if src == l.sdp && l.sdp.IsValid() {
		// The signalled address latches at once, even in place of a
		// source learnt otherwise: after a SetPeer, packets still in
		// flight from the old source must not lock the new address out
		// for RelatchAfter.
		if l.latched {
			l.relatches.Add(1)
		}
		l.set(src, now, d)
		return true
	}
	if l.latched && now-l.lastSeen < l.relatchAfter {
		l.candN = 0
		return false
	}
	if !src.IsValid() || !l.allowed(src.Addr()) {
		return false
	}
	if src != l.cand {
		l.cand, l.candN = src, 0
	}
	if l.candN++; l.candN < l.need {
		return false
	}
	if l.latched {
		l.relatches.Add(1)
	}
	l.set(src, now, d)
	return true
}

// allowed reports whether a source at ip may latch: any when no allow set
// was given, else the signalled address's IP or one inside the set.
func (l *latch) allowed(ip netip.Addr) bool {
	set := l.allow.Load()
	if set == nil {
		return true
	}
	if l.sdp.IsValid() && ip == l.sdp.Addr() {
		return true
	}
	for _, p := range *set {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// setAllow stores the allow set of the latch (nil: any source).
func (l *latch) setAllow(set []netip.Prefix) {
	if set == nil {
		l.allow.Store(nil)
		return
	}
	l.allow.Store(&set)
}

// normalisePrefixes returns a copy of ps with IPv4-mapped IPv6 prefixes
// unmapped (sources are matched unmapped) and invalid ones dropped; nil
// stays nil.
func normalisePrefixes(ps []netip.Prefix) []netip.Prefix {
	if ps == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		addr, bits := p.Addr(), p.Bits()
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(addr.WithZone(""), bits).Masked())
	}
	return out
}

// reset forgets the latched source after SetPeer published d: the peer is
// learnt again, starting from d's signalled address.
func (l *latch) reset(d *dest) {
	l.gen, l.sdp = d.gen, d.sdp
	l.latched, l.cur, l.lastSeen = false, netip.AddrPort{}, 0
	l.cand, l.candN = netip.AddrPort{}, 0
}

// set latches src. d is the dest loaded at the start of the packet.
func (l *latch) set(src netip.AddrPort, now int64, d *dest) {
	l.latched, l.cur, l.lastSeen = true, src, now
	l.cand, l.candN = netip.AddrPort{}, 0
	if d.addr == src {
		return // latched where signalling said: nothing to publish
	}
	// The only allocation, once per (re)latch. Should SetPeer have
	// replaced d meanwhile, the swap fails and the signalled address
	// stands; the next packet sees the new generation and starts over.
	l.peer.CompareAndSwap(d, &dest{addr: src, sdp: l.sdp, gen: l.gen})
}

// sink is where a reader sends one kind of packet: a socket of the other
// leg and that socket's latch.
type sink struct {
	conn  packetConn
	latch *latch
}

// send writes p to the sink's peer and counts the outcome in c.
func (s *sink) send(p []byte, c *dirCounters) bool {
	dst := s.latch.peer.Load()
	if !dst.addr.IsValid() {
		c.noPeer.Add(1)
		return false
	}
	if _, err := s.conn.WriteToUDPAddrPort(p, dst.addr); err != nil {
		c.writeErrs.Add(1)
		return false
	}
	return true
}

// dirCounters are the atomic counters of one reader; a direction's stats
// sum those of its readers.
type dirCounters struct {
	packets, bytes, rtcp                  atomic.Uint64
	foreign, malformed, noPeer, writeErrs atomic.Uint64
}

// rtpCounters publish a reader's loss and jitter state.
type rtpCounters struct {
	received, expected atomic.Uint64
	lost               atomic.Int64
	jitter, ssrc       atomic.Uint32
}

// reader is the goroutine reading one socket.
type reader struct {
	r        *Relay
	name     string
	in       packetConn
	latch    *latch
	rtpOut   sink
	rtcpOut  sink
	outMux   *atomic.Bool // the other leg's relayLeg.mux; nil if it has no RTCP socket
	rtcpOnly bool         // an RTCP socket: no RTP expected
	fromB    bool         // reads leg B: counts in RelayStats.BToA
	rate     int64
	c        dirCounters
	rtp      rtpCounters
	seq      seqState     // owned by the goroutine
	active   atomic.Int64 // relay time of the last accepted packet
}

// NewRelay returns a relay between the legs of opts, not started. From the
// moment it returns a relay, the relay owns the sockets of opts and closes
// them in Close (or when it stops on its own); when it returns an error,
// wrapping [ErrBadRelayOptions], the caller still owns them.
func NewRelay(opts RelayOptions) (*Relay, error) {
	orDefault(&opts.LatchPackets, DefaultLatchPackets)
	orDefault(&opts.RelatchAfter, DefaultRelatchAfter)
	orDefault(&opts.MediaTimeout, DefaultMediaTimeout)
	orDefault(&opts.ClockRate, DefaultClockRate)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	r := &Relay{
		now:          opts.Now,
		mediaTimeout: opts.MediaTimeout,
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	r.start = r.now()
	if !opts.ArmLater {
		r.armed.Store(true) // armedAt 0: Start sets the readers' clocks
	}

	type leg struct {
		rtp, rtcp       packetConn
		rtpL, rtcpL     *latch
		rtpSink, rtcpSk sink
		mux             *atomic.Bool
	}
	mk := func(s LegSockets, peer, peerRTCP netip.AddrPort, allow []netip.Prefix) *leg {
		allow = normalisePrefixes(allow)
		l := &leg{rtp: asPacketConn(s.RTP)}
		l.rtpL = newLatch(peer, opts.LatchPackets, opts.RelatchAfter)
		l.rtpL.setAllow(allow)
		l.rtpSink = sink{l.rtp, l.rtpL}
		l.rtcpSk = l.rtpSink
		if s.RTCP != nil {
			l.rtcp = asPacketConn(s.RTCP)
			l.rtcpL = newLatch(rtcpPeer(peer, peerRTCP), opts.LatchPackets, opts.RelatchAfter)
			l.rtcpL.setAllow(allow)
			l.rtcpSk = sink{l.rtcp, l.rtcpL}
		}
		return l
	}
	a := mk(opts.A, opts.PeerA, opts.PeerRTCPA, opts.AllowA)
	b := mk(opts.B, opts.PeerB, opts.PeerRTCPB, opts.AllowB)
	r.legs[LegA].rtp, r.legs[LegA].rtcp = a.rtpL, a.rtcpL
	r.legs[LegB].rtp, r.legs[LegB].rtcp = b.rtpL, b.rtcpL
	if a.rtcpL != nil {
		a.mux = &r.legs[LegA].mux
	}
	if b.rtcpL != nil {
		b.mux = &r.legs[LegB].mux
	}
	rate := int64(opts.ClockRate)
	add := func(name string, pc net.PacketConn, in packetConn, l *latch, to *leg, rtcpOnly bool) {
		r.socks = append(r.socks, pc)
		r.readers = append(r.readers, &reader{
			r: r, name: name, in: in, latch: l,
			rtpOut: to.rtpSink, rtcpOut: to.rtcpSk, outMux: to.mux, rtcpOnly: rtcpOnly, rate: rate,
			fromB: to == a,
		})
	}
	add("leg A RTP", opts.A.RTP, a.rtp, a.rtpL, b, false)
	if opts.A.RTCP != nil {
		add("leg A RTCP", opts.A.RTCP, a.rtcp, a.rtcpL, b, true)
	}
	add("leg B RTP", opts.B.RTP, b.rtp, b.rtpL, a, false)
	if opts.B.RTCP != nil {
		add("leg B RTCP", opts.B.RTCP, b.rtcp, b.rtcpL, a, true)
	}
	return r, nil
}

// validate reports every problem of opts, defaults applied.
func (o *RelayOptions) validate() error {
	var probs []string
	if o.A.RTP == nil {
		probs = append(probs, "leg A has no RTP socket")
	}
	if o.B.RTP == nil {
		probs = append(probs, "leg B has no RTP socket")
	}
	socks := []net.PacketConn{o.A.RTP, o.A.RTCP, o.B.RTP, o.B.RTCP}
	for i, s := range socks {
		for _, t := range socks[i+1:] {
			if s != nil && s == t {
				probs = append(probs, "a socket is given twice")
			}
		}
	}
	if o.LatchPackets < 0 {
		probs = append(probs, fmt.Sprintf("latch packets %d is negative", o.LatchPackets))
	}
	if o.RelatchAfter < 0 {
		probs = append(probs, fmt.Sprintf("relatch after %v is negative", o.RelatchAfter))
	}
	if o.MediaTimeout < 0 {
		probs = append(probs, fmt.Sprintf("media timeout %v is negative", o.MediaTimeout))
	}
	if o.ClockRate < 0 {
		probs = append(probs, fmt.Sprintf("clock rate %d is negative", o.ClockRate))
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", strings.Join(probs, "; "), ErrBadRelayOptions)
}

// rtcpPeer is where a leg with an RTCP socket sends RTCP: rtcp if usable,
// else the RTP peer's port plus one (RFC 3550 §11).
func rtcpPeer(rtp, rtcp netip.AddrPort) netip.AddrPort {
	if usablePeer(rtcp) {
		return rtcp
	}
	if usablePeer(rtp) && rtp.Port() < 65535 {
		return netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	}
	return netip.AddrPort{}
}

// usablePeer reports whether an SDP address can be sent to.
func usablePeer(ap netip.AddrPort) bool {
	return ap.IsValid() && !ap.Addr().IsUnspecified() && ap.Port() != 0
}

// unmap turns an IPv4-mapped IPv6 address into IPv4, so that a source read
// on a dual-stack socket compares equal to the SDP's IPv4 address.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// elapsed is the relay time: nanoseconds since NewRelay on the relay clock.
func (r *Relay) elapsed() int64 {
	return int64(r.now().Sub(r.start))
}

// Start starts one reader goroutine per socket and the media timeout
// check. It does nothing when the relay has already started or stopped.
// The media timeout counts from Start, or from Arm with ArmLater.
func (r *Relay) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	now := r.elapsed()
	for _, rd := range r.readers {
		rd.active.Store(now)
	}
	r.wg.Add(len(r.readers))
	for _, rd := range r.readers {
		go rd.run()
	}
	if r.armed.Load() {
		r.scheduleLocked(r.mediaTimeout)
	}
}

// SetPeer tells the relay where leg's peer receives media now, as
// signalling learnt it (the answer) or changed it (a re-INVITE or UPDATE):
// rtp for RTP, rtcp for RTCP when the leg has an RTCP socket (default, when
// rtcp is not usable: rtp's port plus one, RFC 3550 §11).
//
// From the call on, the relay sends to that address and treats it as
// [RelayOptions] treats PeerA and PeerB: what it had latched for the leg is
// forgotten, a packet from the address latches at once, and otherwise the
// leg's source is learnt again by symmetric latching. An unusable address
// (invalid, unspecified as in the old-style hold of RFC 3264 §8.4, or port
// 0) stops sending to any signalled address: the relay sends to the leg
// only once it has latched a source from packets.
//
// SetPeer is safe to call from any goroutine while the relay runs, and
// before Start or after Close (it then does no harm). Concurrent calls are
// serialised; the last one wins. A leg other than LegA and LegB is ignored.
func (r *Relay) SetPeer(leg Leg, rtp, rtcp netip.AddrPort) {
	if leg > LegB {
		return
	}
	l := &r.legs[leg]
	r.mu.Lock()
	defer r.mu.Unlock()
	l.rtp.publish(rtp)
	if l.rtcp != nil {
		l.rtcp.publish(rtcpPeer(rtp, rtcp))
	}
}

// SetAllowed replaces the set of prefixes a source of leg must be in to
// latch, besides the leg's signalled address (see RelayOptions.AllowA); nil
// lets any source latch. A source already latched stays latched. Safe from
// any goroutine.
func (r *Relay) SetAllowed(leg Leg, allow []netip.Prefix) {
	if leg > LegB {
		return
	}
	allow = normalisePrefixes(allow)
	l := &r.legs[leg]
	l.rtp.setAllow(allow)
	if l.rtcp != nil {
		l.rtcp.setAllow(allow)
	}
}

// setRTCPMux says whether leg negotiated rtcp-mux (RFC 5761) after
// NewRelay: RTCP bound for the leg then leaves through its RTP socket to its
// RTP peer, and its RTCP socket, still read, expects nothing. It changes
// nothing for a leg built without an RTCP socket, which always muxes. Safe
// from any goroutine.
func (r *Relay) setRTCPMux(leg Leg, mux bool) {
	if leg <= LegB {
		r.legs[leg].mux.Store(mux)
	}
}

// Arm starts the media timeout of a relay built with ArmLater, and restarts
// the idle clock of any relay: [ErrMediaTimeout] comes MediaTimeout after
// the later of Arm and the last packet. Until its first Arm, a relay built
// with ArmLater never times out. Safe from any goroutine, before or after
// Start.
func (r *Relay) Arm() {
	r.armedAt.Store(r.elapsed())
	r.armed.Store(true)
	r.mu.Lock()
	if r.started {
		r.scheduleLocked(r.mediaTimeout)
	}
	r.mu.Unlock()
}

// disarm turns the media timeout off again until the next Arm: for a media
// section the answer rejected, which will carry no media.
func (r *Relay) disarm() {
	r.armed.Store(false)
}

// Done returns a channel closed when the relay stops: on Close, on a media
// timeout, or when a socket fails. Err then says why. The owner must still
// call Close to join the relay's goroutines.
func (r *Relay) Done() <-chan struct{} {
	return r.done
}

// Err returns nil while the relay runs and after Close; [ErrMediaTimeout]
// (or a socket read error) when the relay stopped on its own before Close.
func (r *Relay) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close stops the relay: it closes every socket, which ends the readers,
// and waits for all its goroutines to return. It returns the error of
// closing the sockets, the same on every call. Close is idempotent and safe
// to call from any goroutine other than the relay's own.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.end(nil)
	r.wg.Wait()
	return r.closeErr
}

// end stops the relay once: it records why, closes Done and the sockets.
// It does not wait for the goroutines, so that they may call it.
func (r *Relay) end(err error) {
	r.endOnce.Do(func() {
		r.mu.Lock()
		r.err = err
		r.ended = true
		if r.timeout != nil {
			r.timeout.Stop()
		}
		onStop := r.onStop
		if err == nil {
			onStop = nil // Close: the owner knows
		}
		r.mu.Unlock()
		close(r.stop)
		var errs []error
		for _, s := range r.socks {
			if e := s.Close(); e != nil {
				errs = append(errs, e)
			}
		}
		r.closeErr = errors.Join(errs...)
		close(r.done)
		if onStop != nil {
			onStop(err)
		}
	})
}

// scheduleLocked has check run after d, in place of any check already
// scheduled. r.mu is held.
//
// The media timeout is a deadline, not a poll: a relay whose media flows
// is checked once per MediaTimeout, and one whose call ends first (most
// calls, with the default 30 s) never, so an idle or short call costs a
// runtime timer and no goroutine.
func (r *Relay) scheduleLocked(d time.Duration) {
	if r.ended {
		return
	}
	if r.timeout == nil {
		r.timeout = time.AfterFunc(d, r.check)
		return
	}
	r.timeout.Reset(d)
}

// check ends the relay with ErrMediaTimeout when, armed, no reader has
// accepted a packet for MediaTimeout since the later of the last packet and
// Arm; otherwise it looks again when that would next be the case. It runs
// on the timer's goroutine. Should Close race it, it finds the relay ended
// and does nothing.
func (r *Relay) check() {
	if !r.armed.Load() {
		return // disarm: Arm schedules the next check
	}
	last := r.armedAt.Load()
	for _, rd := range r.readers {
		last = max(last, rd.active.Load())
	}
	idle := time.Duration(r.elapsed() - last)
	if idle >= r.mediaTimeout {
		r.end(ErrMediaTimeout)
		return
	}
	r.mu.Lock()
	r.scheduleLocked(min(max(r.mediaTimeout-idle, minTimeoutCheck), r.mediaTimeout))
	r.mu.Unlock()
}

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() RelayStats {
	var s RelayStats
	for _, rd := range r.readers {
		d := &s.AToB
		if rd.fromB {
			d = &s.BToA
		}
		d.Packets += rd.c.packets.Load()
		d.Bytes += rd.c.bytes.Load()
		d.RTCPPackets += rd.c.rtcp.Load()
		d.DroppedSource += rd.c.foreign.Load()
		d.DroppedMalformed += rd.c.malformed.Load()
		d.DroppedNoPeer += rd.c.noPeer.Load()
		d.WriteErrors += rd.c.writeErrs.Load()
		d.Relatches += rd.latch.relatches.Load()
		if !rd.rtcpOnly {
			d.RTPReceived = rd.rtp.received.Load()
			d.Expected = rd.rtp.expected.Load()
			d.Lost = rd.rtp.lost.Load()
			d.Jitter = rd.rtp.jitter.Load()
			d.SSRC = rd.rtp.ssrc.Load()
		}
	}
	return s
}

// run reads the socket until it is closed.
func (rd *reader) run() {
	defer rd.r.wg.Done()
	// One byte over MaxPacketSize tells a datagram that was cut short.
	// Buffers are reused across calls: four readers a call at a thousand
	// calls a second would otherwise be 6 MB/s of garbage.
	bp := packetBufs.Get().(*[]byte)
	defer packetBufs.Put(bp)
	buf := *bp
	for {
		n, src, err := rd.in.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-rd.r.stop:
				return
			default:
			}
			// The relay owns the socket and sets no deadline: any other
			// error (a close by someone else included) ends the relay,
			// rather than spinning on a socket that keeps failing.
			rd.r.end(fmt.Errorf("reading %s: %w", rd.name, err))
			return
		}
		rd.handle(buf[:n], src, rd.r.elapsed())
	}
}

// packetBufs holds the readers' packet buffers.
var packetBufs = sync.Pool{New: func() any {
	b := make([]byte, MaxPacketSize+1)
	return &b
}}

// Packet kinds, as classify tells them.
const (
	kindBad = iota
	kindRTP
	kindRTCP
)

// classify tells RTP from RTCP (RFC 5761 §4: RTCP packet types 192..223
// fill the second octet) and rejects what is neither.
func classify(p []byte, rtcpOnly bool) int {
	if len(p) > MaxPacketSize || len(p) < 8 || p[0]>>6 != 2 {
		return kindBad
	}
	if rtcpOnly || (p[1] >= 192 && p[1] <= 223) {
		return kindRTCP
	}
	// RTP fixed header (RFC 3550 §5.1) and its CSRC list must fit.
	if len(p) < 12+4*int(p[0]&0x0f) {
		return kindBad
	}
	return kindRTP
}

// handle relays one packet, read from src at now (relay time). It runs on
// the reader goroutine and neither locks nor allocates.
func (rd *reader) handle(p []byte, src netip.AddrPort, now int64) {
	kind := classify(p, rd.rtcpOnly)
	if kind == kindBad {
		rd.c.malformed.Add(1)
		return
	}
	if !rd.latch.accept(unmap(src), now) {
		rd.c.foreign.Add(1)
		return
	}
	rd.active.Store(now)
	out := &rd.rtpOut
	if kind == kindRTCP {
		// RTCP takes the other leg's RTCP socket unless that leg has
		// since negotiated rtcp-mux; the extra load is paid by RTCP only.
		if rd.outMux == nil || !rd.outMux.Load() {
			out = &rd.rtcpOut
		}
	} else {
		rd.trackRTP(p, now)
	}
	if !out.send(p, &rd.c) {
		return
	}
	rd.c.packets.Add(1)
	rd.c.bytes.Add(uint64(len(p)))
	if kind == kindRTCP {
		rd.c.rtcp.Add(1)
	}
}

// Sequence tracking constants of RFC 3550 §A.1.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

// seqState is the loss and jitter state of one direction's RTP, after
// RFC 3550 §A.1, §A.3 and §A.8. The probation of §A.1 is left out:
// latching already vets the source. Owned by one reader goroutine.
type seqState struct {
	started bool
	ssrc    uint32
	maxSeq  uint16
	cycles  uint64
	baseSeq uint64
	badSeq  uint32
	recv    uint64
	// Totals of earlier sources (or sequence restarts), folded in.
	prevExpected uint64
	prevRecv     uint64

	haveTransit bool
	transit     int32
	jitter16    int64 // jitter scaled by 16, as in §A.8
}

func (s *seqState) restart(seq uint16) {
	s.prevExpected += s.expected()
	s.prevRecv += s.recv
	s.maxSeq, s.cycles, s.baseSeq = seq, 0, uint64(seq)
	s.badSeq = seqMod + 1
	s.recv = 0
}

func (s *seqState) expected() uint64 {
	if !s.started {
		return 0
	}
	return s.cycles + uint64(s.maxSeq) - s.baseSeq + 1
}

// update counts a packet with sequence number seq (RFC 3550 §A.1).
func (s *seqState) update(seq uint16) {
	udelta := seq - s.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < s.maxSeq {
			s.cycles += seqMod
		}
		s.maxSeq = seq
	case udelta <= seqMod-maxMisorder:
		// A large jump: restart only if the next packet follows it.
		if uint32(seq) != s.badSeq {
			s.badSeq = uint32(seq+1) & (seqMod - 1)
			return
		}
		s.restart(seq)
	default:
		// A duplicate or a reordered packet: counted, max unchanged.
	}
	s.recv++
}

// trackRTP updates the loss and jitter state with an RTP packet and
// publishes it.
func (rd *reader) trackRTP(p []byte, now int64) {
	s := &rd.seq
	seq := uint16(p[2])<<8 | uint16(p[3])
	ts := uint32(p[4])<<24 | uint32(p[5])<<16 | uint32(p[6])<<8 | uint32(p[7])
	ssrc := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11])
	if !s.started || ssrc != s.ssrc {
		s.restart(seq)
		s.started, s.ssrc = true, ssrc
		s.haveTransit, s.jitter16 = false, 0
		s.recv = 1
	} else {
		s.update(seq)
	}
	// Arrival in timestamp units (§A.8); only differences matter, so the
	// value may wrap.
	sec, frac := now/int64(time.Second), now%int64(time.Second)
	arrival := uint32(sec*rd.rate + frac*rd.rate/int64(time.Second))
	transit := int32(arrival - ts)
	if s.haveTransit {
		d := int64(transit - s.transit)
		if d < 0 {
			d = -d
		}
		s.jitter16 += d - ((s.jitter16 + 8) >> 4)
	}
	s.transit, s.haveTransit = transit, true

	exp := s.prevExpected + s.expected()
	recv := s.prevRecv + s.recv
	rd.rtp.received.Store(recv)
	rd.rtp.expected.Store(exp)
	rd.rtp.lost.Store(int64(exp) - int64(recv))
	rd.rtp.jitter.Store(uint32(s.jitter16 >> 4))
	rd.rtp.ssrc.Store(ssrc)
}

// orDefault replaces a zero option with its default: the zero value of an
// options struct means "defaults" (house style), in one place per package.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
