package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	dto "github.com/prometheus/client_model/go"

	"github.com/veilgw/veil/configs"
)

// testWait bounds every wait in these tests.
const testWait = 5 * time.Second

type testServer struct {
	*Server
	udp, tcp string // host:port
}

// startServer starts a Server on 127.0.0.1:0 (UDP and TCP) and closes it
// at cleanup, checking that Serve returns.
func startServer(t testing.TB, acl *TrunkACL, h CallHandler) *testServer {
	t.Helper()
	if h == nil {
		h = CallHandlerFunc(func(_ context.Context, c *InboundCall) { _ = c.Respond(486, "Busy Here") })
	}
	s, err := NewServer(ServerOptions{
		Listen:  []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"},
		ACL:     acl,
		Handler: h,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testWait):
			t.Error("Serve did not return after Close")
		}
	})
	ts := &testServer{Server: s}
	for _, a := range s.Addrs() {
		tr, addr, _ := strings.Cut(a, "://")
		switch tr {
		case "udp":
			ts.udp = addr
		case "tcp":
			ts.tcp = addr
		}
	}
	return ts
}

func newClient(t testing.TB) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(
		sipmsg.WithTransportLayerLogger(slog.New(slog.DiscardHandler))),
		sipgo.WithUserAgentTransactionLayerOptions(
			sipmsg.WithTransactionLayerLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	return c
}

// parseRequest parses SIP text (LF line ends are turned into CRLF).
func parseRequest(t testing.TB, text string) *sipmsg.Request {
	t.Helper()
	text = strings.ReplaceAll(strings.TrimLeft(text, "\n"), "\n", "\r\n")
	m, err := sipmsg.ParseMessage([]byte(text))
	if err != nil {
		t.Fatalf("parse test request: %v", err)
	}
	return m.(*sipmsg.Request)
}

func options(t testing.TB, addr, transport string) *sipmsg.Request {
	return parseRequest(t, `
OPTIONS sip:veil@`+addr+`;transport=`+transport+` SIP/2.0
From: <sip:ping@127.0.0.1>;tag=p1
To: <sip:veil@`+addr+`>
Call-ID: opt-`+transport+`-`+time.Now().Format("150405.000000000")+`
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

`)
}

func doOptions(t testing.TB, c *sipgo.Client, addr, transport string) *sipmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	res, err := c.Do(ctx, options(t, addr, transport))
	if err != nil {
		t.Fatalf("OPTIONS over %s: %v", transport, err)
	}
	return res
}

func TestServerOptions(t *testing.T) {
	// No ACL at all: OPTIONS is answered to anyone.
	ts := startServer(t, nil, nil)
	c := newClient(t)
	for _, tc := range []struct{ transport, addr string }{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		t.Run(tc.transport, func(t *testing.T) {
			res := doOptions(t, c, tc.addr, tc.transport)
			if res.StatusCode != 200 {
				t.Fatalf("OPTIONS status %d, want 200", res.StatusCode)
			}
			if h := res.GetHeader("Allow"); h == nil || !strings.Contains(h.Value(), "INVITE") {
				t.Errorf("Allow = %v, want INVITE among methods", h)
			}
		})
	}
}

func aclFor(t testing.TB, cidrs ...string) *TrunkACL {
	t.Helper()
	acl, err := NewTrunkACL([]configs.Carrier{carrier("acme", cidrs...)})
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

// invite sends an INVITE and returns the status codes of every response,
// the final one last. proceed, if not nil, is closed when the first
// provisional response arrives: sipgo's client handles each response on a
// goroutine of its own, so a final response sent right after 100 Trying
// may overtake it and the 100 is then dropped. Fake handlers wait on
// proceed before answering.
func invite(t testing.TB, c *sipgo.Client, addr, transport, ruri, from, extra string, proceed chan struct{}) []int {
	t.Helper()
	req := parseRequest(t, `
INVITE `+ruri+`;transport=`+transport+` SIP/2.0
From: `+from+`;tag=f1
To: <sip:+15550100999@`+addr+`>
Call-ID: inv-`+time.Now().Format("150405.000000000")+`
CSeq: 1 INVITE
Max-Forwards: 70
Contact: <sip:caller@127.0.0.1>
`+extra+`Content-Length: 0

`)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	tx, err := c.TransactionRequest(ctx, req)
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	defer tx.Terminate()
	var codes []int
	for {
		select {
		case res := <-tx.Responses():
			codes = append(codes, res.StatusCode)
			if res.StatusCode >= 200 {
				return codes
			}
			if proceed != nil {
				close(proceed)
				proceed = nil
			}
		case <-tx.Done():
			t.Fatalf("INVITE transaction ended after %v: %v", codes, tx.Err())
		case <-ctx.Done():
			t.Fatalf("INVITE: no final response, got %v", codes)
		}
	}
}

func TestServerInvite(t *testing.T) {
	tests := []struct {
		name       string
		cidrs      []string
		ruri, from string
		extra      string
		want       []int     // status codes seen by the caller
		wantCall   *seenCall // nil: the handler must not be called
	}{
		{
			name: "not a trunk", cidrs: []string{"10.0.0.0/8"},
			ruri: "sip:+15550100101@%s", from: "<sip:+15550100202@carrier.example>",
			want: []int{403},
		},
		{
			name: "no carrier has inbound cidrs", cidrs: nil,
			ruri: "sip:+15550100101@%s", from: "<sip:+15550100202@carrier.example>",
			want: []int{403},
		},
		{
			name: "trunk", cidrs: []string{"127.0.0.0/8"},
			ruri: "sip:+15550100101@%s", from: "<sip:15550100202@carrier.example>",
			want:     []int{100, 486},
			wantCall: &seenCall{Carrier: "acme", Caller: "+15550100202", Dialled: "+15550100101"},
		},
		{
			name: "P-Asserted-Identity wins over From", cidrs: []string{"127.0.0.1/32"},
			ruri: "sip:15550100101@%s", from: `"Anonymous" <sip:anonymous@anonymous.invalid>`,
			extra:    "P-Asserted-Identity: <tel:+1-555-010-0303>\n",
			want:     []int{100, 486},
			wantCall: &seenCall{Carrier: "acme", Caller: "+15550100303", Dialled: "+15550100101"},
		},
		{
			name: "dialled from To when the Request-URI has no number", cidrs: []string{"127.0.0.1/32"},
			ruri: "sip:trunk@%s", from: "<sip:+15550100202@carrier.example>",
			want:     []int{100, 486},
			wantCall: &seenCall{Carrier: "acme", Caller: "+15550100202", Dialled: "+15550100999"},
		},
		{
			name: "anonymous caller", cidrs: []string{"127.0.0.1/32"},
			ruri: "sip:+15550100101@%s", from: "<sip:anonymous@anonymous.invalid>",
			want: []int{400},
		},
	}
	for _, tt := range tests {
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				calls := make(chan seenCall, 1)
				proceed := make(chan struct{})
				ts := startServer(t, aclFor(t, tt.cidrs...), CallHandlerFunc(func(ctx context.Context, c *InboundCall) {
					calls <- seenCall{Carrier: c.Carrier, Caller: c.Caller, Dialled: c.Dialled, Source: c.Source}
					select {
					case <-proceed: // the caller saw 100 Trying
					case <-ctx.Done():
					}
					if err := c.Respond(486, "Busy Here"); err != nil {
						t.Errorf("Respond: %v", err)
					}
				}))
				addr := ts.udp
				if transport == "tcp" {
					addr = ts.tcp
				}
				codes := invite(t, newClient(t), addr, transport, strings.Replace(tt.ruri, "%s", addr, 1), tt.from, tt.extra, proceed)
				if !equalInts(codes, tt.want) {
					t.Errorf("responses %v, want %v", codes, tt.want)
				}
				select {
				case got := <-calls:
					if tt.wantCall == nil {
						t.Fatalf("handler called with %+v, want no call", got)
					}
					if got.Carrier != tt.wantCall.Carrier || got.Caller != tt.wantCall.Caller || got.Dialled != tt.wantCall.Dialled {
						t.Errorf("call = %+v, want %+v", got, *tt.wantCall)
					}
					if !got.Source.Addr().IsLoopback() {
						t.Errorf("call source %v, want loopback", got.Source)
					}
				default:
					if tt.wantCall != nil {
						t.Error("handler was not called")
					}
				}
			})
		}
	}
}

func TestServerInviteUnreadableDialled(t *testing.T) {
	ts := startServer(t, aclFor(t, "127.0.0.0/8"), CallHandlerFunc(func(_ context.Context, c *InboundCall) {
		t.Error("handler called")
		_ = c.Respond(486, "Busy Here")
	}))
	req := parseRequest(t, `
INVITE sip:trunk@`+ts.udp+` SIP/2.0
From: <sip:+15550100202@carrier.example>;tag=f1
To: <sip:support@`+ts.udp+`>
Call-ID: dialled-404
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

`)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	res, err := newClient(t).Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 404 {
		t.Errorf("status %d, want 404", res.StatusCode)
	}
}

// A handler that returns without a final response gets 500 sent for it;
// one that panics does not take the server down.
func TestServerHandlerMisbehaves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic bool
	}{
		{"no final response", false},
		{"panic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proceed := make(chan struct{})
			ts := startServer(t, aclFor(t, "127.0.0.0/8"), CallHandlerFunc(func(ctx context.Context, _ *InboundCall) {
				select {
				case <-proceed:
				case <-ctx.Done():
				}
				if tc.panic {
					panic("boom")
				}
			}))
			c := newClient(t)
			codes := invite(t, c, ts.udp, "udp", "sip:+15550100101@"+ts.udp, "<sip:+15550100202@carrier.example>", "", proceed)
			if !equalInts(codes, []int{100, 500}) {
				t.Errorf("responses %v, want [100 500]", codes)
			}
			if res := doOptions(t, c, ts.udp, "udp"); res.StatusCode != 200 {
				t.Errorf("OPTIONS afterwards: %d", res.StatusCode)
			}
		})
	}
}

func TestServerOtherMethods(t *testing.T) {
	ts := startServer(t, nil, nil)
	c := newClient(t)
	for _, tc := range []struct {
		method string
		want   int
	}{
		{"BYE", 481},
		{"REGISTER", 405},
		{"MESSAGE", 405},
		{"FOOBAR", 501},
	} {
		t.Run(tc.method, func(t *testing.T) {
			req := parseRequest(t, `
`+tc.method+` sip:veil@`+ts.udp+` SIP/2.0
From: <sip:x@127.0.0.1>;tag=o1
To: <sip:veil@`+ts.udp+`>
Call-ID: other-`+tc.method+`
CSeq: 1 `+tc.method+`
Max-Forwards: 70
Content-Length: 0

`)
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			res, err := c.Do(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Errorf("%s: status %d, want %d", tc.method, res.StatusCode, tc.want)
			}
		})
	}
}

// Malformed SIP never takes the server down: sipgo drops what it cannot
// parse (UDP) or closes the connection (TCP), and OPTIONS still works.
func TestServerMalformed(t *testing.T) {
	huge := "OPTIONS sip:veil@127.0.0.1 SIP/2.0\r\nX-Huge: " + strings.Repeat("a", 70_000) + "\r\n\r\n"
	bodyTooLong := "OPTIONS sip:veil@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\nContent-Length: 999999\r\n\r\nabc"
	inputs := []struct {
		name string
		data string
	}{
		{"garbage", "\x00\x01\xffhello there\r\n\r\n"},
		{"binary", string(bytes.Repeat([]byte{0x80, 0xfe, 0x0d}, 300))},
		{"no sip version", "INVITE sip:x@y\r\n\r\n"},
		{"truncated", "INVITE sip:+15550100101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;bra"},
		{"bad header", "OPTIONS sip:veil@127.0.0.1 SIP/2.0\r\nCSeq: banana\r\nVia: nonsense\r\n\r\n"},
		{"content length too long", bodyTooLong},
		{"huge header", huge},
	}
	ts := startServer(t, aclFor(t, "127.0.0.0/8"), nil)
	c := newClient(t)
	for _, in := range inputs {
		t.Run("udp/"+in.name, func(t *testing.T) {
			conn, err := net.Dial("udp", ts.udp)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			data := in.data
			if len(data) > 65_000 { // the largest datagram loopback takes
				data = data[:65_000]
			}
			if _, err := conn.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
			if res := doOptions(t, c, ts.udp, "udp"); res.StatusCode != 200 {
				t.Errorf("OPTIONS after %s: %d", in.name, res.StatusCode)
			}
		})
		t.Run("tcp/"+in.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.tcp)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			if _, err := conn.Write([]byte(in.data)); err != nil {
				t.Fatal(err)
			}
			if in.name != "truncated" {
				// Unparseable: sipgo closes the connection (no message
				// boundary to resync on); a stray reply would be fine too.
				_ = conn.SetReadDeadline(time.Now().Add(testWait))
				if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, net.ErrClosed) {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Errorf("connection still open %v after %s", testWait, in.name)
					}
				}
			}
			if res := doOptions(t, c, ts.tcp, "tcp"); res.StatusCode != 200 {
				t.Errorf("OPTIONS after %s: %d", in.name, res.StatusCode)
			}
		})
	}
}

// A request that parses but lacks a header a transaction needs is
// answered 400 statelessly by sipgo.
func TestServerMissingCSeqAnswered400(t *testing.T) {
	ts := startServer(t, nil, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	msg := "OPTIONS sip:veil@" + ts.udp + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + pc.LocalAddr().String() + ";branch=z9hG4bKnocseq\r\n" +
		"From: <sip:x@127.0.0.1>;tag=a\r\nTo: <sip:veil@127.0.0.1>\r\nCall-ID: nocseq\r\nContent-Length: 0\r\n\r\n"
	dst, err := net.ResolveUDPAddr("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(testWait))
	buf := make([]byte, 4096)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 400 ") {
		t.Errorf("answer %q, want 400", strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
	}
}

func TestServerCloseIdempotentAndPrompt(t *testing.T) {
	started := make(chan struct{})
	h := CallHandlerFunc(func(ctx context.Context, c *InboundCall) {
		close(started)
		<-ctx.Done() // a call in progress: Close must cancel it
		_ = c.Respond(503, "Service Unavailable")
	})
	s, err := NewServer(ServerOptions{
		Listen: []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}, ACL: aclFor(t, "127.0.0.0/8"),
		Handler: h, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	udp := strings.TrimPrefix(s.Addrs()[0], "udp://")

	c := newClient(t)
	req := parseRequest(t, `
INVITE sip:+15550100101@`+udp+` SIP/2.0
From: <sip:+15550100202@carrier.example>;tag=f1
To: <sip:+15550100101@`+udp+`>
Call-ID: close-test
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

`)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	tx, err := c.TransactionRequest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Terminate)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("handler not called")
	}

	closed := make(chan error, 2)
	for range 2 {
		go func() { closed <- s.Close() }()
	}
	for range 2 {
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(testWait):
			t.Fatal("Close did not return")
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("third Close: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(testWait):
		t.Fatal("Serve did not return")
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve after Close succeeded")
	}
}

func TestServeStopsOnContext(t *testing.T) {
	s, err := NewServer(ServerOptions{Listen: []string{"tcp://127.0.0.1:0"}, Handler: CallHandlerFunc(func(context.Context, *InboundCall) {}),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(testWait):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(s.Addrs()[0], "tcp://")); err == nil {
		t.Error("listener still accepting after Serve returned")
	}
}

func TestNewServerErrors(t *testing.T) {
	h := CallHandlerFunc(func(context.Context, *InboundCall) {})
	tests := []struct {
		name    string
		opts    ServerOptions
		wantErr string
		is      error
	}{
		{"tls", ServerOptions{Listen: []string{"udp://127.0.0.1:0", "tls://127.0.0.1:0"}, Handler: h}, "tls://", ErrTLSNotSupported},
		{"no listen", ServerOptions{Handler: h}, "no listen addresses", nil},
		{"no handler", ServerOptions{Listen: []string{"udp://127.0.0.1:0"}}, "no call handler", nil},
		{"bad entry", ServerOptions{Listen: []string{"127.0.0.1:5060"}, Handler: h}, "no transport", nil},
		{"sctp", ServerOptions{Listen: []string{"sctp://127.0.0.1:5060"}, Handler: h}, "want udp, tcp or tls", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("NewServer succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestStatusFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errNotTrunk, 403},
		{errBadDialled, 404},
		{errBadCaller, 400},
		{errShuttingDown, 503},
		{nil, 500},
		{io.EOF, 500},
	} {
		if got, _ := statusFor(tc.err); got != tc.want {
			t.Errorf("statusFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// seenCall is what the fake handler saw of an InboundCall.
type seenCall struct {
	Carrier, Caller, Dialled string
	Source                   netip.AddrPort
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestServerMaxCalls: an INVITE beyond MaxCalls is refused 503 at once,
// with Retry-After, counted; the call in progress is not disturbed, and
// once it ends a new INVITE is taken again.
func TestServerMaxCalls(t *testing.T) {
	entered := make(chan struct{}, 16) // never blocks the handler
	release := make(chan struct{})
	h := CallHandlerFunc(func(_ context.Context, c *InboundCall) {
		entered <- struct{}{}
		<-release
		_ = c.Respond(486, "Busy Here")
	})
	m := NewMetrics(nil)
	s, err := NewServer(ServerOptions{
		Listen: []string{"udp://127.0.0.1:0"}, ACL: aclFor(t, "127.0.0.1/32"), Handler: h,
		MaxCalls: 1, Metrics: m, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background())
	defer s.Close()
	addr := strings.TrimPrefix(s.Addrs()[0], "udp://")
	c := newClient(t)
	ruri, from := "sip:+15550100101@"+addr, "<sip:+15550100202@carrier.example>"

	first := make(chan []int, 1)
	go func() { first <- invite(t, c, addr, "udp", ruri, from, "", nil) }()
	select {
	case <-entered:
	case <-time.After(testWait):
		t.Fatal("first call never reached the handler")
	}
	if got := invite(t, c, addr, "udp", ruri, from, "", nil); !equalInts(got, []int{503}) {
		t.Errorf("second INVITE got %v, want [503]", got)
	}
	var pb dto.Metric
	if err := m.calls.WithLabelValues("overload").Write(&pb); err != nil || pb.GetCounter().GetValue() != 1 {
		n := pb.GetCounter().GetValue()
		t.Errorf("overload count = %v, want 1", n)
	}
	close(release)
	if got := <-first; !equalInts(got, []int{100, 486}) {
		t.Errorf("first INVITE got %v, want [100 486]", got)
	}
	// The slot is free again (the handler has returned once 486 is out;
	// poll until the server has counted it).
	deadline := time.Now().Add(testWait)
	for {
		got := invite(t, c, addr, "udp", ruri, from, "", nil)
		if equalInts(got, []int{100, 486}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the call ended, INVITE got %v", got)
		}
	}
}

// TestServerInviteMissingHeaders: an INVITE from a trunk without Call-ID,
// From or To is answered 400 before the call handler sees it (RFC 3261
// §8.1.1); the call flow relies on them.
func TestServerInviteMissingHeaders(t *testing.T) {
	called := make(chan struct{}, 4)
	ts := startServer(t, aclFor(t, "127.0.0.1/32"), CallHandlerFunc(func(_ context.Context, c *InboundCall) {
		called <- struct{}{}
		_ = c.Respond(486, "Busy Here")
	}))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	dst, err := net.ResolveUDPAddr("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	for _, missing := range []string{"Call-ID", "From", "To"} {
		hdrs := map[string]string{
			"Call-ID": "Call-ID: nohdr-" + missing + "\r\n",
			"From":    "From: <sip:+15550100202@127.0.0.1>;tag=a\r\n",
			"To":      "To: <sip:+15550100101@127.0.0.1>\r\n",
		}
		delete(hdrs, missing)
		msg := "INVITE sip:+15550100101@" + ts.udp + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + pc.LocalAddr().String() + ";branch=z9hG4bKno" + missing + "\r\n" +
			hdrs["Call-ID"] + hdrs["From"] + hdrs["To"] + "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
		if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(testWait))
		buf := make([]byte, 4096)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no %s: no answer: %v", missing, err)
		}
		if got := strings.SplitN(string(buf[:n]), "\r\n", 2)[0]; !strings.HasPrefix(got, "SIP/2.0 400 ") {
			t.Errorf("no %s: answer %q, want 400", missing, got)
		}
	}
	select {
	case <-called:
		t.Error("the call handler saw an INVITE missing a mandatory header")
	default:
	}
}

// TestServerDuplicateInviteAfterAnsweredCall: once an answered INVITE's
// transaction is gone (Timer L, shortened by TuneSipgoTimers), a late
// copy of that INVITE must neither reach the handler nor be answered
// (recentCalls), while a new INVITE still is.
func TestServerDuplicateInviteAfterAnsweredCall(t *testing.T) {
	var handled atomic.Int32
	ts := startServer(t, aclFor(t, "127.0.0.0/8"), CallHandlerFunc(func(_ context.Context, c *InboundCall) {
		handled.Add(1)
		if err := c.Respond(200, "OK"); err != nil {
			t.Errorf("Respond: %v", err)
		}
		c.tx.Terminate() // as Timer L would, a few seconds later
	}))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	inviteText := func(callID string) []byte {
		return []byte(strings.ReplaceAll(`INVITE sip:+15550100101@`+ts.udp+` SIP/2.0
Via: SIP/2.0/UDP `+conn.LocalAddr().String()+`;branch=z9hG4bK-`+callID+`
From: <sip:+15550100202@carrier.example>;tag=f-`+callID+`
To: <sip:+15550100101@`+ts.udp+`>
Call-ID: `+callID+`
CSeq: 1 INVITE
Contact: <sip:c@`+conn.LocalAddr().String()+`>
Max-Forwards: 70
Content-Length: 0

`, "\n", "\r\n"))
	}
	// readUntil200 reads responses until the 200 of callID; it fails on a
	// response to any Call-ID in forbidden.
	readUntil200 := func(callID string, forbidden ...string) {
		t.Helper()
		buf := make([]byte, 65535)
		if err := conn.SetReadDeadline(time.Now().Add(testWait)); err != nil {
			t.Fatal(err)
		}
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("waiting for the 200 of %s: %v", callID, err)
			}
			m, err := sipmsg.ParseMessage(buf[:n])
			if err != nil {
				t.Fatalf("parse response: %v", err)
			}
			res, ok := m.(*sipmsg.Response)
			if !ok {
				continue
			}
			got := res.CallID().Value()
			for _, f := range forbidden {
				if got == f {
					t.Fatalf("the duplicate INVITE of %s was answered %d", f, res.StatusCode)
				}
			}
			if got == callID && res.StatusCode == 200 {
				return
			}
		}
	}
	first := inviteText("dup-first")
	if _, err := conn.WriteToUDP(first, dst); err != nil {
		t.Fatal(err)
	}
	readUntil200("dup-first")
	if n := ts.recent.len(); n != 1 { // added before the 200 was sent
		t.Fatalf("INVITE keys remembered after the 200: %d, want 1", n)
	}
	if _, err := conn.WriteToUDP(first, dst); err != nil { // the late copy
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDP(inviteText("dup-second"), dst); err != nil {
		t.Fatal(err)
	}
	readUntil200("dup-second", "dup-first")
	if n := handled.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the first call and the new one)", n)
	}
}

// TestServerACLBeforeCallSlot: with sip.max_calls taken, an INVITE from
// outside every trunk is still answered 403 (not 503), takes no slot and
// does not count as overload.
func TestServerACLBeforeCallSlot(t *testing.T) {
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	h := CallHandlerFunc(func(_ context.Context, c *InboundCall) {
		entered <- struct{}{}
		<-release
		_ = c.Respond(486, "Busy Here")
	})
	m := NewMetrics(nil)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	s, err := NewServer(ServerOptions{
		Listen: []string{"udp://127.0.0.1:0"}, ACL: aclFor(t, "127.0.0.1/32"), Handler: h,
		MaxCalls: 1, Metrics: m, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background())
	defer s.Close()
	addr := strings.TrimPrefix(s.Addrs()[0], "udp://")
	c := newClient(t)
	ruri, from := "sip:+15550100101@"+addr, "<sip:+15550100202@carrier.example>"
	first := make(chan []int, 1)
	go func() { first <- invite(t, c, addr, "udp", ruri, from, "", nil) }()
	defer func() {
		close(release)
		<-first
	}()
	select {
	case <-entered:
	case <-time.After(testWait):
		t.Fatal("first call never reached the handler")
	}

	// From 127.0.0.2: no trunk. Many of them, to check the refusal log
	// is rate-limited.
	pc, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer pc.Close()
	dst, _ := net.ResolveUDPAddr("udp", addr)
	const n = 40
	for i := range n {
		msg := strings.ReplaceAll(fmt.Sprintf(`INVITE sip:+15550100101@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-acl-%d
From: <sip:+15550100303@intruder.example>;tag=x%d
To: <sip:+15550100101@%s>
Call-ID: acl-%d-%d
CSeq: 1 INVITE
Max-Forwards: 70
Contact: <sip:x@%s>
Content-Length: 0

`, addr, pc.LocalAddr(), i, i, addr, i, time.Now().UnixNano(), pc.LocalAddr()), "\n", "\r\n")
		if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(testWait))
		buf := make([]byte, 4096)
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("INVITE %d from outside the ACL: no answer: %v", i, err)
		}
		line, _, _ := strings.Cut(string(buf[:k]), "\r\n")
		if line != "SIP/2.0 403 Forbidden" {
			t.Fatalf("INVITE %d from outside the ACL got %q, want 403", i, line)
		}
	}
	var pb dto.Metric
	if err := m.calls.WithLabelValues("overload").Write(&pb); err != nil || pb.GetCounter().GetValue() != 0 {
		t.Errorf("overload count = %v, want 0", pb.GetCounter().GetValue())
	}
	logMu.Lock()
	refused := strings.Count(logBuf.String(), `msg="sip invite refused"`)
	logMu.Unlock()
	if refused < 1 || refused > 2*refusedLogBurst {
		t.Errorf("%d refusal lines for %d INVITEs, want at most %d a second", refused, n, refusedLogBurst)
	}
}
