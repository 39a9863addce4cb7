package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/veilgw/veil/configs"
)

// ErrTLSNotSupported is returned by NewServer for a tls:// listen entry:
// TLS listeners and their certificates come with secure calls.
// (Declared here rather than in errors.go only because this slice of the
// SIP edge was written in new files; it belongs with the other sentinels.)
var ErrTLSNotSupported = errors.New("tls listeners are not supported yet")

// Reasons an inbound INVITE is refused; statusFor maps them to a SIP status.
var (
	errNotTrunk        = errors.New("source is not in any carrier's inbound_cidrs")
	errBadDialled      = errors.New("dialled number unreadable")
	errBadCaller       = errors.New("caller number unreadable")
	errMissingHeader   = errors.New("mandatory header missing")
	errShuttingDown    = errors.New("server shutting down")
	errOverloaded      = errors.New("too many calls in progress")
	errListenerStopped = errors.New("listener stopped")
)

// statusFor is the one place an inbound-call error becomes a SIP final
// response (STYLE habit 10).
func statusFor(err error) (int, string) {
	switch {
	case errors.Is(err, errNotTrunk):
		return 403, "Forbidden" // RFC 3261 §21.4.4
	case errors.Is(err, errBadDialled):
		return 404, "Not Found" // RFC 3261 §21.4.5: not a number we serve
	case errors.Is(err, errBadCaller), errors.Is(err, errMissingHeader):
		return 400, "Bad Request" // see ErrBadNumber: unreadable caller; RFC 3261 §8.1.1
	case errors.Is(err, errShuttingDown), errors.Is(err, errOverloaded):
		return 503, "Service Unavailable"
	default:
		return 500, "Server Internal Error"
	}
}

// udpReaders is how many goroutines read (and parse) each UDP listener.
// sipgo parses a datagram on the goroutine that read it before handing it
// on; with one reader, a reader that the scheduler leaves waiting behind
// thousands of call goroutines lets the socket buffer overflow at high
// call rates. Messages are handled concurrently in any case (sipgo runs
// each on a goroutine of its own), so more readers change no ordering
// guarantee.
const udpReaders = 2

// allowedMethods is the Allow header value of 200 (OPTIONS) and 405
// responses (RFC 3261 §20.5, §21.4.6).
const allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"

// CallHandler takes inbound calls that passed the trunk ACL and whose
// numbers were read. The server declares it; the B2BUA call flow will
// implement it.
type CallHandler interface {
	// HandleInvite owns the call until it returns: it must send a final
	// response through call.Respond (if it returns without one the server
	// answers 500). ctx is cancelled when the server closes; the handler
	// must then end the call promptly. call.Cancelled() is closed when
	// the caller cancels before the final response (sipgo has then
	// answered 487). HandleInvite runs on a goroutine of its own and may
	// block for the whole call.
	HandleInvite(ctx context.Context, call *InboundCall)
}

// CallHandlerFunc adapts a function to CallHandler.
type CallHandlerFunc func(ctx context.Context, call *InboundCall)

// HandleInvite calls f(ctx, call).
func (f CallHandlerFunc) HandleInvite(ctx context.Context, call *InboundCall) { f(ctx, call) }

// InboundCall is an initial INVITE from a carrier trunk whose numbers were
// read, already answered 100 Trying. Its exported fields are read-only.
type InboundCall struct {
	// Carrier is the name of the carrier whose inbound_cidrs hold Source.
	Carrier string
	// Caller is the caller's E.164 number (P-Asserted-Identity, else From).
	Caller string
	// Dialled is the dialled E.164 number (Request-URI, else To): a proxy
	// number, if it is one of ours.
	Dialled string
	// Source is the address the INVITE came from.
	Source netip.AddrPort

	req   *sipmsg.Request
	tx    sipmsg.ServerTransaction
	toTag string
	final atomic.Bool
	// recent remembers the INVITE once a 2xx answers it.
	recent *recentCalls

	cancelOnce sync.Once
	cancelled  chan struct{}
	// lastFinal is the final response sent, kept for 2xx retransmission;
	// written and read by the handler's goroutine only.
	lastFinal *sipmsg.Response
}

// Cancelled returns a channel closed when the INVITE transaction ends
// before a final response from the handler: the caller sent CANCEL (and
// was answered 487 by the transaction layer) or the transport failed.
func (c *InboundCall) Cancelled() <-chan struct{} { return c.cancelled }

func (c *InboundCall) cancel() {
	c.cancelOnce.Do(func() { close(c.cancelled) })
}

// Request returns the INVITE. It must not be modified (sipgo's transaction
// still reads it).
func (c *InboundCall) Request() *sipmsg.Request { return c.req }

// Transaction returns the INVITE server transaction, for its Acks, Done
// and OnCancel. Final responses must go through Respond.
func (c *InboundCall) Transaction() sipmsg.ServerTransaction { return c.tx }

// Respond sends a response without a body to the INVITE. Every response
// but 100 carries the same To tag (RFC 3261 §8.2.6.2). Only one final
// response (>= 200) may be sent; a second returns an error.
func (c *InboundCall) Respond(status int, reason string) error {
	return c.RespondBody(status, reason, nil, "")
}

// RespondBody is Respond with a body (an SDP answer, for example) of the
// given Content-Type.
func (c *InboundCall) RespondBody(status int, reason string, body []byte, contentType string) error {
	return c.respond(status, reason, body, contentType, nil)
}

// respondContact answers with Veil's Contact (18x and 2xx establish a
// dialog, RFC 3261 §12.1.1) and an optional SDP body.
func (c *InboundCall) respondContact(status int, reason string, body []byte, contact sipmsg.Uri) error {
	ct := ""
	if body != nil {
		ct = "application/sdp"
	}
	return c.respond(status, reason, body, ct, &sipmsg.ContactHeader{Address: contact})
}

func (c *InboundCall) respond(status int, reason string, body []byte, contentType string, contact *sipmsg.ContactHeader) error {
	if status >= 200 && !c.final.CompareAndSwap(false, true) {
		return fmt.Errorf("responding %d: a final response was already sent", status)
	}
	res := newResponse(c.req, status, reason, body, c.toTag)
	if contact != nil {
		res.AppendHeader(contact)
	}
	if contentType != "" && body != nil {
		res.AppendHeader(sipmsg.NewHeader("Content-Type", contentType))
	}
	if status >= 200 {
		c.lastFinal = res
	}
	if status >= 200 && status < 300 && c.recent != nil {
		if key, ok := inviteKey(c.req); ok {
			c.recent.add(key)
		}
	}
	if err := c.tx.Respond(res); err != nil {
		return fmt.Errorf("responding %d: %w", status, err)
	}
	return nil
}

// retransmitFinal sends the final response again (a 2xx not yet
// acknowledged, RFC 3261 §13.3.1.4).
func (c *InboundCall) retransmitFinal() error {
	if c.lastFinal == nil {
		return nil
	}
	return c.tx.Respond(c.lastFinal)
}

// newResponse builds a response to req. sipgo's NewResponseFromRequest
// mints a fresh random To tag for every response, so a provisional and
// the final answer of one INVITE would disagree; toTag, when set, is put
// in place of it (unless the request already had a To tag).
func newResponse(req *sipmsg.Request, status int, reason string, body []byte, toTag string) *sipmsg.Response {
	res := sipmsg.NewResponseFromRequest(req, status, reason, body)
	if status > 100 && toTag != "" {
		if rt := req.To(); rt != nil && !rt.Params.Has("tag") {
			if to := res.To(); to != nil {
				to.Params.Add("tag", toTag)
			}
		}
	}
	return res
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Listen lists the sockets to serve, as configs.SIP.Listen:
	// "udp://host:port" or "tcp://host:port" (port 0 picks a free one;
	// see Server.Addrs). tls:// fails with ErrTLSNotSupported. Required.
	Listen []string
	// ACL says which carrier an INVITE's source address belongs to. Nil
	// refuses every INVITE with 403.
	ACL *TrunkACL
	// Handler takes the accepted INVITEs. Required. A *B2BUA given here is
	// attached to the server: it sends through the server's listeners and
	// receives the requests within its calls' dialogs.
	Handler CallHandler
	// Logger receives the server's logs and sipgo's. Nil means
	// slog.Default().
	Logger *slog.Logger
	// SocketBuffer, when positive, sets the receive and send buffer of
	// each UDP listener, in bytes (sip.socket_buffer).
	SocketBuffer int
	// MaxCalls, when positive, caps the calls in progress: an INVITE
	// beyond it is answered 503 at once, before any work (sip.max_calls).
	MaxCalls int
	// Metrics, if not nil, counts INVITEs refused for overload and TCP
	// connections refused beyond MaxTCPConns.
	Metrics *Metrics
	// MaxTCPConns caps the TCP connections open at once on each TCP
	// listener; past it a connection is accepted and closed at once
	// (sip.max_tcp_connections). 0 means DefaultMaxTCPConns.
	MaxTCPConns int
	// TCPIdleTimeout closes an accepted TCP connection on which nothing
	// arrived for this long (sip.tcp_idle_timeout). 0 means
	// DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration
}

// Server is Veil's SIP edge: it listens on the configured UDP and TCP
// sockets, answers OPTIONS, refuses INVITEs from outside the trunk ACL
// with 403 and hands the others to the CallHandler.
//
// sipgo runs each request on a goroutine of its own (its transaction
// layer), and so the CallHandler. The Server tracks the handler
// invocations and its listener goroutines and joins them in Close. sipgo's
// own per-connection TCP readers and transaction timers are stopped by
// closing its user agent in Close but cannot be joined from outside.
//
// The Server sets no sipgo globals (timers, debug flags, message size
// limits): those belong to main (STYLE habit 21).
type Server struct {
	log     *slog.Logger
	acl     *TrunkACL
	handler CallHandler
	b2bua   *B2BUA // the handler, when it is the B2BUA
	metrics *Metrics

	maxCalls     int
	overloadLogs atomic.Int64 // unix second of the last overload warning
	refusedLogs  rateLimit    // "sip invite refused" lines a second
	maxTCP       int
	tcpIdle      time.Duration
	recent       *recentCalls // INVITEs of answered calls that ended

	ua  *sipgo.UserAgent
	srv *sipgo.Server

	udp     []net.PacketConn
	tcp     []net.Listener
	addrs   []string
	origins []viaOrigin

	ctx    context.Context // parent of every handler's context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	draining bool
	serving  bool
	active   int            // handler invocations in progress
	calls    sync.WaitGroup // handler invocations in progress; Add under mu
	serveWG  sync.WaitGroup // listener goroutines

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed at the start of Close
}

// NewServer opens the listening sockets and builds the server; Serve
// starts answering. If it fails nothing is left open.
func NewServer(opts ServerOptions) (*Server, error) {
	if len(opts.Listen) == 0 {
		return nil, errors.New("new SIP server: no listen addresses")
	}
	if opts.Handler == nil {
		return nil, errors.New("new SIP server: no call handler")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:      log,
		acl:      opts.ACL,
		handler:  opts.Handler,
		metrics:  opts.Metrics,
		maxCalls: opts.MaxCalls,
		maxTCP:   opts.MaxTCPConns,
		tcpIdle:  opts.TCPIdleTimeout,
		recent:   newRecentCalls(64*sipmsg.T1, nil),
		done:     make(chan struct{}),
	}
	s.refusedLogs.burst = refusedLogBurst
	if err := s.listen(opts.Listen, opts.SocketBuffer); err != nil {
		s.closeSockets()
		return nil, err
	}

	sipgoLog := newSipgoLogger(log)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("veil"),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(sipgoLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sipmsg.WithTransactionLayerLogger(sipgoLog)),
	)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("new SIP user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipgoLog))
	if err != nil {
		s.closeSockets()
		_ = ua.Close()
		return nil, fmt.Errorf("new SIP server: %w", err)
	}
	s.ua, s.srv = ua, srv
	if b, ok := opts.Handler.(*B2BUA); ok {
		if err := b.attach(s); err != nil {
			s.closeSockets()
			_ = ua.Close()
			return nil, err
		}
		s.b2bua = b
	}
	srv.OnOptions(s.handleOptions)
	srv.OnInvite(s.handleInvite)
	srv.OnAck(s.handleAck)
	srv.OnBye(s.handleInDialog)
	srv.OnUpdate(s.handleInDialog)
	srv.OnNoRoute(s.handleOther)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// listen opens one socket per entry.
func (s *Server) listen(entries []string, buffer int) error {
	for _, uri := range entries {
		transport, addr, err := configs.SplitListen(uri)
		if err != nil {
			return fmt.Errorf("sip listen: %w", err)
		}
		switch transport {
		case "udp":
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("sip listen %q: %w", uri, err)
			}
			s.udp = append(s.udp, c)
			if uc, ok := c.(*net.UDPConn); ok && buffer > 0 {
				// Best effort: the kernel caps the size at rmem_max/wmem_max.
				_ = uc.SetReadBuffer(buffer)
				_ = uc.SetWriteBuffer(buffer)
			}
			s.addrs = append(s.addrs, "udp://"+c.LocalAddr().String())
			s.addOrigin("UDP", c.LocalAddr())
		case "tcp":
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("sip listen %q: %w", uri, err)
			}
			// sipgo's accept loop ends on the first accept error: the
			// guard retries temporary ones, caps and times out conns.
			s.tcp = append(s.tcp, newTCPGuard(l, s.maxTCP, s.tcpIdle, s.log, s.metrics))
			s.addrs = append(s.addrs, "tcp://"+l.Addr().String())
			s.addOrigin("TCP", l.Addr())
		case "tls":
			return fmt.Errorf("sip listen %q: %w (certificates come with secure calls)", uri, ErrTLSNotSupported)
		}
	}
	return nil
}

// Addrs returns the bound addresses in the configured order, in the form
// of ServerOptions.Listen with the real port ("udp://127.0.0.1:40123").
func (s *Server) Addrs() []string { return append([]string(nil), s.addrs...) }

// Serve answers SIP on every socket until ctx is cancelled or Close is
// called, then closes the server and returns nil; if a listener fails it
// closes the server and returns that error. It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return errors.New("sip serve: server closed")
	case s.serving:
		s.mu.Unlock()
		return errors.New("sip serve: already serving")
	}
	s.serving = true
	s.mu.Unlock()

	errc := make(chan error, udpReaders*len(s.udp)+len(s.tcp)) // one slot per reader: none blocks
	for _, c := range s.udp {
		for range udpReaders {
			s.serveWG.Go(func() {
				// sipgo returns nil both when the socket is closed and after
				// logging any other read error, so only s.done tells them apart.
				err := s.srv.ServeUDP(c)
				select {
				case <-s.done:
				default:
					errc <- fmt.Errorf("serving udp %s: stopped: %w", c.LocalAddr(), errors.Join(err, errListenerStopped))
				}
			})
		}
	}
	for _, l := range s.tcp {
		s.serveWG.Go(func() {
			err := s.srv.ServeTCP(l)
			select {
			case <-s.done: // closed by us: accept fails with net.ErrClosed
			default:
				errc <- fmt.Errorf("serving tcp %s: %w", l.Addr(), err)
			}
		})
	}
	s.log.Info("sip listening", "addrs", strings.Join(s.addrs, " "))

	var err error
	select {
	case <-ctx.Done():
	case <-s.done:
	case err = <-errc:
	}
	return errors.Join(err, s.Close())
}

// Drain stops taking new calls (new INVITEs are answered 503) and waits
// until the calls in progress end or ctx is done; it reports whether they
// all ended. In-dialog requests of the calls in progress are still
// served. Close afterwards hangs up what is left.
func (s *Server) Drain(ctx context.Context) bool {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close stops the listeners, cancels every call handler's context and
// waits for the handlers and listener goroutines to return, then closes
// sipgo's transaction and transport layers. It is idempotent and safe to
// call concurrently; every call returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		s.cancel()
		// Calls hang up (BYE, CANCEL) through the listeners, so these stay
		// open until every call handler has returned; new INVITEs meanwhile
		// get 503.
		s.calls.Wait()
		if s.b2bua != nil {
			s.b2bua.detach()
		}
		err := s.closeSockets()
		s.serveWG.Wait()
		s.closeErr = errors.Join(err, s.ua.Close())
	})
	return s.closeErr
}

func (s *Server) closeSockets() error {
	var err error
	for _, c := range s.udp {
		err = errors.Join(err, ignoreClosed(c.Close()))
	}
	for _, l := range s.tcp {
		err = errors.Join(err, ignoreClosed(l.Close()))
	}
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// enter registers a handler invocation; it fails once the server is
// closing or draining, or when MaxCalls are in progress.
func (s *Server) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.draining {
		return errShuttingDown
	}
	if s.maxCalls > 0 && s.active >= s.maxCalls {
		return errOverloaded
	}
	s.active++
	s.calls.Add(1)
	return nil
}

// leave ends a handler invocation registered by enter.
func (s *Server) leave() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.calls.Done()
}

// overloaded refuses an INVITE beyond MaxCalls: a warning at most once a
// second (a flood must not flood the log too) and a metric.
func (s *Server) overloaded(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if s.metrics != nil {
		s.metrics.calls.WithLabelValues("overload").Inc()
	}
	now := time.Now().Unix()
	if last := s.overloadLogs.Load(); now > last && s.overloadLogs.CompareAndSwap(last, now) {
		s.log.Warn("sip invite refused: sip.max_calls calls in progress", "status", 503, "max_calls", s.maxCalls)
	}
	code, reason := statusFor(errOverloaded)
	s.respond(req, tx, code, reason, sipmsg.NewHeader("Retry-After", "5"))
}

// refusedLogBurst is how many "sip invite refused" lines are logged a
// second at most: anyone can send INVITEs, one line each would let a
// flood flood the log.
const refusedLogBurst = 10

// logRefused logs an INVITE refused (ACL, headers, numbers) at info
// level, at most refusedLogBurst a second, saying how many it held back.
func (s *Server) logRefused(log *slog.Logger, args ...any) {
	ok, dropped := s.refusedLogs.allow(time.Now())
	if dropped > 0 {
		s.log.Info("sip invite refusals not logged (rate limit)", "dropped", dropped, "per_second", refusedLogBurst)
	}
	if ok {
		log.Info("sip invite refused", args...)
	}
}

// respond sends a stateful response and logs a failure.
func (s *Server) respond(req *sipmsg.Request, tx sipmsg.ServerTransaction, status int, reason string, extra ...sipmsg.Header) {
	res := sipmsg.NewResponseFromRequest(req, status, reason, nil)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Warn("sip respond failed", "method", string(req.Method), "status", status, "src", req.Source(), "error", err)
	}
}

// handleOptions answers 200 to anyone: carriers ping trunks with OPTIONS
// (RFC 3261 §11.2) before the ACL matters, and the answer reveals nothing
// but that Veil is up.
func (s *Server) handleOptions(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	s.respond(req, tx, 200, "OK",
		sipmsg.NewHeader("Allow", allowedMethods),
		sipmsg.NewHeader("Accept", "application/sdp"))
}

// handleOther answers a request no other handler takes. Dialog methods
// arriving here match no dialog: 481 (RFC 3261 §12.2.2, §9.2 for CANCEL).
// Methods Veil knows but does not serve: 405 with Allow (§21.4.6); others:
// 501 (§8.2.1).
func (s *Server) handleOther(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	switch req.Method {
	case sipmsg.INFO, sipmsg.PRACK:
		// Within a live dialog the call answers (405: a 481 would end
		// the dialog for the peer); else 481.
		s.handleInDialog(req, tx)
	case sipmsg.BYE, sipmsg.CANCEL, sipmsg.UPDATE:
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
	case sipmsg.REGISTER, sipmsg.SUBSCRIBE, sipmsg.NOTIFY, sipmsg.MESSAGE, sipmsg.PUBLISH, sipmsg.REFER:
		s.respond(req, tx, 405, "Method Not Allowed", sipmsg.NewHeader("Allow", allowedMethods))
	default:
		s.respond(req, tx, 501, "Not Implemented", sipmsg.NewHeader("Allow", allowedMethods))
	}
}

// handleInvite runs on sipgo's goroutine for the request: ACL, numbers,
// 100 Trying, then the CallHandler, which owns the call until it returns.
// sipgo terminates the transaction when this returns.
func (s *Server) handleInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.handleInDialog(req, tx) // a re-INVITE (RFC 3261 §12.2.2)
		return
	}
	if key, ok := inviteKey(req); ok && s.recent.has(key) {
		// A late copy of an answered INVITE whose transaction is gone
		// (Timer L, shortened by TuneSipgoTimers): no new call, no
		// answer; the call itself retransmits its 200 until the ACK.
		s.log.Debug("sip invite: duplicate of an ended call dropped")
		return
	}
	// The ACL comes before the call slot: a source outside every trunk
	// gets 403 and takes no slot, nor counts as overload.
	src, _ := netip.ParseAddrPort(req.Source()) // set by sipgo from the socket peer
	log := s.log.With("src", src.String())
	carrier, ok := s.acl.Carrier(src.Addr())
	if !ok {
		code, reason := statusFor(errNotTrunk)
		s.logRefused(log, "status", code, "reason", errNotTrunk)
		s.respond(req, tx, code, reason)
		return
	}
	log = log.With("carrier", carrier)
	if err := s.enter(); err != nil {
		if errors.Is(err, errOverloaded) {
			s.overloaded(req, tx)
			return
		}
		code, reason := statusFor(err)
		s.respond(req, tx, code, reason)
		return
	}
	defer s.leave()

	call := &InboundCall{Carrier: carrier, Source: src, req: req, tx: tx, toTag: sipmsg.GenerateTagN(16), cancelled: make(chan struct{}), recent: s.recent}
	// Reading the numbers is pure and quick, so a refusal goes out as the
	// only response; a 100 before it would be noise (RFC 3261 §8.2.6.1).
	if err := checkMandatory(req); err != nil {
		code, reason := statusFor(err)
		s.logRefused(log, "status", code, "error", err)
		s.respond(req, tx, code, reason)
		return
	}
	if err := readNumbers(req, call); err != nil {
		code, reason := statusFor(err)
		s.logRefused(log, "status", code, "error", err) // errors never quote numbers
		if rerr := call.Respond(code, reason); rerr != nil {
			log.Warn("sip invite: respond failed", "error", rerr)
		}
		return
	}
	// RFC 3261 §17.2.1: 100 Trying at once, before the handler does
	// anything slow (routing, the outbound leg), so the carrier stops
	// retransmitting. sipgo would send one itself after Timer_1xx (200 ms).
	if err := call.Respond(100, "Trying"); err != nil {
		log.Warn("sip invite: 100 Trying failed", "error", err)
		return
	}

	// On CANCEL sipgo answers 487 itself: that is the final response.
	tx.OnCancel(func(*sipmsg.Request) {
		call.final.Store(true)
		call.cancel()
	})
	tx.OnTerminate(func(string, error) {
		if !call.final.Load() {
			call.cancel()
		}
	})
	s.runHandler(s.ctx, call, log)
	if !call.final.Load() {
		code, reason := statusFor(nil)
		log.Warn("sip call handler returned without a final response", "status", code)
		if err := call.Respond(code, reason); err != nil {
			log.Debug("sip invite: respond failed", "error", err)
		}
	}
}

// inviteKey identifies an initial INVITE across retransmissions: its
// Call-ID and From tag (RFC 3261 §12.1.1; the branch would not match a
// copy the caller's carrier re-sent from scratch).
func inviteKey(req *sipmsg.Request) (string, bool) {
	cid, from := req.CallID(), req.From()
	if cid == nil || from == nil {
		return "", false
	}
	return cid.Value() + "\n" + from.Params.GetOr("tag", ""), true
}

// runHandler calls the CallHandler; a panic in it is logged, not fatal to
// the server.
func (s *Server) runHandler(ctx context.Context, call *InboundCall, log *slog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("sip call handler panicked", "panic", r)
		}
	}()
	s.handler.HandleInvite(ctx, call)
}

// checkMandatory refuses a request without one of the headers every
// request must have (RFC 3261 §8.1.1); sipgo itself only insists on Via
// and CSeq. The call flow relies on them.
func checkMandatory(req *sipmsg.Request) error {
	switch {
	case req.CallID() == nil || req.CallID().Value() == "":
		return fmt.Errorf("%w: Call-ID", errMissingHeader)
	case req.From() == nil:
		return fmt.Errorf("%w: From", errMissingHeader)
	case req.To() == nil:
		return fmt.Errorf("%w: To", errMissingHeader)
	case req.CSeq() == nil:
		return fmt.Errorf("%w: CSeq", errMissingHeader)
	}
	return nil
}

// readNumbers fills call.Dialled from the Request-URI (else To) and
// call.Caller from P-Asserted-Identity (else From). The dialled number is
// checked first: a number Veil does not serve is 404 whoever calls.
func readNumbers(req *sipmsg.Request, call *InboundCall) error {
	dialled, err := NumberFromURI(req.Recipient.String())
	if err != nil {
		to := req.To()
		if to == nil {
			return fmt.Errorf("%w: %w", errBadDialled, err)
		}
		if dialled, err = NumberFromURI(to.Value()); err != nil {
			return fmt.Errorf("%w: %w", errBadDialled, err)
		}
	}
	var pai []string
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		pai = append(pai, h.Value())
	}
	from := ""
	if h := req.From(); h != nil {
		from = h.Value()
	}
	caller, err := CallerNumber(pai, from)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadCaller, err)
	}
	call.Dialled, call.Caller = dialled, caller
	return nil
}

// handleAck passes an ACK to the call whose dialog it belongs to (the ACK
// of a 2xx is a request of its own, RFC 3261 §13.2.2.4); an ACK matching
// nothing is dropped: ACK is never answered (§17.1.1.3).
func (s *Server) handleAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if s.b2bua != nil {
		s.b2bua.handleInDialog(req, tx)
	}
}

// handleInDialog passes a request within a dialog (BYE, re-INVITE,
// UPDATE, INFO, PRACK) to its call; 481 when no call has the dialog (RFC
// 3261 §12.2.2), 403 when it comes from elsewhere than the leg's carrier.
func (s *Server) handleInDialog(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if s.b2bua != nil {
		switch s.b2bua.handleInDialog(req, tx) {
		case inDialogDelivered:
			return
		case inDialogForbidden:
			s.respond(req, tx, 403, "Forbidden")
			return
		}
	}
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// origin returns how Veil sends on a transport ("UDP", "TCP"): from the
// first listener of that transport, falling back to the first listener.
func (s *Server) origin(transport string) viaOrigin {
	want := strings.ToUpper(transport)
	if want == "" {
		want = "UDP"
	}
	for _, o := range s.origins {
		if o.transport == want {
			return o
		}
	}
	if len(s.origins) > 0 {
		o := s.origins[0]
		o.transport = want
		o.laddr = sipmsg.Addr{}
		return o
	}
	return viaOrigin{transport: want}
}

// contactURI is Veil's Contact on a leg: the user given (the number shown
// on that leg) at the listener of the transport.
func (s *Server) contactURI(user, transport string) sipmsg.Uri {
	o := s.origin(transport)
	u := sipmsg.Uri{Scheme: "sip", User: user, Host: o.host, Port: o.port}
	if o.transport != "UDP" {
		u.UriParams = sipmsg.NewParams()
		u.UriParams.Add("transport", strings.ToLower(o.transport))
	}
	return u
}

// addOrigin records a listener as a place Veil sends from. A UDP request
// is sent from the listening socket itself (its local address set as the
// request's Laddr), so the peer answers to the listener.
func (s *Server) addOrigin(transport string, a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	o := viaOrigin{transport: transport, host: ap.Addr().String(), port: int(ap.Port())}
	if transport == "UDP" {
		o.laddr = sipmsg.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	s.origins = append(s.origins, o)
}
