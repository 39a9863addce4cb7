package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/media"
	"github.com/veilgw/veil/routing"
)

// Router is what the call flow asks of routing: who a call goes to, how to
// reach a number, and where a finished call is recorded. *routing.Service
// implements it.
type Router interface {
	ResolveCall(ctx context.Context, caller, dialled string) (routing.Decision, error)
	CarriersFor(dest, proxy string) []string
	RecordCall(ctx context.Context, rec *routing.CallRecord) error
}

// Media makes the media bridge of a new call.
type Media interface {
	NewBridge() (Bridge, error)
}

// MediaFunc adapts a function to Media.
type MediaFunc func() (Bridge, error)

// NewBridge calls f().
func (f MediaFunc) NewBridge() (Bridge, error) { return f() }

// Bridge is the media of one call between leg A (the caller's carrier) and
// leg B (the callee's): SDP offers and answers received on one leg become
// the SDP sent on the other, and the relay forwards RTP between them.
// *media.Bridge implements it.
type Bridge interface {
	Offer(from media.Leg, sdp []byte) ([]byte, error)
	Answer(from media.Leg, sdp []byte) ([]byte, error)
	Arm()
	Done() <-chan struct{}
	Err() error
	Stats() media.RelayStats
	Close() error
	// SetAllowed restricts the media sources that may latch on a leg to
	// its SDP address and the given prefixes (the leg's carrier); nil
	// lets any source latch.
	SetAllowed(leg media.Leg, allow []netip.Prefix)
}

// Defaults of B2BUAOptions.
const (
	DefaultRingTimeout     = 60 * time.Second
	DefaultMaxCallDuration = 4 * time.Hour
)

// B2BUAOptions configure a B2BUA.
type B2BUAOptions struct {
	// Router resolves calls and records them. Required.
	Router Router
	// Media makes each call's media bridge. Required.
	Media Media
	// Carriers are the configured carriers; those with a sip section can
	// be called.
	Carriers []configs.Carrier
	// RingTimeout is how long an outbound attempt may go unanswered
	// before Veil cancels it and tries the next carrier.
	RingTimeout time.Duration
	// MaxCallDuration ends an answered call with BYE to both legs.
	MaxCallDuration time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts calls and post-dial delay.
	Metrics *Metrics
	// Now is the clock of call records; nil means time.Now.
	Now func() time.Time
}

// outCarrier is a carrier Veil can place calls through.
type outCarrier struct {
	name      string
	address   string // host:port
	transport string // "UDP" or "TCP"
	format    string // number_format
}

// carrierSources are the source prefixes a carrier's signalling and media
// may come from.
type carrierSources struct {
	// inbound are its inbound_cidrs: where calls from it come from.
	inbound []netip.Prefix
	// outbound are the host of its address (resolved once) and its
	// inbound_cidrs: where the answers to calls through it come from.
	outbound []netip.Prefix
}

// B2BUA is the back-to-back user agent: it takes each inbound call from
// the Server (it is the Server's CallHandler), resolves it, places the
// outbound leg and bridges the two dialogs, one goroutine per call. Give
// it to NewServer as ServerOptions.Handler; the server attaches itself.
type B2BUA struct {
	opts     B2BUAOptions
	log      *slog.Logger
	carriers map[string]outCarrier
	sources  map[string]carrierSources

	srv    *Server
	client *sipgo.Client

	dialogs sync.Map // dialogKey -> *legRef

	// bg counts the goroutines that finish abandoned outbound INVITEs
	// (CANCEL sent, waiting for the final response, BYE for a 200 that
	// crossed it); detach stops them (bgCtx) and waits for them.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	// records counts the call records being written outside the record
	// writer (before attach, or with its queue full); detach waits for
	// them (they are never abandoned).
	records sync.WaitGroup

	// recs takes the records of ended calls to the record writer
	// (writeRecords), started by attach and stopped by detach. recMu
	// guards the sends against the close.
	recMu    sync.Mutex
	recs     chan *routing.CallRecord
	recsDone chan struct{}
}

// Call record writing. Each record is a synced write (it must survive a
// crash once written); written as each call ends, under load that was one
// fsync per call or nearly: a tenth of veild's CPU at 1,500 calls a second.
// The writer instead collects the records of recordBatchWindow and writes
// them together, concurrently, so that the store commits them behind one
// or a few fsyncs. A record reaches the disk at most a window later, and
// Server.Close still waits for every record.
const (
	// recordBatchWindow is how long the writer collects records after the
	// first one before writing them.
	recordBatchWindow = 10 * time.Millisecond
	// maxRecordBatch caps the records written together.
	maxRecordBatch = 256
	// recordQueue is the capacity of the writer's queue: calls end in
	// bursts, and a call never waits for the writer (with the queue
	// full, the call writes its record itself).
	recordQueue = 4096
)

// legRef is what the dialog table holds: a call and which of its legs a
// request belongs to.
type legRef struct {
	c   *call
	leg media.Leg
	// allow are the prefixes the leg's in-dialog requests must come from.
	allow []netip.Prefix
}

// allows reports whether a request from src may act on the leg.
func (r *legRef) allows(src string) bool {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range r.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Outcomes of B2BUA.handleInDialog.
const (
	inDialogDelivered = iota // the call took the request
	inDialogUnknown          // no call has the dialog: 481
	inDialogForbidden        // the source is not the leg's carrier: 403
)

// NewB2BUA checks opts and builds the B2BUA.
func NewB2BUA(opts B2BUAOptions) (*B2BUA, error) {
	if opts.Router == nil || opts.Media == nil {
		return nil, errors.New("new B2BUA: Router and Media are required")
	}
	if opts.RingTimeout <= 0 {
		opts.RingTimeout = DefaultRingTimeout
	}
	if opts.MaxCallDuration <= 0 {
		opts.MaxCallDuration = DefaultMaxCallDuration
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &B2BUA{opts: opts, log: log, carriers: make(map[string]outCarrier), sources: make(map[string]carrierSources)}
	b.bgCtx, b.bgCancel = context.WithCancel(context.Background())
	for _, c := range opts.Carriers {
		if c.SIP != nil {
			b.sources[c.Name] = sourcesOf(c.SIP, log.With("carrier", c.Name))
		}
		if c.SIP == nil || c.SIP.Address == "" {
			continue
		}
		b.carriers[c.Name] = outCarrier{
			name:      c.Name,
			address:   c.SIP.Address,
			transport: strings.ToUpper(orString(c.SIP.Transport, "udp")),
			format:    c.SIP.NumberFormat,
		}
	}
	return b, nil
}

// sourcesOf returns the source prefixes of a carrier: its inbound_cidrs,
// and for outbound its address's host, resolved now if it is a name (a
// name that does not resolve is logged; its calls' in-dialog requests and
// media are then accepted from its inbound_cidrs only).
func sourcesOf(sc *configs.CarrierSIP, log *slog.Logger) carrierSources {
	src := carrierSources{inbound: []netip.Prefix{}}
	for _, s := range sc.InboundCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil {
			src.inbound = append(src.inbound, normalisePrefix(p))
		}
	}
	src.outbound = slices.Clone(src.inbound)
	if sc.Address == "" {
		return src
	}
	host, _, err := net.SplitHostPort(sc.Address)
	if err != nil {
		host = sc.Address
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		return addHost(src, ip)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		log.Warn("carrier address does not resolve: its answers are accepted from its inbound_cidrs only", "error", err)
		return src
	}
	for _, ip := range ips {
		src = addHost(src, ip.Unmap().WithZone(""))
	}
	return src
}

func addHost(src carrierSources, ip netip.Addr) carrierSources {
	src.outbound = append(src.outbound, netip.PrefixFrom(ip, ip.BitLen()))
	return src
}

// allowedSources returns the prefixes a leg's peer may send from: the
// caller's carrier's inbound_cidrs for leg A, the callee's carrier's
// address and inbound_cidrs for leg B. An unknown carrier has none.
func (b *B2BUA) allowedSources(leg media.Leg, carrier string) []netip.Prefix {
	src := b.sources[carrier]
	var out []netip.Prefix
	if leg == media.LegA {
		out = src.inbound
	} else {
		out = src.outbound
	}
	if out == nil {
		out = []netip.Prefix{}
	}
	return out
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// attach is called by NewServer: the B2BUA sends through the server's user
// agent and listeners.
func (b *B2BUA) attach(s *Server) error {
	client, err := sipgo.NewClient(s.ua)
	if err != nil {
		return fmt.Errorf("new SIP client: %w", err)
	}
	b.srv, b.client = s, client
	b.recs = make(chan *routing.CallRecord, recordQueue)
	b.recsDone = make(chan struct{})
	go b.writeRecords(b.recs, b.recsDone)
	return nil
}

// queueRecord hands a call's record to the writer; false when the writer
// is not running (no server attached, or detached) or its queue is full:
// the caller then writes the record itself.
func (b *B2BUA) queueRecord(rec *routing.CallRecord) bool {
	b.recMu.Lock()
	defer b.recMu.Unlock()
	if b.recs == nil {
		return false
	}
	select {
	case b.recs <- rec:
		return true
	default:
		return false
	}
}

// writeRecords is the record writer: batches of records, each written
// when recordBatchWindow has passed since its first record (or it holds
// maxRecordBatch), until detach closes the queue; then it writes what is
// left and returns. It reads recs, never b.recs, which detach clears.
func (b *B2BUA) writeRecords(recs <-chan *routing.CallRecord, done chan struct{}) {
	defer close(done)
	batch := make([]*routing.CallRecord, 0, maxRecordBatch)
	window := time.NewTimer(recordBatchWindow)
	window.Stop()
	for rec := range recs {
		batch = append(batch[:0], rec)
		window.Reset(recordBatchWindow)
	collect:
		for len(batch) < maxRecordBatch {
			select {
			case r, ok := <-recs:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			case <-window.C:
				break collect
			}
		}
		window.Stop()
		b.writeBatch(batch)
		clear(batch)
	}
}

// writeBatch writes records concurrently and waits for them: the store
// groups concurrent synced commits behind one fsync.
func (b *B2BUA) writeBatch(recs []*routing.CallRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Go(func() {
			if err := b.opts.Router.RecordCall(ctx, rec); err != nil {
				b.log.Error("recording call", "call", rec.ID, "error", err)
			}
		})
	}
	wg.Wait()
}

// detach is called by Server.Close once every call handler has returned:
// abandoned INVITEs still waiting for their final response are given up.
func (b *B2BUA) detach() {
	b.bgCancel()
	b.bg.Wait()
	b.recMu.Lock()
	recs := b.recs
	b.recs = nil
	b.recMu.Unlock()
	if recs != nil {
		close(recs)
		<-b.recsDone
	}
	b.records.Wait()
	if b.client != nil {
		_ = b.client.Close()
	}
}

// HandleInvite runs one call from its INVITE to its end.
func (b *B2BUA) HandleInvite(ctx context.Context, in *InboundCall) {
	c := newCall(b, in)
	c.run(ctx)
}

// handleInDialog routes a request within an existing dialog to its call,
// if it comes from the leg's carrier. It reports inDialogUnknown when no
// call has the dialog (the server answers 481) and inDialogForbidden when
// the source may not act on the leg (403: the call is left alone).
func (b *B2BUA) handleInDialog(req *sipmsg.Request, tx sipmsg.ServerTransaction) int {
	key := requestDialogKey(req)
	if key == "" {
		return inDialogUnknown
	}
	v, ok := b.dialogs.Load(key)
	if !ok {
		return inDialogUnknown
	}
	ref := v.(*legRef)
	if !ref.allows(req.Source()) {
		b.log.Warn("in-dialog request from a source other than the leg's carrier refused",
			"method", string(req.Method), "leg", ref.leg.String(), "src", req.Source())
		return inDialogForbidden
	}
	if !ref.c.deliver(ref.leg, req, tx) {
		return inDialogUnknown
	}
	return inDialogDelivered
}

func (b *B2BUA) register(key string, ref *legRef) { b.dialogs.Store(key, ref) }
func (b *B2BUA) unregister(key string)            { b.dialogs.Delete(key) }

// noBuild is the client request option that sends a request as Veil built
// it: sipgo adds no header of its own.
func noBuild(*sipgo.Client, *sipmsg.Request) error { return nil }

// reasonPhrase is the reason phrase Veil sends with a status code; the
// peer's own phrase is never forwarded (it is free text from the other
// leg).
func reasonPhrase(code int) string {
	switch code {
	case 180:
		return "Ringing"
	case 181:
		return "Call Is Being Forwarded"
	case 182:
		return "Queued"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 410:
		return "Gone"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 483:
		return "Too Many Hops"
	case 484:
		return "Address Incomplete"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 491:
		return "Request Pending"
	case 500:
		return "Server Internal Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	case 604:
		return "Does Not Exist Anywhere"
	case 606:
		return "Not Acceptable"
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirection"
	case code < 500:
		return "Request Failure"
	case code < 600:
		return "Server Failure"
	}
	return "Global Failure"
}

// failsOver reports whether an outbound attempt's final response moves the
// call to the next carrier of the route instead of ending it: the carrier
// could not take the call (5xx, 408), redirected it (Veil does not follow
// redirects: the target would come from the other leg) or wants
// credentials Veil does not have.
func failsOver(code int) bool {
	switch {
	case code >= 500 && code < 600:
		return true
	case code >= 300 && code < 400:
		return true
	case code == 408, code == 401, code == 407:
		return true
	}
	return false
}
