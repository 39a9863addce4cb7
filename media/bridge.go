package media

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// BridgeOptions configures [NewBridge]. Pool and IP are required; the zero
// value of every other field means its default.
type BridgeOptions struct {
	// Pool hands out the RTP/RTCP port pairs, two per relayed media
	// section (one per leg). Required.
	Pool *PortPool
	// IP is Veil's media address: every socket binds to it and it is the
	// o= and c= address of every SDP the bridge produces, on both legs.
	// Required; it must not be unspecified (0.0.0.0 or ::), since the
	// peers send to it.
	IP netip.Addr
	// MediaTimeout is how long an armed relay waits without media before
	// the bridge stops with [ErrMediaTimeout]. Default
	// [DefaultMediaTimeout].
	MediaTimeout time.Duration
	// SocketBuffer is the SO_RCVBUF and SO_SNDBUF size, in bytes, of each
	// RTP and RTCP socket. Default (0): the operating system's.
	SocketBuffer int
	// Now is the clock of the relays. Default time.Now.
	Now func() time.Time
}

// Bridge is the media of one call between leg A (the caller's carrier) and
// leg B (the callee's carrier), driven by the SDP offer/answer exchange of
// RFC 3264: the sip package hands it each offer and answer it receives on a
// leg and sends on the other leg what the bridge returns.
//
//	      leg A                    Veil                       leg B
//	offer  -------> Offer(LegA) ---- rewritten offer ---------->
//	       <------- answer ------- Answer(LegB) <-------- answer
//	RTP   <=======> [A ports] <-- Relay per m= --> [B ports] <=======> RTP
//
// Each media section that carries media gets a [Relay] and two port pairs
// from the pool, one per leg, bound on opts.IP. Rejected sections (port 0,
// or not RTP) get none and stay rejected on the other leg.
//
// The SDP sent on a leg is a new description built by [RewriteSDP]: Veil's
// address and ports, the leg's own o= session id (random, fixed for the
// bridge's life) and a session version that grows each time the SDP sent on
// that leg differs from the last one (RFC 3264 §8). Codecs are not
// negotiated or transcoded: payload types pass through unchanged on both
// legs, so what one peer offers reaches the other as-is and, for example,
// telephone-event (RFC 4733) keeps its payload type end to end.
//
// rtcp-mux (RFC 5761): both ports of every pair are bound and every relay
// is given an RTCP socket per leg, whatever the offer says, so that a later
// offer may turn rtcp-mux on or off without rebinding. The a=rtcp-mux
// attribute passes through, so both legs end up muxing or not together:
// when an answer accepts the offer's rtcp-mux, the relay sends RTCP through
// the RTP sockets; RTCP arriving on an RTP socket is relayed in any case.
//
// Socket ownership: each section's [Relay] owns its four sockets and closes
// them; the bridge owns the port pairs and releases them to the pool after
// the relay has closed the sockets.
//
// Concurrency: Offer, Answer and Arm are called from one goroutine, the
// call's. Done, Err, Stats and Close are safe from any goroutine; Close is
// idempotent and joins every goroutine the bridge and its relays started.
type Bridge struct {
	pool    *PortPool
	ip      netip.Addr
	network string // "udp4" or "udp6", for opts.IP
	timeout time.Duration
	sockBuf int
	now     func() time.Time

	// Owned by the call goroutine (Offer, Answer, Arm).
	out   [2]legSDP         // what was last produced for each leg
	offer *offerState       // the last offer, nil before the first
	armed bool              // Arm was called
	secs  []*section        // one per m= line of the session, in order
	allow [2][]netip.Prefix // per leg, see SetAllowed; nil: any source
	mu    sync.Mutex        // guards the fields below; nothing called under it
	live  []*section        // sections holding a relay, for Stats and Close
	stop  bool              // Close has begun
	err   error             // why the bridge stopped on its own
	done  chan struct{}     // closed once, by fail or Close
	once  sync.Once         // closes done
	shut  sync.Once         // runs Close's teardown
	cerr  error             // Close's result
}

// legSDP is the o= state of one leg (RFC 4566 §5.2).
type legSDP struct {
	id      uint64
	version uint64
	last    []byte // the SDP last produced for the leg; nil before the first
}

// offerState is the last offer: which leg made it and what it said.
type offerState struct {
	from Leg
	info *SDPInfo
}

// section is one m= line of the session.
type section struct {
	// relay is nil while the section carries no media: rejected by every
	// offer so far.
	relay *Relay
	ports [2]Pair // Veil's pair on each leg, indexed by Leg
	// peer is the RTP address last given to the relay for each leg, so
	// that an unchanged address (a session refresh, a repeated answer)
	// leaves what the relay has latched alone: a peer behind NAT sends
	// from elsewhere than its SDP says, and resetting its latch would
	// send to the SDP address until its next packet.
	peer [2]netip.AddrPort
	// accepted is false while the last answer (or, before any answer, the
	// offer) rejects the section; an accepted section's relay is armed
	// with the bridge.
	accepted bool
}

// NewBridge returns a bridge with no media yet; the first [Bridge.Offer]
// allocates it. It returns an error wrapping [ErrBadBridgeOptions] that
// names every problem of opts.
func NewBridge(opts BridgeOptions) (*Bridge, error) {
	orDefault(&opts.MediaTimeout, DefaultMediaTimeout)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ip := opts.IP.Unmap()
	var probs []string
	if opts.Pool == nil {
		probs = append(probs, "no port pool")
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		probs = append(probs, fmt.Sprintf("media address %v is not a unicast address", opts.IP))
	}
	if opts.MediaTimeout < 0 {
		probs = append(probs, fmt.Sprintf("media timeout %v is negative", opts.MediaTimeout))
	}
	if opts.SocketBuffer < 0 {
		probs = append(probs, fmt.Sprintf("socket buffer %d is negative", opts.SocketBuffer))
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s: %w", strings.Join(probs, "; "), ErrBadBridgeOptions)
	}
	b := &Bridge{
		pool:    opts.Pool,
		ip:      ip,
		network: "udp4",
		timeout: opts.MediaTimeout,
		sockBuf: opts.SocketBuffer,
		now:     opts.Now,
		done:    make(chan struct{}),
	}
	if ip.Is6() {
		b.network = "udp6"
	}
	for i := range b.out {
		// 63 bits: some SDP stacks parse sess-id as a signed 64-bit
		// number. The version starts at 1 and only grows.
		b.out[i] = legSDP{id: rand.Uint64() >> 1, version: 1}
	}
	return b, nil
}

// Offer takes the SDP offer received on leg from and returns the offer to
// send on the other leg.
//
// The first offer (the INVITE's, normally from LegA) allocates every
// section that is not rejected: two port pairs, bound sockets and a started
// [Relay] that sends to the offerer's address at once (so early media from
// the other leg reaches it), its media timeout off until [Bridge.Arm]. A
// later offer (re-INVITE or UPDATE, from either leg) must keep every m=
// line (RFC 3264 §8): it updates the offerer's addresses, allocates a
// section that is new or was rejected until now, and passes direction
// attributes through (hold and resume).
//
// Errors: SDP that Veil refuses, or an offer with fewer m= lines than the
// session, wraps [ErrBadSDP] (488); running out of ports wraps
// [ErrPortsExhausted] or [ErrPortsUnbindable] (503). A failed Offer changes
// nothing: what it allocated is released before it returns.
func (b *Bridge) Offer(from Leg, sdp []byte) ([]byte, error) {
	if from > LegB {
		return nil, fmt.Errorf("offer from %v: %w", from, ErrOfferAnswer)
	}
	if b.stopped() {
		return nil, ErrBridgeClosed
	}
	p, err := parse(sdp)
	if err != nil {
		return nil, err
	}
	info := p.info()
	if n := len(info.Media); n < len(b.secs) {
		return nil, fmt.Errorf("offer has %d media sections, the session has %d (RFC 3264 §8.1): %w",
			n, len(b.secs), ErrBadSDP)
	}

	// Allocate what the offer needs before changing anything, so that a
	// failure leaves the session as it was.
	added := map[int]*section{}
	rollback := func() {
		for _, s := range added {
			b.release(s)
		}
	}
	for i, m := range info.Media {
		if m.Rejected || (i < len(b.secs) && b.secs[i].relay != nil) {
			continue
		}
		s, err := b.allocate(from, m)
		if err != nil {
			rollback()
			return nil, fmt.Errorf("media section %d: %w", i, err)
		}
		added[i] = s
	}
	to := from.other()
	ports := make([]int, len(info.Media))
	for i, m := range info.Media {
		s := added[i]
		if s == nil && i < len(b.secs) {
			s = b.secs[i]
		}
		if s != nil && s.relay != nil && !m.Rejected {
			ports[i] = s.ports[to].RTP
		}
	}
	out, next, err := b.produce(to, p, ports)
	if err != nil {
		rollback()
		return nil, err
	}

	// Commit.
	b.mu.Lock()
	if b.stop {
		b.mu.Unlock()
		rollback()
		return nil, ErrBridgeClosed
	}
	for len(b.secs) < len(info.Media) {
		b.secs = append(b.secs, &section{})
	}
	for i, s := range added {
		b.secs[i] = s
		b.live = append(b.live, s)
	}
	b.mu.Unlock()
	for i, m := range info.Media {
		s := b.secs[i]
		if added[i] != nil {
			b.startRelay(s.relay)
			continue
		}
		if s.relay != nil && !m.Rejected {
			b.setPeer(s, from, m.Peer)
		}
	}
	b.out[to] = next
	b.offer = &offerState{from: from, info: info}
	return out, nil
}

// Answer takes the SDP answer received on leg from to the last offer and
// returns the answer to send on the other leg. The relays send to the
// answerer's addresses from now on. A section the answer rejects (port 0)
// is rejected on the other leg too, and its relay stops counting towards
// the media timeout; its ports stay allocated until Close, so that another
// answer or a later offer may take it up again. rtcp-mux is in use where
// both the offer and the answer carry it.
//
// Answer may be called more than once for one offer (a 183 with early
// media, then the 200): the same answer gives the same result, session
// version included.
//
// Errors: an answer whose m= lines do not match the offer's, or SDP that
// Veil refuses, wraps [ErrBadSDP]; an answer with no offer, or from the
// offerer's leg, wraps [ErrOfferAnswer]. A failed Answer changes nothing.
func (b *Bridge) Answer(from Leg, sdp []byte) ([]byte, error) {
	if b.stopped() {
		return nil, ErrBridgeClosed
	}
	if b.offer == nil || from > LegB || from == b.offer.from {
		return nil, fmt.Errorf("answer from %v: %w", from, ErrOfferAnswer)
	}
	p, err := parse(sdp)
	if err != nil {
		return nil, err
	}
	info := p.info()
	offered := b.offer.info.Media
	if len(info.Media) != len(offered) {
		return nil, fmt.Errorf("answer has %d media sections, the offer %d (RFC 3264 §6): %w",
			len(info.Media), len(offered), ErrBadSDP)
	}
	to := b.offer.from
	ports := make([]int, len(info.Media))
	accept := make([]bool, len(info.Media))
	for i, m := range info.Media {
		s := b.secs[i]
		// An answer cannot take up a section the offer rejected: the
		// offerer's leg has no port for it.
		accept[i] = s.relay != nil && !offered[i].Rejected && !m.Rejected
		if accept[i] {
			ports[i] = s.ports[to].RTP
		}
	}
	out, next, err := b.produce(to, p, ports)
	if err != nil {
		return nil, err
	}

	// Commit.
	for i, m := range info.Media {
		s := b.secs[i]
		if s.relay == nil {
			continue
		}
		s.accepted = accept[i]
		if !accept[i] {
			s.relay.disarm()
			continue
		}
		b.setPeer(s, from, m.Peer)
		mux := offered[i].RTCPMux && m.RTCPMux
		s.relay.setRTCPMux(LegA, mux)
		s.relay.setRTCPMux(LegB, mux)
		if b.armed {
			s.relay.Arm()
		}
	}
	b.out[to] = next
	return out, nil
}

// Arm starts the media timeout of every relay whose section the last
// answer accepted (the call is answered), and restarts their idle clocks.
// Until Arm the bridge never times out: a call may ring for a minute, with
// or without early media. Sections accepted by later answers are armed as
// they are accepted.
func (b *Bridge) Arm() {
	b.armed = true
	for _, s := range b.secs {
		if s.relay != nil && s.accepted {
			s.relay.Arm()
		}
	}
}

// SetAllowed restricts the media sources that may latch on leg to those
// whose IP is the leg's SDP address or inside one of the prefixes (the
// leg's carrier), in every section, present and future; nil lets any source
// latch. Call it from the call's goroutine, like Offer.
func (b *Bridge) SetAllowed(leg Leg, allow []netip.Prefix) {
	if leg > LegB {
		return
	}
	b.allow[leg] = slices.Clone(allow)
	if allow != nil && b.allow[leg] == nil {
		b.allow[leg] = []netip.Prefix{}
	}
	for _, s := range b.secs {
		if s.relay != nil {
			s.relay.SetAllowed(leg, b.allow[leg])
		}
	}
}

// Done returns a channel closed when the bridge stops: when one of its
// relays stops on its own (a media timeout, a socket failure), Err then
// says why, or on Close. The owner must still call Close.
func (b *Bridge) Done() <-chan struct{} {
	return b.done
}

// Err returns why the bridge stopped on its own ([ErrMediaTimeout], or a
// socket error); nil while it runs, and nil if Close came first.
func (b *Bridge) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Stats returns the counters of the bridge's relays: each DirectionStats
// counter summed over the sections, Jitter the largest of them, SSRC that
// of the first section carrying media (normally the audio).
func (b *Bridge) Stats() RelayStats {
	b.mu.Lock()
	live := append([]*section(nil), b.live...)
	b.mu.Unlock()
	var st RelayStats
	for i, s := range live {
		rs := s.relay.Stats()
		st.AToB.add(rs.AToB, i == 0)
		st.BToA.add(rs.BToA, i == 0)
	}
	return st
}

// add sums o into d; first takes o's SSRC.
func (d *DirectionStats) add(o DirectionStats, first bool) {
	d.Packets += o.Packets
	d.Bytes += o.Bytes
	d.RTCPPackets += o.RTCPPackets
	d.DroppedSource += o.DroppedSource
	d.DroppedMalformed += o.DroppedMalformed
	d.DroppedNoPeer += o.DroppedNoPeer
	d.WriteErrors += o.WriteErrors
	d.Relatches += o.Relatches
	d.RTPReceived += o.RTPReceived
	d.Expected += o.Expected
	d.Lost += o.Lost
	d.Jitter = max(d.Jitter, o.Jitter)
	if first {
		d.SSRC = o.SSRC
	}
}

// Close stops every relay (closing its sockets), waits for every goroutine
// and releases every port pair to the pool. It returns the errors of
// closing the sockets, the same on every call. Close is idempotent and safe
// from any goroutine; Offer and Answer fail with [ErrBridgeClosed] after it.
func (b *Bridge) Close() error {
	b.shut.Do(func() {
		b.mu.Lock()
		b.stop = true
		live := b.live
		b.live = nil
		b.mu.Unlock()
		var errs []error
		for _, s := range live {
			if err := b.release(s); err != nil {
				errs = append(errs, err)
			}
		}
		b.cerr = errors.Join(errs...)
		b.once.Do(func() { close(b.done) })
	})
	return b.cerr
}

// stopped reports whether Close has begun.
func (b *Bridge) stopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stop
}

// fail records why a relay stopped on its own and closes Done, unless
// Close came first.
func (b *Bridge) fail(err error) {
	b.mu.Lock()
	if b.stop {
		b.mu.Unlock()
		return
	}
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.once.Do(func() { close(b.done) })
}

// allocate builds the section of media section m, offered on leg from: a
// pair per leg, bound, and a relay over them, not started. On error it holds
// nothing.
func (b *Bridge) allocate(from Leg, m MediaInfo) (*section, error) {
	s := &section{accepted: true}
	var socks [2]LegSockets
	for _, leg := range []Leg{LegA, LegB} {
		pair, err := b.pool.AcquireBound(func(p Pair) error {
			var err error
			socks[leg], err = b.bind(p)
			return err
		})
		if err != nil {
			if leg == LegB {
				closeSockets(socks[LegA])
				b.pool.Release(s.ports[LegA])
			}
			return nil, fmt.Errorf("ports for %v: %w", leg, err)
		}
		s.ports[leg] = pair
	}
	opts := RelayOptions{
		A: socks[LegA], B: socks[LegB],
		MediaTimeout: b.timeout,
		Now:          b.now,
		ArmLater:     true,
		AllowA:       b.allow[LegA],
		AllowB:       b.allow[LegB],
	}
	if from == LegA {
		opts.PeerA = m.Peer
	} else {
		opts.PeerB = m.Peer
	}
	s.peer[from] = m.Peer
	r, err := NewRelay(opts)
	if err != nil {
		// Our own options: a bug, but leave nothing behind.
		closeSockets(socks[LegA])
		closeSockets(socks[LegB])
		b.pool.Release(s.ports[LegA])
		b.pool.Release(s.ports[LegB])
		return nil, err
	}
	r.onStop = b.fail
	s.relay = r
	return s, nil
}

// bind binds both ports of p on the bridge's address. Both are bound even
// when the section negotiates rtcp-mux: see the rtcp-mux note on Bridge.
func (b *Bridge) bind(p Pair) (LegSockets, error) {
	rtp, err := b.listen(p.RTP)
	if err != nil {
		return LegSockets{}, err
	}
	rtcp, err := b.listen(p.RTCP)
	if err != nil {
		_ = rtp.Close()
		return LegSockets{}, err
	}
	return LegSockets{RTP: rtp, RTCP: rtcp}, nil
}

func (b *Bridge) listen(port int) (*net.UDPConn, error) {
	c, err := net.ListenUDP(b.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.ip, uint16(port))))
	if err != nil {
		return nil, err
	}
	if b.sockBuf > 0 {
		// A busy host drops bursts at the socket before the reader runs;
		// the operator sizes the buffers. Linux caps them at
		// net.core.rmem_max / wmem_max without an error.
		err = errors.Join(c.SetReadBuffer(b.sockBuf), c.SetWriteBuffer(b.sockBuf))
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("socket buffer of port %d: %w", port, err)
		}
	}
	return c, nil
}

func closeSockets(s LegSockets) {
	if s.RTP != nil {
		_ = s.RTP.Close()
	}
	if s.RTCP != nil {
		_ = s.RTCP.Close()
	}
}

// release closes s's relay, which closes its sockets, and only then gives
// its pairs back to the pool, so no pair returns while a socket holds it.
func (b *Bridge) release(s *section) error {
	err := s.relay.Close()
	b.pool.Release(s.ports[LegA])
	b.pool.Release(s.ports[LegB])
	return err
}

// startRelay starts r. A relay stopping on its own (media timeout, socket
// failure) reports it to the bridge through its stop hook, set before
// NewRelay's relay is shared (see allocate): no goroutine per relay waits
// for that. Start after Close does nothing.
func (b *Bridge) startRelay(r *Relay) {
	r.Start()
}

// setPeer gives s's relay leg's new RTP address, unless it is the one it
// already has (see section.peer).
func (b *Bridge) setPeer(s *section, leg Leg, peer netip.AddrPort) {
	if s.peer[leg] == peer {
		return
	}
	s.peer[leg] = peer
	// a=rtcp (RFC 3605) is not parsed: RTCP goes to the RTP port plus
	// one until latching learns where the peer's RTCP comes from.
	s.relay.SetPeer(leg, peer, netip.AddrPort{})
}

// produce rewrites in into the SDP for leg with the given ports, and
// returns it with the leg's o= state to keep if the caller commits. The
// session version grows only if the SDP differs from the last one produced
// for the leg (RFC 3264 §8: an unchanged description keeps its version).
func (b *Bridge) produce(leg Leg, in *parsed, ports []int) ([]byte, legSDP, error) {
	st := b.out[leg]
	addr := LegAddr{IP: b.ip, Ports: ports}
	out, err := in.rewrite(addr, RewriteOptions{SessionID: st.id, SessionVersion: st.version})
	if err != nil {
		return nil, st, err
	}
	if st.last != nil && !bytes.Equal(out, st.last) {
		st.version++
		out, err = in.rewrite(addr, RewriteOptions{SessionID: st.id, SessionVersion: st.version})
		if err != nil {
			return nil, b.out[leg], err
		}
	}
	st.last = out
	return out, st, nil
}
