package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

// Bridge tests bind real sockets on 127.0.0.1 in a range of their own,
// below the ephemeral ports; a port held by someone else is skipped by
// AcquireBound.
const bridgeTestPortMin = 16000

var loopback = netip.MustParseAddr("127.0.0.1")

// newBridgePool returns a pool of pairs pairs whose released pairs are
// free again at once (a 1 ns drain), so tests may run one after another.
func newBridgePool(tb testing.TB, pairs int) *PortPool {
	tb.Helper()
	p, err := NewPortPool(PortPoolOptions{
		Min: bridgeTestPortMin, Max: bridgeTestPortMin + 2*pairs - 1, Drain: time.Nanosecond,
	})
	if err != nil {
		tb.Fatalf("NewPortPool: %v", err)
	}
	return p
}

// newTestBridge builds a bridge on 127.0.0.1, closed at the end of the test.
func newTestBridge(tb testing.TB, opts BridgeOptions) *Bridge {
	tb.Helper()
	if opts.Pool == nil {
		opts.Pool = newBridgePool(tb, 16)
	}
	opts.IP = loopback
	b, err := NewBridge(opts)
	if err != nil {
		tb.Fatalf("NewBridge: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// peerSDP is a carrier's SDP: one m= line per entry of ports (0 rejects
// it), PCMU and telephone-event on payload type 101, every section with
// direction dir, and extra attribute lines appended to each section.
func peerSDP(addr netip.Addr, dir string, ports []uint16, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=carrier 99 1 IN IP4 %s\r\ns=carrier\r\nc=IN IP4 %s\r\nt=0 0\r\n", addr, addr)
	for _, p := range ports {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", p)
		for _, e := range extra {
			b.WriteString("a=" + e + "\r\n")
		}
		b.WriteString("a=" + dir + "\r\n")
	}
	return []byte(b.String())
}

// portOf is the RTP port of a peer's socket.
func portOf(c *net.UDPConn) uint16 { return addrOf(c).Port() }

// veilAddrs returns the media addresses Veil wrote into out, per section.
func veilAddrs(tb testing.TB, out []byte) []netip.AddrPort {
	tb.Helper()
	info, err := ParseSDP(out)
	if err != nil {
		tb.Fatalf("Veil's SDP does not parse: %v\n%s", err, out)
	}
	var addrs []netip.AddrPort
	for _, m := range info.Media {
		addrs = append(addrs, m.Peer)
	}
	return addrs
}

// origin returns the o= line fields of sdpText.
func origin(tb testing.TB, sdpText []byte) sdp.Origin {
	tb.Helper()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(sdpText); err != nil {
		tb.Fatalf("SDP does not parse: %v", err)
	}
	return sd.Origin
}

// waitDone waits for the bridge to stop on its own.
func waitDone(tb testing.TB, b *Bridge) {
	tb.Helper()
	select {
	case <-b.Done():
	case <-time.After(waitTimeout):
		tb.Fatal("bridge Done not closed")
	}
}

// checkPoolIdle checks that no pair of pool is in use.
func checkPoolIdle(tb testing.TB, pool *PortPool) {
	tb.Helper()
	if st := pool.Stats(); st.InUse != 0 {
		tb.Fatalf("pool: %d pairs still in use: %+v", st.InUse, st)
	}
}

// call is a bridged call with one audio section between two fake carriers.
type call struct {
	b            *Bridge
	pool         *PortPool
	peerA, peerB *net.UDPConn
	veilA, veilB netip.AddrPort // where each peer sends to Veil
	offerOut     []byte         // the offer Veil sent on leg B
	answerOut    []byte         // the answer Veil sent on leg A
}

// newCall runs the INVITE's offer (from A) and its answer (from B).
func newCall(tb testing.TB, opts BridgeOptions) *call {
	tb.Helper()
	c := &call{pool: newBridgePool(tb, 16), peerA: listenUDP(tb), peerB: listenUDP(tb)}
	opts.Pool = c.pool
	c.b = newTestBridge(tb, opts)
	var err error
	c.offerOut, err = c.b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerA)}))
	if err != nil {
		tb.Fatalf("Offer: %v", err)
	}
	c.veilB = veilAddrs(tb, c.offerOut)[0]
	c.answerOut, err = c.b.Answer(LegB, peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerB)}))
	if err != nil {
		tb.Fatalf("Answer: %v", err)
	}
	c.veilA = veilAddrs(tb, c.answerOut)[0]
	return c
}

func TestNewBridgeOptions(t *testing.T) {
	pool := newBridgePool(t, 1)
	tests := []struct {
		name    string
		opts    BridgeOptions
		wantErr []string
	}{
		{name: "minimal", opts: BridgeOptions{Pool: pool, IP: loopback}},
		{name: "IPv6", opts: BridgeOptions{Pool: pool, IP: netip.IPv6Loopback()}},
		{name: "nothing", wantErr: []string{"no port pool", "media address invalid IP"}},
		{name: "unspecified", opts: BridgeOptions{Pool: pool, IP: netip.IPv4Unspecified()},
			wantErr: []string{"media address 0.0.0.0"}},
		{name: "negatives", opts: BridgeOptions{Pool: pool, IP: loopback, MediaTimeout: -1, SocketBuffer: -1},
			wantErr: []string{"media timeout -1ns", "socket buffer -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBridge(tt.opts)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewBridge: %v", err)
				}
				if err := b.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadBridgeOptions) {
				t.Fatalf("NewBridge error = %v, want ErrBadBridgeOptions", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBridgeOfferAnswerRelays(t *testing.T) {
	c := newCall(t, BridgeOptions{SocketBuffer: 64 << 10})

	// What reaches the other leg is Veil's: its address, its ports, its
	// origin, the peer's payload types unchanged.
	for _, out := range [][]byte{c.offerOut, c.answerOut} {
		s := string(out)
		for _, want := range []string{"o=veil ", "c=IN IP4 127.0.0.1", " RTP/AVP 0 101\r\n", "a=rtpmap:101 telephone-event/8000", "a=sendrecv"} {
			if !strings.Contains(s, want) {
				t.Errorf("SDP lacks %q:\n%s", want, s)
			}
		}
		if strings.Contains(s, "carrier") {
			t.Errorf("the peer's origin leaked:\n%s", s)
		}
	}
	oa, ob := origin(t, c.answerOut), origin(t, c.offerOut)
	if oa.SessionID == ob.SessionID {
		t.Errorf("both legs have session id %d; each leg needs its own", oa.SessionID)
	}
	if c.veilA == c.veilB || c.veilA.Port()%2 != 0 || c.veilB.Port()%2 != 0 {
		t.Errorf("Veil's ports A %v, B %v: want two distinct even ports", c.veilA, c.veilB)
	}
	if st := c.pool.Stats(); st.InUse != 2 {
		t.Errorf("pool InUse = %d, want 2 (a pair per leg)", st.InUse)
	}

	// A speaks first and B has sent nothing: the packet still reaches B's
	// address from the answer (SIPp's -rtp_echo only ever echoes).
	pa := rtpPacket(1, 0, 0xa, "hello B")
	send(t, c.peerA, c.veilA, pa)
	expectPacket(t, c.peerB, pa, c.veilB)
	pb := rtpPacket(1, 0, 0xb, "hello A")
	send(t, c.peerB, c.veilB, pb)
	expectPacket(t, c.peerA, pb, c.veilA)
	pa2 := rtpPacket(2, 160, 0xa, "again")
	send(t, c.peerA, c.veilA, pa2)
	expectPacket(t, c.peerB, pa2, c.veilB)

	waitFor(t, "the packets counted", func() bool {
		st := c.b.Stats()
		return st.AToB.Packets == 2 && st.BToA.Packets == 1
	})
	st := c.b.Stats()
	if st.AToB.SSRC != 0xa || st.BToA.SSRC != 0xb || st.AToB.Bytes != uint64(len(pa)+len(pa2)) {
		t.Errorf("Stats = %+v", st)
	}

	if err := c.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkPoolIdle(t, c.pool)
}

func TestBridgeEarlyMediaFromB(t *testing.T) {
	pool := newBridgePool(t, 4)
	b := newTestBridge(t, BridgeOptions{Pool: pool})
	peerA, peerB := listenUDP(t), listenUDP(t)
	out, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peerA)}))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	// Before any answer, B's early media reaches A's address from the
	// offer.
	veilB := veilAddrs(t, out)[0]
	p := rtpPacket(1, 0, 0xb, "ringback")
	send(t, peerB, veilB, p)
	got, _ := recv(t, peerA)
	if !bytes.Equal(got, p) {
		t.Fatalf("A received %q, want %q", got, p)
	}
}

func TestBridgeSessionVersions(t *testing.T) {
	c := newCall(t, BridgeOptions{})
	answer := peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerB)})
	// The 200 repeats the 183's answer: same SDP, same version.
	again, err := c.b.Answer(LegB, answer)
	if err != nil {
		t.Fatalf("second Answer: %v", err)
	}
	if !bytes.Equal(again, c.answerOut) {
		t.Errorf("the same answer gave different SDP:\n%s\n%s", c.answerOut, again)
	}
	// A re-INVITE repeating the offer (a session refresh): unchanged.
	offer := peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerA)})
	same, err := c.b.Offer(LegA, offer)
	if err != nil {
		t.Fatalf("re-Offer: %v", err)
	}
	if !bytes.Equal(same, c.offerOut) {
		t.Errorf("the same offer gave different SDP:\n%s\n%s", c.offerOut, same)
	}
	v0 := origin(t, c.offerOut).SessionVersion

	steps := []struct {
		offerDir, answerDir string
		wantVersion         uint64
	}{
		{"sendonly", "recvonly", v0 + 1}, // A holds
		{"sendonly", "recvonly", v0 + 1}, // refresh while held
		{"sendrecv", "sendrecv", v0 + 2}, // A resumes
	}
	for i, s := range steps {
		out, err := c.b.Offer(LegA, peerSDP(loopback, s.offerDir, []uint16{portOf(c.peerA)}))
		if err != nil {
			t.Fatalf("step %d: Offer: %v", i, err)
		}
		if !strings.Contains(string(out), "a="+s.offerDir+"\r\n") {
			t.Errorf("step %d: offer to B lacks a=%s:\n%s", i, s.offerDir, out)
		}
		if o := origin(t, out); o.SessionVersion != s.wantVersion || o.SessionID != origin(t, c.offerOut).SessionID {
			t.Errorf("step %d: leg B origin %d %d, want %d %d", i, o.SessionID, o.SessionVersion,
				origin(t, c.offerOut).SessionID, s.wantVersion)
		}
		ans, err := c.b.Answer(LegB, peerSDP(loopback, s.answerDir, []uint16{portOf(c.peerB)}))
		if err != nil {
			t.Fatalf("step %d: Answer: %v", i, err)
		}
		if !strings.Contains(string(ans), "a="+s.answerDir+"\r\n") {
			t.Errorf("step %d: answer to A lacks a=%s:\n%s", i, s.answerDir, ans)
		}
		if got := origin(t, ans).SessionVersion; got != s.wantVersion {
			t.Errorf("step %d: leg A version %d, want %d", i, got, s.wantVersion)
		}
		// The ports never change within the session.
		if got := veilAddrs(t, out)[0]; got != c.veilB {
			t.Errorf("step %d: Veil's B address moved to %v from %v", i, got, c.veilB)
		}
	}
}

func TestBridgeReofferMovesMedia(t *testing.T) {
	c := newCall(t, BridgeOptions{})
	// Media flows and B latches.
	send(t, c.peerB, c.veilB, rtpPacket(1, 0, 0xb, "B"))
	expectPacket(t, c.peerA, rtpPacket(1, 0, 0xb, "B"), c.veilA)

	// B's carrier moves its media with a re-INVITE from leg B, and holds
	// the old-style way first (c=0.0.0.0).
	held, err := c.b.Offer(LegB, peerSDP(netip.IPv4Unspecified(), "sendrecv", []uint16{portOf(c.peerB)}))
	if err != nil {
		t.Fatalf("hold Offer: %v", err)
	}
	if !strings.Contains(string(held), "a=sendonly") || !strings.Contains(string(held), "c=IN IP4 127.0.0.1") {
		t.Errorf("old-style hold not turned into sendonly on Veil's address:\n%s", held)
	}
	if got := veilAddrs(t, held)[0]; got != c.veilA {
		t.Errorf("the offer to A names %v, want Veil's A address %v", got, c.veilA)
	}
	if _, err := c.b.Answer(LegA, peerSDP(loopback, "recvonly", []uint16{portOf(c.peerA)})); err != nil {
		t.Fatalf("hold Answer: %v", err)
	}
	send(t, c.peerA, c.veilA, rtpPacket(2, 160, 0xa, "held"))
	waitFor(t, "A's media held back", func() bool { return c.b.Stats().AToB.DroppedNoPeer == 1 })

	moved := listenUDP(t)
	if _, err := c.b.Offer(LegB, peerSDP(loopback, "sendrecv", []uint16{portOf(moved)})); err != nil {
		t.Fatalf("resume Offer: %v", err)
	}
	if _, err := c.b.Answer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerA)})); err != nil {
		t.Fatalf("resume Answer: %v", err)
	}
	// A's media goes to B's new address before B sends from it.
	p := rtpPacket(3, 320, 0xa, "to moved B")
	send(t, c.peerA, c.veilA, p)
	expectPacket(t, moved, p, c.veilB)
}

func TestBridgeRTCPMux(t *testing.T) {
	pool := newBridgePool(t, 4)
	b := newTestBridge(t, BridgeOptions{Pool: pool})
	peerA, peerB := listenUDP(t), listenUDP(t)
	out, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peerA)}, "rtcp-mux"))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	if !strings.Contains(string(out), "a=rtcp-mux") {
		t.Errorf("rtcp-mux not passed on:\n%s", out)
	}
	ans, err := b.Answer(LegB, peerSDP(loopback, "sendrecv", []uint16{portOf(peerB)}, "rtcp-mux"))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	veilA, veilB := veilAddrs(t, ans)[0], veilAddrs(t, out)[0]
	// Both legs mux: RTCP from A on Veil's RTP port reaches B's RTP port
	// from Veil's RTP port.
	rr := rtcpPacket("RR muxed")
	send(t, peerA, veilA, rr)
	expectPacket(t, peerB, rr, veilB)
	p := rtpPacket(1, 0, 0xa, "rtp")
	send(t, peerA, veilA, p)
	expectPacket(t, peerB, p, veilB)
}

func TestBridgeRejectedSections(t *testing.T) {
	pool := newBridgePool(t, 8)
	b := newTestBridge(t, BridgeOptions{Pool: pool, MediaTimeout: 20 * time.Millisecond})
	peerA, peerB := listenUDP(t), listenUDP(t)
	// Section 1 rejected by the offer, sections 0 and 2 offered.
	out, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peerA), 0, portOf(peerA) + 2}))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	addrs := veilAddrs(t, out)
	if addrs[0].Port() == 0 || addrs[1].Port() != 0 || addrs[2].Port() == 0 {
		t.Errorf("offer to B ports %v, want section 1 rejected only", addrs)
	}
	if st := pool.Stats(); st.InUse != 4 {
		t.Errorf("pool InUse = %d, want 4: two sections, two legs", st.InUse)
	}
	// B rejects section 2: A sees it rejected, and its relay will not end
	// the call for lack of media.
	ans, err := b.Answer(LegB, peerSDP(loopback, "sendrecv", []uint16{portOf(peerB), 0, 0}))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if addrs := veilAddrs(t, ans); addrs[0].Port() == 0 || addrs[1].Port() != 0 || addrs[2].Port() != 0 {
		t.Errorf("answer to A ports %v, want sections 1 and 2 rejected", addrs)
	}
	b.Arm()
	if b.secs[2].relay.armed.Load() || !b.secs[0].relay.armed.Load() {
		t.Error("Arm: want section 0 armed and the rejected section 2 not")
	}

	// A re-offer taking section 1 up allocates it.
	out, err = b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peerA), portOf(peerA) + 4, portOf(peerA) + 2}))
	if err != nil {
		t.Fatalf("re-Offer: %v", err)
	}
	if addrs := veilAddrs(t, out); addrs[1].Port() == 0 {
		t.Errorf("re-offer to B ports %v, want section 1 allocated", addrs)
	}
	if st := pool.Stats(); st.InUse != 6 {
		t.Errorf("pool InUse = %d, want 6", st.InUse)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkPoolIdle(t, pool)
}

func TestBridgeBadSDP(t *testing.T) {
	good := func(c *net.UDPConn, n int) []byte {
		ports := make([]uint16, n)
		for i := range ports {
			ports[i] = portOf(c) + uint16(2*i)
		}
		return peerSDP(loopback, "sendrecv", ports)
	}
	peer := listenUDP(t)
	tests := []struct {
		name string
		run  func(b *Bridge) error
		want error
	}{
		{"garbage offer", func(b *Bridge) error { _, err := b.Offer(LegA, []byte("not SDP")); return err }, ErrBadSDP},
		{"empty offer", func(b *Bridge) error { _, err := b.Offer(LegA, nil); return err }, ErrBadSDP},
		{"offer without c=", func(b *Bridge) error {
			_, err := b.Offer(LegA, []byte("v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
			return err
		}, ErrBadSDP},
		{"re-offer drops a section", func(b *Bridge) error {
			if _, err := b.Offer(LegA, good(peer, 2)); err != nil {
				return err
			}
			_, err := b.Offer(LegA, good(peer, 1))
			return err
		}, ErrBadSDP},
		{"answer with another section count", func(b *Bridge) error {
			if _, err := b.Offer(LegA, good(peer, 2)); err != nil {
				return err
			}
			_, err := b.Answer(LegB, good(peer, 1))
			return err
		}, ErrBadSDP},
		{"bad answer", func(b *Bridge) error {
			if _, err := b.Offer(LegA, good(peer, 1)); err != nil {
				return err
			}
			_, err := b.Answer(LegB, []byte("v=0\r\n"))
			return err
		}, ErrBadSDP},
		{"answer without offer", func(b *Bridge) error { _, err := b.Answer(LegB, good(peer, 1)); return err }, ErrOfferAnswer},
		{"answer from the offerer", func(b *Bridge) error {
			if _, err := b.Offer(LegA, good(peer, 1)); err != nil {
				return err
			}
			_, err := b.Answer(LegA, good(peer, 1))
			return err
		}, ErrOfferAnswer},
		{"offer from no leg", func(b *Bridge) error { _, err := b.Offer(Leg(2), good(peer, 1)); return err }, ErrOfferAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newBridgePool(t, 8)
			b := newTestBridge(t, BridgeOptions{Pool: pool})
			if err := tt.run(b); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkPoolIdle(t, pool)
		})
	}
}

func TestBridgePortsExhausted(t *testing.T) {
	peer := listenUDP(t)
	for _, pairs := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d pairs", pairs), func(t *testing.T) {
			pool := newBridgePool(t, pairs)
			b := newTestBridge(t, BridgeOptions{Pool: pool})
			// Two sections need four pairs: the pool runs out part way.
			_, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peer), portOf(peer) + 2}))
			if !errors.Is(err, ErrPortsExhausted) {
				t.Fatalf("Offer error = %v, want ErrPortsExhausted", err)
			}
			// Nothing is held, even before Close.
			checkPoolIdle(t, pool)
			// The bridge is still usable for a smaller offer.
			if pairs >= 2 {
				if _, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(peer)})); err != nil {
					t.Fatalf("Offer after a failed one: %v", err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkPoolIdle(t, pool)
		})
	}
}

func TestBridgeCloseIdempotent(t *testing.T) {
	c := newCall(t, BridgeOptions{})
	if st := c.pool.Stats(); st.InUse != 2 {
		t.Fatalf("pool InUse = %d, want 2", st.InUse)
	}
	for i := range 2 {
		if err := c.b.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	checkPoolIdle(t, c.pool)
	if st := c.pool.Stats(); st.IgnoredReleases != 0 {
		t.Errorf("a pair was released twice: %+v", st)
	}
	select {
	case <-c.b.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := c.b.Err(); err != nil {
		t.Errorf("Err() after Close = %v, want nil", err)
	}
	if _, err := c.b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerA)})); !errors.Is(err, ErrBridgeClosed) {
		t.Errorf("Offer after Close: %v, want ErrBridgeClosed", err)
	}
	if _, err := c.b.Answer(LegB, peerSDP(loopback, "sendrecv", []uint16{portOf(c.peerB)})); !errors.Is(err, ErrBridgeClosed) {
		t.Errorf("Answer after Close: %v, want ErrBridgeClosed", err)
	}
	checkPoolIdle(t, c.pool)
}

func TestBridgeMediaTimeout(t *testing.T) {
	const timeout = 20 * time.Millisecond
	c := newCall(t, BridgeOptions{MediaTimeout: timeout})
	// Ringing: no media for several timeouts, and no stop.
	select {
	case <-c.b.Done():
		t.Fatalf("unarmed bridge stopped: %v", c.b.Err())
	case <-time.After(10 * timeout):
	}
	if err := c.b.Err(); err != nil {
		t.Fatalf("Err() while running = %v", err)
	}
	c.b.Arm()
	waitDone(t, c.b)
	if err := c.b.Err(); !errors.Is(err, ErrMediaTimeout) {
		t.Fatalf("Err() = %v, want ErrMediaTimeout", err)
	}
	if err := c.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.b.Err(); !errors.Is(err, ErrMediaTimeout) {
		t.Fatalf("Err() after Close = %v, want ErrMediaTimeout still", err)
	}
	checkPoolIdle(t, c.pool)
}

// FuzzBridgeOffer checks that no offer makes the bridge panic, that a
// refused one is refused for its SDP or for ports, and that Close always
// gives every pair back.
func FuzzBridgeOffer(f *testing.F) {
	for _, file := range inputs(f) {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in)
	}
	f.Add(peerSDP(loopback, "sendrecv", []uint16{4000, 0, 4002}, "rtcp-mux"))
	f.Add([]byte(""))
	pool := newBridgePool(f, 64)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := NewBridge(BridgeOptions{Pool: pool, IP: loopback})
		if err != nil {
			t.Fatal(err)
		}
		out, err := b.Offer(LegA, in)
		switch {
		case err == nil:
			if _, err := ParseSDP(out); err != nil {
				t.Errorf("Veil's offer does not parse back: %v\n%q", err, out)
			}
			// The offer again, as a re-INVITE, and as its own answer.
			if _, err := b.Offer(LegA, in); err != nil {
				t.Errorf("the same offer again: %v", err)
			}
			if _, err := b.Answer(LegB, in); err != nil {
				t.Errorf("the offer as its answer: %v", err)
			}
		case errors.Is(err, ErrBadSDP), errors.Is(err, ErrPortsExhausted), errors.Is(err, ErrPortsUnbindable):
		default:
			t.Errorf("Offer error wraps no documented sentinel: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if st := pool.Stats(); st.InUse != 0 {
			t.Fatalf("%d pairs leaked", st.InUse)
		}
	})
}

// TestBridgeCloseFromAnotherGoroutine closes the bridge while media flows,
// Stats and Err are read elsewhere and the call goroutine makes offers:
// -race checks the contract, and every pair comes back.
func TestBridgeCloseFromAnotherGoroutine(t *testing.T) {
	c := newCall(t, BridgeOptions{})
	stream(t, c.peerA, c.veilA, 0xa)
	stream(t, c.peerB, c.veilB, 0xb)
	waitFor(t, "media both ways", func() bool {
		st := c.b.Stats()
		return st.AToB.Packets > 0 && st.BToA.Packets > 0
	})
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for {
			select {
			case <-c.b.Done():
				return
			default:
			}
			_ = c.b.Stats()
			_ = c.b.Err()
		}
	}()
	offers := make(chan error, 1) // size one: the call goroutine never blocks
	go func() {
		// Re-offers adding sections race the Close: each either commits
		// (and Close releases it) or fails with ErrBridgeClosed.
		for n := 2; ; n++ {
			ports := make([]uint16, min(n, MaxMediaSections))
			for i := range ports {
				ports[i] = portOf(c.peerA) + uint16(2*i)
			}
			if _, err := c.b.Offer(LegA, peerSDP(loopback, "sendrecv", ports)); err != nil {
				offers <- err
				return
			}
		}
	}()
	closed := make(chan error, 1)
	go func() { closed <- c.b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return")
	}
	select {
	case err := <-offers:
		if !errors.Is(err, ErrBridgeClosed) && !errors.Is(err, ErrPortsExhausted) {
			t.Fatalf("Offer racing Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the offers did not stop after Close")
	}
	select {
	case <-readers:
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed after Close")
	}
	checkPoolIdle(t, c.pool)
}

// SetAllowed reaches the relays: those of sections offered after it and
// those already allocated.
func TestBridgeSetAllowed(t *testing.T) {
	b := newTestBridge(t, BridgeOptions{})
	near := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	b.SetAllowed(LegA, near)
	if _, err := b.Offer(LegA, peerSDP(loopback, "sendrecv", []uint16{4000, 4002})); err != nil {
		t.Fatal(err)
	}
	b.SetAllowed(LegB, []netip.Prefix{})
	if len(b.secs) != 2 {
		t.Fatalf("%d sections, want 2", len(b.secs))
	}
	for i, s := range b.secs {
		l := &s.relay.legs
		for _, lt := range []*latch{l[LegA].rtp, l[LegA].rtcp} {
			if got := lt.allow.Load(); got == nil || len(*got) != 1 || (*got)[0] != near[0] {
				t.Errorf("section %d: leg A allow = %v, want %v", i, got, near)
			}
		}
		for _, lt := range []*latch{l[LegB].rtp, l[LegB].rtcp} {
			if got := lt.allow.Load(); got == nil || len(*got) != 0 {
				t.Errorf("section %d: leg B allow = %v, want empty (SDP address only)", i, got)
			}
		}
		if !l[LegA].rtp.allowed(netip.MustParseAddr("127.0.0.1")) || l[LegA].rtp.allowed(netip.MustParseAddr("127.0.0.2")) {
			t.Errorf("section %d: leg A allows the wrong sources", i)
		}
	}
}
