package media

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout bounds every wait of these tests; nothing should take near it.
const waitTimeout = 5 * time.Second

// listenUDP binds a UDP socket on 127.0.0.1:0, closed at the end of the test
// (a second close, after the relay's, is harmless).
func listenUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("ListenUDP: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// rtpPacket builds an RTP packet (RFC 3550 §5.1), payload type 0.
func rtpPacket(seq uint16, ts, ssrc uint32, payload string) []byte {
	p := []byte{0x80, 0, byte(seq >> 8), byte(seq),
		byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts),
		byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc)}
	return append(p, payload...)
}

// rtcpPacket builds an RTCP receiver report header with no report block
// (RFC 3550 §6.4.2) followed by marker bytes.
func rtcpPacket(marker string) []byte {
	return append([]byte{0x80, 201, 0, 1, 0, 0, 0, 1}, marker...)
}

func send(tb testing.TB, from *net.UDPConn, to netip.AddrPort, p []byte) {
	tb.Helper()
	if _, err := from.WriteToUDPAddrPort(p, to); err != nil {
		tb.Fatalf("send to %v: %v", to, err)
	}
}

// recv reads one datagram or fails the test after waitTimeout.
func recv(tb testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		tb.Fatalf("reading on %v: %v", c.LocalAddr(), err)
	}
	return buf[:n], from
}

// expectPacket reads the next datagram on c and checks it is want, sent from
// wantFrom.
func expectPacket(tb testing.TB, c *net.UDPConn, want []byte, wantFrom netip.AddrPort) {
	tb.Helper()
	got, from := recv(tb, c)
	if !bytes.Equal(got, want) {
		tb.Fatalf("received %q, want %q", got, want)
	}
	if from != wantFrom {
		tb.Fatalf("received from %v, want %v", from, wantFrom)
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// testRelay is a relay with its sockets and the peers' sockets.
type testRelay struct {
	relay        *Relay
	aRTP, bRTP   *net.UDPConn // the relay's sockets
	aRTCP, bRTCP *net.UDPConn // nil under rtcp-mux
	peerA, peerB *net.UDPConn // the peers' RTP sockets
	peerARTCP    *net.UDPConn // nil under rtcp-mux
	peerBRTCP    *net.UDPConn
}

// relaySetup tunes newTestRelay.
type relaySetup struct {
	rtcpA, rtcpB bool // separate RTCP sockets on leg A / B
	sdpA, sdpB   bool // PeerA / PeerB set to the peers' real addresses
	opts         RelayOptions
}

// newTestRelay builds and starts a relay as setup says, closed at the end
// of the test.
func newTestRelay(tb testing.TB, setup relaySetup) *testRelay {
	tb.Helper()
	tr := &testRelay{aRTP: listenUDP(tb), bRTP: listenUDP(tb), peerA: listenUDP(tb), peerB: listenUDP(tb)}
	opts := setup.opts
	opts.A.RTP, opts.B.RTP = tr.aRTP, tr.bRTP
	if setup.rtcpA {
		tr.aRTCP, tr.peerARTCP = listenUDP(tb), listenUDP(tb)
		opts.A.RTCP = tr.aRTCP
	}
	if setup.rtcpB {
		tr.bRTCP, tr.peerBRTCP = listenUDP(tb), listenUDP(tb)
		opts.B.RTCP = tr.bRTCP
	}
	if setup.sdpA {
		opts.PeerA = addrOf(tr.peerA)
		if setup.rtcpA {
			opts.PeerRTCPA = addrOf(tr.peerARTCP)
		}
	}
	if setup.sdpB {
		opts.PeerB = addrOf(tr.peerB)
		if setup.rtcpB {
			opts.PeerRTCPB = addrOf(tr.peerBRTCP)
		}
	}
	r, err := NewRelay(opts)
	if err != nil {
		tb.Fatalf("NewRelay: %v", err)
	}
	tr.relay = r
	tb.Cleanup(func() { _ = r.Close() })
	r.Start()
	return tr
}

func TestNewRelayOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    func(s1, s2, s3 net.PacketConn) RelayOptions
		wantErr []string // substrings of the error; none for success
	}{
		{name: "defaults", opts: func(s1, s2, _ net.PacketConn) RelayOptions {
			return RelayOptions{A: LegSockets{RTP: s1}, B: LegSockets{RTP: s2}}
		}},
		{name: "separate RTCP", opts: func(s1, s2, s3 net.PacketConn) RelayOptions {
			return RelayOptions{A: LegSockets{RTP: s1, RTCP: s3}, B: LegSockets{RTP: s2}}
		}},
		{name: "no sockets", opts: func(_, _, _ net.PacketConn) RelayOptions { return RelayOptions{} },
			wantErr: []string{"leg A has no RTP", "leg B has no RTP"}},
		{name: "socket twice", opts: func(s1, s2, _ net.PacketConn) RelayOptions {
			return RelayOptions{A: LegSockets{RTP: s1}, B: LegSockets{RTP: s2, RTCP: s1}}
		}, wantErr: []string{"given twice"}},
		{name: "negatives", opts: func(s1, s2, _ net.PacketConn) RelayOptions {
			return RelayOptions{
				A: LegSockets{RTP: s1}, B: LegSockets{RTP: s2},
				LatchPackets: -1, RelatchAfter: -1, MediaTimeout: -1, ClockRate: -1,
			}
		}, wantErr: []string{"latch packets -1", "relatch after -1ns", "media timeout -1ns", "clock rate -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRelay(tt.opts(listenUDP(t), listenUDP(t), listenUDP(t)))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewRelay: %v", err)
				}
				// Not started: Close only closes the sockets.
				if err := r.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadRelayOptions) {
				t.Fatalf("NewRelay error = %v, want ErrBadRelayOptions", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRelayForwardsBothWays(t *testing.T) {
	tr := newTestRelay(t, relaySetup{sdpA: true, sdpB: true})
	// B's peer is known from its SDP, so B may speak first (early media).
	fromB := rtpPacket(7, 1000, 0xb0b, "hello from B")
	send(t, tr.peerB, addrOf(tr.bRTP), fromB)
	expectPacket(t, tr.peerA, fromB, addrOf(tr.aRTP))

	for i := range 3 {
		p := rtpPacket(uint16(100+i), uint32(160*i), 0xa11ce, "hello from A")
		send(t, tr.peerA, addrOf(tr.aRTP), p)
		expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))
	}
	// A reader counts a packet after its write returns, which can be
	// after the peer has it: wait for the count, do not race the reader.
	waitFor(t, "the forwarded packets counted", func() bool {
		st := tr.relay.Stats()
		return st.AToB.Packets == 3 && st.BToA.Packets == 1
	})
	st := tr.relay.Stats()
	pktLen := uint64(len(rtpPacket(0, 0, 0, "hello from A")))
	if st.AToB.Packets != 3 || st.AToB.Bytes != 3*pktLen || st.AToB.RTPReceived != 3 || st.AToB.SSRC != 0xa11ce {
		t.Errorf("AToB = %+v, want 3 packets, %d bytes, SSRC a11ce", st.AToB, 3*pktLen)
	}
	if st.BToA.Packets != 1 || st.BToA.Bytes != uint64(len(fromB)) {
		t.Errorf("BToA = %+v, want 1 packet of %d bytes", st.BToA, len(fromB))
	}
}

func TestRelaySymmetricLatching(t *testing.T) {
	tests := []struct {
		name string
		// decoySDP puts a wrong address (a silent socket) in A's SDP; else
		// A's SDP has none.
		decoySDP bool
	}{
		{name: "unknown in SDP"},
		{name: "SDP address differs from source", decoySDP: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var setup relaySetup
			var decoy *net.UDPConn
			if tt.decoySDP {
				decoy = listenUDP(t)
				setup.opts.PeerA = addrOf(decoy)
			} else {
				setup.opts.PeerA = netip.AddrPortFrom(netip.IPv4Unspecified(), 4000)
			}
			tr := newTestRelay(t, setup)

			// Nothing known of B yet: B's packet latches B, and is dropped
			// (no SDP address for A) or sent to the decoy.
			early := rtpPacket(1, 0, 0xb, "early B")
			send(t, tr.peerB, addrOf(tr.bRTP), early)
			if decoy != nil {
				expectPacket(t, decoy, early, addrOf(tr.aRTP))
			} else {
				waitFor(t, "the early packet dropped", func() bool { return tr.relay.Stats().BToA.DroppedNoPeer == 1 })
			}

			// A's first packet latches A and reaches the learnt B.
			pa := rtpPacket(1, 0, 0xa, "A speaks")
			send(t, tr.peerA, addrOf(tr.aRTP), pa)
			expectPacket(t, tr.peerB, pa, addrOf(tr.bRTP))

			// B now reaches A at its learnt source, not its SDP address.
			pb := rtpPacket(2, 160, 0xb, "B answers")
			send(t, tr.peerB, addrOf(tr.bRTP), pb)
			expectPacket(t, tr.peerA, pb, addrOf(tr.aRTP))
		})
	}
}

func TestRelayDropsForeignSource(t *testing.T) {
	tr := newTestRelay(t, relaySetup{sdpB: true})
	foreign := listenUDP(t)
	first := rtpPacket(1, 0, 0xa, "from A")
	send(t, tr.peerA, addrOf(tr.aRTP), first)
	expectPacket(t, tr.peerB, first, addrOf(tr.bRTP))

	// A foreign source after latching, even well-formed, is dropped.
	send(t, foreign, addrOf(tr.aRTP), rtpPacket(2, 160, 0xa, "BLEED"))
	waitFor(t, "the foreign packet dropped", func() bool { return tr.relay.Stats().AToB.DroppedSource == 1 })
	// The callee's next packet is A's, sent after: the foreign one never
	// reached it.
	next := rtpPacket(3, 320, 0xa, "A again")
	send(t, tr.peerA, addrOf(tr.aRTP), next)
	expectPacket(t, tr.peerB, next, addrOf(tr.bRTP))

	waitFor(t, "the forwarded packets counted", func() bool { return tr.relay.Stats().AToB.Packets == 2 })
	st := tr.relay.Stats().AToB
	if st.Packets != 2 || st.DroppedSource != 1 || st.Relatches != 0 {
		t.Errorf("AToB = %+v, want 2 packets, 1 dropped, no relatch", st)
	}
}

func TestRelayRelatch(t *testing.T) {
	const relatchAfter = 50 * time.Millisecond
	for _, latchPackets := range []int{1, 3} {
		t.Run(strings.Repeat("n", latchPackets), func(t *testing.T) {
			clk := newFakeClock()
			tr := newTestRelay(t, relaySetup{sdpB: true, opts: RelayOptions{
				LatchPackets: latchPackets, RelatchAfter: relatchAfter, Now: clk.Now,
			}})
			moved := listenUDP(t) // A's media, after it moves
			stats := func() DirectionStats { return tr.relay.Stats().AToB }

			// The first latch needs latchPackets packets too.
			var seq uint16
			for i := range latchPackets {
				seq++
				p := rtpPacket(seq, 0, 0xa, "A")
				send(t, tr.peerA, addrOf(tr.aRTP), p)
				if i < latchPackets-1 {
					waitFor(t, "a pre-latch drop", func() bool { return stats().DroppedSource == uint64(i+1) })
					continue
				}
				expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))
			}
			dropped := stats().DroppedSource

			// Before RelatchAfter of silence, the new source is dropped.
			clk.Advance(relatchAfter - time.Millisecond)
			seq++
			send(t, moved, addrOf(tr.aRTP), rtpPacket(seq, 0, 0xa, "too early"))
			waitFor(t, "the early move dropped", func() bool { return stats().DroppedSource == dropped+1 })
			dropped++

			// After it, latchPackets packets from the new source re-latch.
			clk.Advance(time.Millisecond)
			for i := range latchPackets {
				seq++
				p := rtpPacket(seq, 0, 0xa, "moved")
				send(t, moved, addrOf(tr.aRTP), p)
				if i < latchPackets-1 {
					want := dropped + uint64(i+1)
					waitFor(t, "a pre-relatch drop", func() bool { return stats().DroppedSource == want })
					continue
				}
				expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))
			}
			if got := stats().Relatches; got != 1 {
				t.Errorf("Relatches = %d, want 1", got)
			}
			// B's media now goes to A's new address.
			pb := rtpPacket(1, 0, 0xb, "to moved A")
			send(t, tr.peerB, addrOf(tr.bRTP), pb)
			expectPacket(t, moved, pb, addrOf(tr.aRTP))
		})
	}
}

func TestRelayRTCP(t *testing.T) {
	tests := []struct {
		name         string
		rtcpA, rtcpB bool
	}{
		{name: "rtcp-mux both legs"},
		{name: "separate RTCP both legs", rtcpA: true, rtcpB: true},
		{name: "A muxes, B does not", rtcpB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRelay(t, relaySetup{rtcpA: tt.rtcpA, rtcpB: tt.rtcpB, sdpA: true, sdpB: true})
			// Where each side sends and receives RTCP: peer socket, relay socket.
			peerA, relayA := tr.peerA, tr.aRTP
			if tt.rtcpA {
				peerA, relayA = tr.peerARTCP, tr.aRTCP
			}
			peerB, relayB := tr.peerB, tr.bRTP
			if tt.rtcpB {
				peerB, relayB = tr.peerBRTCP, tr.bRTCP
			}
			ra := rtcpPacket("RR from A")
			send(t, peerA, addrOf(relayA), ra)
			expectPacket(t, peerB, ra, addrOf(relayB))
			rb := rtcpPacket("RR from B")
			send(t, peerB, addrOf(relayB), rb)
			expectPacket(t, peerA, rb, addrOf(relayA))

			// RTP still flows on the RTP sockets.
			p := rtpPacket(1, 0, 0xa, "rtp")
			send(t, tr.peerA, addrOf(tr.aRTP), p)
			expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))

			// A reader counts a packet after forwarding it: wait for the
			// count rather than racing the reader goroutine.
			waitFor(t, "stats of both directions", func() bool {
				st := tr.relay.Stats()
				return st.AToB.Packets == 2 && st.BToA.Packets == 1
			})
			st := tr.relay.Stats()
			if st.AToB.RTCPPackets != 1 || st.AToB.Packets != 2 || st.AToB.RTPReceived != 1 {
				t.Errorf("AToB = %+v, want 1 RTCP of 2 packets, 1 RTP", st.AToB)
			}
			if st.BToA.RTCPPackets != 1 || st.BToA.Packets != 1 || st.BToA.RTPReceived != 0 {
				t.Errorf("BToA = %+v, want 1 RTCP packet, no RTP", st.BToA)
			}
		})
	}
}

func TestRelayMediaTimeout(t *testing.T) {
	t.Run("real clock", func(t *testing.T) {
		tr := newTestRelay(t, relaySetup{opts: RelayOptions{MediaTimeout: 100 * time.Millisecond}})
		select {
		case <-tr.relay.Done():
		case <-time.After(waitTimeout):
			t.Fatal("Done not closed after the media timeout")
		}
		if err := tr.relay.Err(); !errors.Is(err, ErrMediaTimeout) {
			t.Fatalf("Err() = %v, want ErrMediaTimeout", err)
		}
		if err := tr.relay.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := tr.relay.Err(); !errors.Is(err, ErrMediaTimeout) {
			t.Fatalf("Err() after Close = %v, want ErrMediaTimeout", err)
		}
	})
	t.Run("fake clock, traffic defers it", func(t *testing.T) {
		clk := newFakeClock()
		const timeout = 100 * time.Millisecond
		tr := newTestRelay(t, relaySetup{sdpB: true, opts: RelayOptions{MediaTimeout: timeout, Now: clk.Now}})
		clk.Advance(timeout - time.Millisecond)
		p := rtpPacket(1, 0, 0xa, "keepalive")
		send(t, tr.peerA, addrOf(tr.aRTP), p)
		expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))
		// Idle since the packet: timeout-1ms; since Start: more than timeout.
		clk.Advance(timeout - time.Millisecond)
		select {
		case <-tr.relay.Done():
			t.Fatal("timed out although media flowed within MediaTimeout")
		default:
		}
		clk.Advance(time.Millisecond)
		select {
		case <-tr.relay.Done():
		case <-time.After(waitTimeout):
			t.Fatal("Done not closed after the media timeout")
		}
		if err := tr.relay.Err(); !errors.Is(err, ErrMediaTimeout) {
			t.Fatalf("Err() = %v, want ErrMediaTimeout", err)
		}
	})
}

func TestRelayCloseIdempotentAndPrompt(t *testing.T) {
	tr := newTestRelay(t, relaySetup{sdpA: true, sdpB: true})
	// Traffic in flight both ways until the relay is closed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	blast := func(from *net.UDPConn, to netip.AddrPort) {
		defer wg.Done()
		p := rtpPacket(1, 0, 1, strings.Repeat("x", 160))
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = from.WriteToUDPAddrPort(p, to)
		}
	}
	wg.Add(2)
	go blast(tr.peerA, addrOf(tr.aRTP))
	go blast(tr.peerB, addrOf(tr.bRTP))
	t.Cleanup(func() { close(stop); wg.Wait() })
	waitFor(t, "traffic through the relay", func() bool {
		st := tr.relay.Stats()
		return st.AToB.Packets > 10 && st.BToA.Packets > 10
	})

	closed := make(chan error, 1) // size one: the closer never blocks
	go func() { closed <- tr.relay.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return with traffic in flight")
	}
	select {
	case <-tr.relay.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := tr.relay.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.relay.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}
	tr.relay.Start() // a no-op after Close
	if err := tr.relay.Close(); err != nil {
		t.Fatalf("Close after Start after Close: %v", err)
	}
}

func TestRelayLossAndJitter(t *testing.T) {
	clk := newFakeClock()
	tr := newTestRelay(t, relaySetup{sdpB: true, opts: RelayOptions{Now: clk.Now}})
	// 20 ms packets at 8 kHz: timestamps 160 apart. Sequence 103 and 104
	// are lost; 106 arrives 10 ms late (80 timestamp units).
	steps := []struct {
		seq     uint16
		advance time.Duration // of the clock before sending
	}{
		{100, 0}, {101, 20 * time.Millisecond}, {102, 20 * time.Millisecond},
		{105, 60 * time.Millisecond}, {106, 30 * time.Millisecond},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		p := rtpPacket(s.seq, 5000+160*uint32(s.seq-100), 0x5eed, "v")
		send(t, tr.peerA, addrOf(tr.aRTP), p)
		expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))
		if got := tr.relay.Stats().AToB.RTPReceived; got != uint64(i+1) {
			t.Fatalf("RTPReceived = %d after %d packets", got, i+1)
		}
	}
	st := tr.relay.Stats().AToB
	// RFC 3550 §A.8: J += (|D| - J)/16, with D = 80 once: J = 5.
	if st.Expected != 7 || st.RTPReceived != 5 || st.Lost != 2 || st.Jitter != 5 {
		t.Errorf("AToB = %+v, want expected 7, received 5, lost 2, jitter 5", st)
	}
}

func TestSeqStateWrapAndRestart(t *testing.T) {
	tests := []struct {
		name              string
		seqs              []uint16
		wantExp, wantRecv uint64
	}{
		{"in order", []uint16{1, 2, 3}, 3, 3},
		{"wrap", []uint16{65534, 65535, 0, 1}, 4, 4},
		{"wrap with loss", []uint16{65534, 1}, 4, 2},
		{"reordered", []uint16{10, 12, 11, 13}, 4, 4},
		{"duplicate", []uint16{10, 11, 11, 12}, 3, 4},
		{"one stray jump is not counted", []uint16{10, 11, 30000, 12}, 3, 3},
		{"a sequence restart", []uint16{10, 11, 30000, 30001, 30002}, 2 + 2, 2 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := &reader{rate: DefaultClockRate}
			for _, s := range tt.seqs {
				rd.trackRTP(rtpPacket(s, 0, 1, ""), 0)
			}
			exp, recv := rd.rtp.expected.Load(), rd.rtp.received.Load()
			if exp != tt.wantExp || recv != tt.wantRecv {
				t.Errorf("expected, received = %d, %d, want %d, %d", exp, recv, tt.wantExp, tt.wantRecv)
			}
			if lost := rd.rtp.lost.Load(); lost != int64(exp)-int64(recv) {
				t.Errorf("lost = %d, want %d", lost, int64(exp)-int64(recv))
			}
		})
	}
}

func TestRelayMalformed(t *testing.T) {
	tr := newTestRelay(t, relaySetup{sdpB: true})
	good := rtpPacket(1, 0, 0xa, "ok")
	csrcOverrun := rtpPacket(1, 0, 0xa, "")
	csrcOverrun[0] = 0x80 | 15 // 15 CSRCs announced, none present
	version1 := rtpPacket(1, 0, 0xa, "v1")
	version1[0] = 0x40
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	bad := [][]byte{
		{},
		{0x80},
		{0x80, 0, 0, 1, 0},
		version1,
		stun,
		csrcOverrun,
		bytes.Repeat([]byte{0x80}, MaxPacketSize+1),
	}
	for _, p := range bad {
		send(t, tr.peerA, addrOf(tr.aRTP), p)
	}
	waitFor(t, "every malformed packet counted", func() bool {
		return tr.relay.Stats().AToB.DroppedMalformed == uint64(len(bad))
	})
	// Nothing malformed latched or reached B: the next packet B gets is
	// the good one.
	send(t, tr.peerA, addrOf(tr.aRTP), good)
	expectPacket(t, tr.peerB, good, addrOf(tr.bRTP))
	waitFor(t, "the good packet counted", func() bool { return tr.relay.Stats().AToB.Packets >= 1 })
	if st := tr.relay.Stats().AToB; st.Packets != 1 || st.RTPReceived != 1 {
		t.Errorf("AToB = %+v, want 1 packet forwarded", st)
	}
}

// discardConn is a packetConn whose writes go nowhere.
type discardConn struct{}

func (discardConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}

func (discardConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	return len(b), nil
}

func BenchmarkRelayForward(b *testing.B) {
	// Through real sockets: peer A -> relay -> peer B, one packet in
	// flight. allocs/op counts the whole process: the relay's readers too.
	b.Run("udp", func(b *testing.B) {
		tr := newTestRelay(b, relaySetup{sdpA: true, sdpB: true})
		p := rtpPacket(0, 0, 0xa, strings.Repeat("x", 160))
		buf := make([]byte, 2048)
		to := addrOf(tr.aRTP)
		if err := tr.peerB.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		for i := 0; b.Loop(); i++ {
			p[2], p[3] = byte(i>>8), byte(i)
			if _, err := tr.peerA.WriteToUDPAddrPort(p, to); err != nil {
				b.Fatal(err)
			}
			if _, _, err := tr.peerB.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The relay's own work per packet, without the kernel.
	b.Run("handle", func(b *testing.B) {
		src := netip.MustParseAddrPort("192.0.2.1:4000")
		dst := netip.MustParseAddrPort("198.51.100.1:5000")
		out := sink{conn: discardConn{}, latch: newLatch(dst, 1, time.Second)}
		rd := &reader{latch: newLatch(src, 1, time.Second), rtpOut: out, rtcpOut: out, rate: DefaultClockRate}
		p := rtpPacket(0, 0, 0xa, strings.Repeat("x", 160))
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		for i := 0; b.Loop(); i++ {
			p[2], p[3] = byte(i>>8), byte(i)
			rd.handle(p, src, int64(i)*int64(20*time.Millisecond))
		}
		if rd.c.packets.Load() == 0 {
			b.Fatal("nothing forwarded")
		}
	})
}

// plainConn hides *net.UDPConn's AddrPort methods: the relay falls back to
// ReadFrom and WriteTo.
type plainConn struct{ net.PacketConn }

func TestRelayGenericPacketConn(t *testing.T) {
	aRTP, bRTP, peerA, peerB := listenUDP(t), listenUDP(t), listenUDP(t), listenUDP(t)
	r, err := NewRelay(RelayOptions{
		A: LegSockets{RTP: plainConn{aRTP}}, B: LegSockets{RTP: plainConn{bRTP}},
		PeerB: addrOf(peerB),
	})
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	r.Start()
	p := rtpPacket(1, 0, 0xa, "generic")
	send(t, peerA, addrOf(aRTP), p)
	expectPacket(t, peerB, p, addrOf(bRTP))
	q := rtpPacket(1, 0, 0xb, "back")
	send(t, peerB, addrOf(bRTP), q)
	expectPacket(t, peerA, q, addrOf(aRTP))
}

func TestRelaySocketClosedUnderneath(t *testing.T) {
	tr := newTestRelay(t, relaySetup{})
	_ = tr.aRTP.Close() // not the relay's doing: it must stop, not spin
	select {
	case <-tr.relay.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed after a socket failed")
	}
	if err := tr.relay.Err(); !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "leg A RTP") {
		t.Fatalf("Err() = %v, want a read error of leg A RTP", err)
	}
	// Close joins the goroutines; it reports the double close of aRTP.
	if err := tr.relay.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Close() = %v, want the error of closing aRTP again", err)
	}
}

func TestLegString(t *testing.T) {
	for leg, want := range map[Leg]string{LegA: "leg A", LegB: "leg B", 7: "Leg(7)"} {
		if got := leg.String(); got != want {
			t.Errorf("Leg(%d).String() = %q, want %q", uint8(leg), got, want)
		}
	}
	if LegA.other() != LegB || LegB.other() != LegA {
		t.Error("other() does not swap the legs")
	}
}

func TestRTCPPeer(t *testing.T) {
	rtp := netip.MustParseAddrPort("192.0.2.1:4000")
	tests := []struct {
		rtp, rtcp, want netip.AddrPort
	}{
		{rtp, netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.1:4001")},
		{rtp, netip.MustParseAddrPort("192.0.2.9:5000"), netip.MustParseAddrPort("192.0.2.9:5000")},
		{netip.MustParseAddrPort("192.0.2.1:65535"), netip.AddrPort{}, netip.AddrPort{}},
		{netip.MustParseAddrPort("0.0.0.0:4000"), netip.AddrPort{}, netip.AddrPort{}},
	}
	for _, tt := range tests {
		if got := rtcpPeer(tt.rtp, tt.rtcp); got != tt.want {
			t.Errorf("rtcpPeer(%v, %v) = %v, want %v", tt.rtp, tt.rtcp, got, tt.want)
		}
	}
}

// stream sends RTP from one socket to another, a packet per loop, until the
// test ends: traffic in flight while the test changes the relay.
func stream(tb testing.TB, from *net.UDPConn, to netip.AddrPort, ssrc uint32) {
	tb.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = from.WriteToUDPAddrPort(rtpPacket(seq, uint32(seq)*160, ssrc, "stream"), to)
			// Yield so that a single CPU still runs the relay; this
			// paces the sender, it synchronises nothing.
			time.Sleep(100 * time.Microsecond)
		}
	}()
	tb.Cleanup(func() { close(stop); wg.Wait() })
}

// recvFrom reads datagrams on c until one comes from wantFrom, or fails the
// test after waitTimeout.
func recvFrom(tb testing.TB, c *net.UDPConn, wantFrom netip.AddrPort) []byte {
	tb.Helper()
	for {
		p, from := recv(tb, c)
		if from == wantFrom {
			return p
		}
	}
}

func TestRelaySetPeerRedirectsTraffic(t *testing.T) {
	tr := newTestRelay(t, relaySetup{sdpA: true, sdpB: true})
	// B speaks from its SDP address: latched at once.
	send(t, tr.peerB, addrOf(tr.bRTP), rtpPacket(1, 0, 0xb, "B"))
	expectPacket(t, tr.peerA, rtpPacket(1, 0, 0xb, "B"), addrOf(tr.aRTP))

	stream(t, tr.peerA, addrOf(tr.aRTP), 0xa)
	recvFrom(t, tr.peerB, addrOf(tr.bRTP))

	// A re-INVITE moves B: A's stream follows at once, before the new B
	// has sent anything.
	moved := listenUDP(t)
	tr.relay.SetPeer(LegB, addrOf(moved), netip.AddrPort{})
	recvFrom(t, moved, addrOf(tr.bRTP))

	// The new address latches with its first packet; the old one, still
	// latched a moment ago, is now a foreign source.
	fromMoved := rtpPacket(2, 160, 0xb, "moved B")
	send(t, moved, addrOf(tr.bRTP), fromMoved)
	expectPacket(t, tr.peerA, fromMoved, addrOf(tr.aRTP))
	dropped := tr.relay.Stats().BToA.DroppedSource
	send(t, tr.peerB, addrOf(tr.bRTP), rtpPacket(3, 320, 0xb, "old B"))
	waitFor(t, "the old address dropped", func() bool { return tr.relay.Stats().BToA.DroppedSource == dropped+1 })
	if st := tr.relay.Stats().BToA; st.Relatches != 0 {
		t.Errorf("Relatches = %d, want 0: SetPeer is not a relatch", st.Relatches)
	}
}

func TestRelaySetPeerUnusable(t *testing.T) {
	for _, bad := range []netip.AddrPort{
		{},
		netip.MustParseAddrPort("0.0.0.0:4000"), // old-style hold
		netip.MustParseAddrPort("127.0.0.1:0"),
	} {
		t.Run(bad.String(), func(t *testing.T) {
			tr := newTestRelay(t, relaySetup{sdpA: true, sdpB: true})
			p := rtpPacket(1, 0, 0xa, "A")
			send(t, tr.peerA, addrOf(tr.aRTP), p)
			expectPacket(t, tr.peerB, p, addrOf(tr.bRTP))

			tr.relay.SetPeer(LegB, bad, bad)
			send(t, tr.peerA, addrOf(tr.aRTP), rtpPacket(2, 160, 0xa, "A"))
			waitFor(t, "A's packet dropped for want of a peer", func() bool { return tr.relay.Stats().AToB.DroppedNoPeer == 1 })

			// B is learnt from its packets again, wherever they come from.
			learnt := listenUDP(t)
			pb := rtpPacket(1, 0, 0xb, "B from elsewhere")
			send(t, learnt, addrOf(tr.bRTP), pb)
			expectPacket(t, tr.peerA, pb, addrOf(tr.aRTP))
			pa := rtpPacket(3, 320, 0xa, "A again")
			send(t, tr.peerA, addrOf(tr.aRTP), pa)
			expectPacket(t, learnt, pa, addrOf(tr.bRTP))
		})
	}
}

func TestRelaySetPeerRTCP(t *testing.T) {
	tr := newTestRelay(t, relaySetup{rtcpA: true, rtcpB: true, sdpA: true, sdpB: true})
	newRTP, newRTCP := listenUDP(t), listenUDP(t)
	tr.relay.SetPeer(LegB, addrOf(newRTP), addrOf(newRTCP))
	rr := rtcpPacket("RR to moved B")
	send(t, tr.peerARTCP, addrOf(tr.aRTCP), rr)
	expectPacket(t, newRTCP, rr, addrOf(tr.bRTCP))

	// rtcp-mux negotiated later for B: its RTCP leaves through the RTP
	// socket to its RTP address.
	tr.relay.setRTCPMux(LegB, true)
	send(t, tr.peerARTCP, addrOf(tr.aRTCP), rr)
	expectPacket(t, newRTP, rr, addrOf(tr.bRTP))
	tr.relay.setRTCPMux(LegB, false)
	send(t, tr.peerARTCP, addrOf(tr.aRTCP), rr)
	expectPacket(t, newRTCP, rr, addrOf(tr.bRTCP))
}

// TestRelaySetPeerConcurrent moves B back and forth while media flows both
// ways and Stats is read: -race checks the publication, and the last
// SetPeer wins.
func TestRelaySetPeerConcurrent(t *testing.T) {
	tr := newTestRelay(t, relaySetup{rtcpA: true, rtcpB: true, sdpA: true, sdpB: true})
	stream(t, tr.peerA, addrOf(tr.aRTP), 0xa)
	stream(t, tr.peerB, addrOf(tr.bRTP), 0xb)
	stream(t, tr.peerARTCP, addrOf(tr.aRTCP), 0xa)
	alt := listenUDP(t)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				to := tr.peerB
				if (i+g)%2 == 0 {
					to = alt
				}
				tr.relay.SetPeer(LegB, addrOf(to), netip.AddrPort{})
				tr.relay.setRTCPMux(LegB, i%3 == 0)
				_ = tr.relay.Stats()
			}
		}()
	}
	wg.Wait()
	// B's old address keeps sending and, with the latch reset, may latch
	// again; the new address takes over with its first packet all the
	// same, and keeps A's media although the old one goes on.
	final := listenUDP(t)
	tr.relay.SetPeer(LegB, addrOf(final), netip.AddrPort{})
	send(t, final, addrOf(tr.bRTP), rtpPacket(1, 0, 0xf, "final B"))
	recvFrom(t, final, addrOf(tr.bRTP))
	recvFrom(t, final, addrOf(tr.bRTP))
}

func TestRelayArmLater(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tr := newTestRelay(t, relaySetup{opts: RelayOptions{MediaTimeout: timeout, ArmLater: true}})
	// Not armed: several timeouts pass without media and without a stop.
	select {
	case <-tr.relay.Done():
		t.Fatalf("unarmed relay stopped: %v", tr.relay.Err())
	case <-time.After(10 * timeout):
	}
	tr.relay.Arm()
	select {
	case <-tr.relay.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed after Arm and the media timeout")
	}
	if err := tr.relay.Err(); !errors.Is(err, ErrMediaTimeout) {
		t.Fatalf("Err() = %v, want ErrMediaTimeout", err)
	}
}

func TestRelayArmRestartsIdleClock(t *testing.T) {
	clk := newFakeClock()
	const timeout = 100 * time.Millisecond
	tr := newTestRelay(t, relaySetup{opts: RelayOptions{MediaTimeout: timeout, Now: clk.Now}})
	clk.Advance(timeout - time.Millisecond)
	tr.relay.Arm()
	clk.Advance(timeout - time.Millisecond)
	select {
	case <-tr.relay.Done():
		t.Fatal("timed out although Arm restarted the idle clock")
	default:
	}
	tr.relay.disarm()
	clk.Advance(time.Hour)
	select {
	case <-tr.relay.Done():
		t.Fatal("a disarmed relay timed out")
	case <-time.After(20 * maxTimeoutCheckFor(timeout)):
	}
	tr.relay.Arm()
	clk.Advance(timeout)
	select {
	case <-tr.relay.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed after the media timeout")
	}
}

// maxTimeoutCheckFor is a wait long enough for a media timeout d to have
// been noticed, had it been due.
func maxTimeoutCheckFor(d time.Duration) time.Duration {
	return min(max(d/4, minTimeoutCheck), time.Second)
}

// TestRelayHandleNoAlloc pins the per-packet cost: nothing allocates,
// including the check for a new SetPeer generation, RTCP under a mux switch,
// and the reset after SetPeer to the address the packets come from.
func TestRelayHandleNoAlloc(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.1:4000")
	dst := netip.MustParseAddrPort("198.51.100.1:5000")
	out := sink{conn: discardConn{}, latch: newLatch(dst, 1, time.Second)}
	var mux atomic.Bool
	rd := &reader{latch: newLatch(src, 1, time.Second), rtpOut: out, rtcpOut: out, outMux: &mux, rate: DefaultClockRate}
	rtp, rtcp := rtpPacket(0, 0, 0xa, strings.Repeat("x", 160)), rtcpPacket("rr")
	var i int64
	step := func() {
		i++
		rtp[2], rtp[3] = byte(i>>8), byte(i)
		rd.handle(rtp, src, i*int64(20*time.Millisecond))
		rd.handle(rtcp, src, i*int64(20*time.Millisecond))
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("steady state: %v allocs per packet pair, want 0", n)
	}
	rd.latch.publish(src) // as SetPeer would, to where A already sends from
	mux.Store(true)
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("after SetPeer: %v allocs per packet pair, want 0", n)
	}
	if rd.c.packets.Load() == 0 || rd.c.noPeer.Load() != 0 {
		t.Fatalf("counters %+v: nothing forwarded", rd.c.packets.Load())
	}
}

// listenUDPOn is listenUDP on another loopback address (Linux answers on
// all of 127.0.0.0/8).
func listenUDPOn(tb testing.TB, ip string) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		tb.Skipf("ListenUDP on %s: %v", ip, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRelayLatchesOnlyAllowedSources(t *testing.T) {
	tests := []struct {
		name string
		// sdpA is A's SDP address; allow is AllowA, or set by SetAllowed
		// after the start when late.
		sdpA  netip.AddrPort
		allow []netip.Prefix
		late  bool
	}{
		{
			name:  "allowed prefix, SDP elsewhere",
			sdpA:  netip.MustParseAddrPort("127.0.0.3:4000"),
			allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		},
		{
			name:  "SDP address, another port (NAT)",
			sdpA:  netip.MustParseAddrPort("127.0.0.1:9"),
			allow: []netip.Prefix{},
		},
		{
			name:  "set while running",
			sdpA:  netip.MustParseAddrPort("127.0.0.3:4000"),
			allow: nil,
			late:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow := tt.allow
			if tt.late {
				// IPv4-mapped, as a dual-stack config may give it:
				// 127.0.0.0-127.0.0.1.
				allow = []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/127")}
			}
			setup := relaySetup{sdpB: true}
			setup.opts.PeerA = tt.sdpA
			if !tt.late {
				setup.opts.AllowA = allow
			}
			attacker := listenUDPOn(t, "127.0.0.2")
			tr := newTestRelay(t, setup)
			if tt.late {
				tr.relay.SetAllowed(LegA, allow)
			}

			// The attacker sprays A's port first: dropped, counted, never
			// latched nor relayed.
			for i := range 3 {
				send(t, attacker, addrOf(tr.aRTP), rtpPacket(uint16(i), 0, 0xbad, "BLEED"))
			}
			waitFor(t, "the foreign packets dropped", func() bool { return tr.relay.Stats().AToB.DroppedSource == 3 })

			// The legitimate caller, from another port than its SDP's,
			// latches; its packet is the first B receives.
			pa := rtpPacket(1, 0, 0xa, "A speaks")
			send(t, tr.peerA, addrOf(tr.aRTP), pa)
			expectPacket(t, tr.peerB, pa, addrOf(tr.bRTP))

			// B reaches A at its latched source, not the attacker.
			pb := rtpPacket(1, 0, 0xb, "B answers")
			send(t, tr.peerB, addrOf(tr.bRTP), pb)
			expectPacket(t, tr.peerA, pb, addrOf(tr.aRTP))

			// Still dropped once A is latched.
			send(t, attacker, addrOf(tr.aRTP), rtpPacket(9, 0, 0xbad, "BLEED"))
			waitFor(t, "the late foreign packet dropped", func() bool { return tr.relay.Stats().AToB.DroppedSource == 4 })
			if st := tr.relay.Stats().AToB; st.Packets != 1 {
				t.Errorf("AToB = %+v, want 1 packet relayed", st)
			}
			_ = attacker.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _, err := attacker.ReadFromUDPAddrPort(make([]byte, 1500)); err == nil {
				t.Errorf("attacker received %d bytes of the callee's media", n)
			}
		})
	}
}
