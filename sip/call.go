package sip

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/veilgw/veil/media"
	"github.com/veilgw/veil/routing"
)

// End reasons of a call record.
const (
	endCallerHangup = "caller_hangup"
	endCalleeHangup = "callee_hangup"
	endCallerCancel = "caller_cancel"
	endRejected     = "rejected"       // the callee's side answered a final error
	endNoRoute      = "failed"         // every carrier failed or none could be tried
	endOutOfSession = "out_of_session" // no session: 404
	endMediaTimeout = "media_timeout"
	endMaxDuration  = "max_duration"
	endNoAck        = "no_ack"
	endShutdown     = "shutdown"
	endBadSDP       = "bad_sdp"
	endNoMedia      = "no_media_ports"
)

// Timers of the call flow (RFC 3261 §17.1.1.1, §13.3.1.4).
const (
	t1        = 500 * time.Millisecond
	t2        = 4 * time.Second
	timerB    = 64 * t1 // how long Veil waits for any final response
	byeWait   = 8 * time.Second
	eventsCap = 8
)

// inEvent is a request the peer of one leg sent within the call's dialog,
// handed over by the server's goroutine for it. done is closed once the
// call has sent the final response (nil for ACK, which has none).
type inEvent struct {
	leg  media.Leg
	req  *sipmsg.Request
	tx   sipmsg.ServerTransaction
	done chan struct{}
}

// call is one bridged call. Everything but events and finished belongs to
// the goroutine running run.
type call struct {
	b   *B2BUA
	in  *InboundCall
	log *slog.Logger
	id  string

	events   chan inEvent
	finished chan struct{} // closed when run returns

	started time.Time
	rec     routing.CallRecord
	bridge  Bridge
	legA    *dialog
	legB    *dialog
	keys    []string // registered dialog keys

	// out is the outbound INVITE being tried.
	out *outInvite
	// answerA is the SDP last sent to A in an answer (18x or 200).
	answerA []byte
}

// outInvite is one outbound INVITE attempt.
type outInvite struct {
	carrier outCarrier
	req     *sipmsg.Request
	tx      sipmsg.ClientTransaction
	dlg     *dialog
	ringing bool // a provisional other than 100 arrived
	early   []byte
}

func newCall(b *B2BUA, in *InboundCall) *call {
	id := "CA" + sipmsg.GenerateTagN(24)
	c := &call{
		b:        b,
		in:       in,
		id:       id,
		log:      b.log.With("call", id, "carrier", in.Carrier),
		events:   make(chan inEvent, eventsCap),
		finished: make(chan struct{}),
		started:  b.opts.Now(),
	}
	c.rec = routing.CallRecord{
		ID:        id,
		Proxy:     in.Dialled,
		From:      in.Caller,
		StartedAt: c.started,
		Attempts:  []routing.CallAttempt{},
	}
	return c
}

// deliver hands an in-dialog request to the call's goroutine and, unless
// it is an ACK, waits until the call has answered it. It reports false
// when the call is over (the server then answers 481).
func (c *call) deliver(leg media.Leg, req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	ev := inEvent{leg: leg, req: req, tx: tx}
	if !req.IsAck() {
		ev.done = make(chan struct{})
	}
	select {
	case c.events <- ev:
	case <-c.finished:
		return false
	}
	if ev.done != nil {
		select {
		case <-ev.done:
		case <-c.finished:
			// run answers every event it took before returning; one
			// still queued is answered by the server (481).
			select {
			case <-ev.done:
			default:
				return false
			}
		}
	}
	return true
}

// run is the call: resolve, bridge, outbound attempts, the answered call,
// then the record.
func (c *call) run(ctx context.Context) {
	defer c.cleanup()
	if m := c.b.opts.Metrics; m != nil {
		m.active.Inc()
		defer m.active.Dec()
	}

	dec, err := c.b.opts.Router.ResolveCall(ctx, c.in.Caller, c.in.Dialled)
	callee, carriers := dec.Callee, dec.Carriers
	var rerr *routing.ResolveError
	switch {
	case err == nil:
		c.rec.SessionID = dec.SessionID
	case errors.As(err, &rerr) && rerr.Fallback != "":
		// Out of session with a fallback: forward there, still shown
		// the proxy number, never the caller's.
		c.rec.SessionID = rerr.SessionID
		c.rec.Fallback = true
		callee = rerr.Fallback
		carriers = c.b.opts.Router.CarriersFor(callee, c.in.Dialled)
		c.log.Info("call out of session: forwarding to fallback", "reason", rerr.Reason)
	case errors.As(err, &rerr):
		c.log.Info("call refused", "status", 404, "reason", rerr.Reason)
		c.rec.SessionID = rerr.SessionID
		c.finishEarly(404, endOutOfSession)
		return
	default:
		c.log.Error("resolving call", "error", err)
		c.finishEarly(500, endNoRoute)
		return
	}
	c.rec.To = callee

	if mf := c.in.req.MaxForwards(); mf != nil && mf.Val() == 0 {
		// A loop through Veil (a route that leads back to it) ends here
		// (RFC 3261 §16.3 item 3, kept by Veil as a B2BUA).
		c.log.Warn("call refused: Max-Forwards exhausted (a routing loop?)", "status", 483)
		c.finishEarly(483, endNoRoute)
		return
	}
	offer := c.in.req.Body()
	if len(offer) == 0 {
		// Delayed offer (an INVITE without SDP) is not supported: the
		// outbound leg would need the offer from its 200 and the answer
		// from the caller's ACK.
		c.log.Info("call refused: INVITE without SDP offer", "status", 488)
		c.finishEarly(488, endBadSDP)
		return
	}
	bridge, err := c.b.opts.Media.NewBridge()
	if err != nil {
		c.log.Error("media bridge", "error", err)
		c.finishEarly(503, endNoMedia)
		return
	}
	c.bridge = bridge
	// Media latches only from the caller's carrier (or the SDP address).
	bridge.SetAllowed(media.LegA, c.b.allowedSources(media.LegA, c.in.Carrier))
	offerB, err := bridge.Offer(media.LegA, offer)
	if err != nil {
		code, reason := 488, endBadSDP
		if !errors.Is(err, media.ErrBadSDP) {
			code, reason = 503, endNoMedia
		}
		c.log.Info("call refused: offer", "status", code, "error", err)
		c.finishEarly(code, reason)
		return
	}

	c.legA = c.inboundDialog()
	c.registerLeg(c.legA, media.LegA, c.in.Carrier)

	answered := false
	for _, name := range carriers {
		car, ok := c.b.carriers[name]
		if !ok {
			c.rec.Attempts = append(c.rec.Attempts, routing.CallAttempt{Carrier: name, Reason: "no_sip_carrier"})
			continue
		}
		var next bool
		answered, next = c.attempt(ctx, car, callee, dec.CallerID, offerB)
		if answered || !next {
			break
		}
	}
	if !answered {
		if c.rec.Status == 0 {
			c.log.Info("call failed: no carrier answered", "status", 503)
			c.finishEarly(503, endNoRoute)
		}
		return
	}
	c.bridged(ctx)
}

// proxyNumber is the caller ID shown to the callee: the decision's, else
// the number dialled.
func (c *call) callerID(dec string) string {
	if dec != "" {
		return dec
	}
	return c.in.Dialled
}

// finishEarly answers the caller with a final error and ends the call.
func (c *call) finishEarly(code int, reason string) {
	if err := c.in.Respond(code, reasonPhrase(code)); err != nil {
		c.log.Debug("responding to caller", "status", code, "error", err)
	}
	c.rec.Status = code
	c.rec.EndReason = reason
}

// inboundDialog is the caller's leg as a dialog Veil can send requests in.
func (c *call) inboundDialog() *dialog {
	req := c.in.req
	d := &dialog{
		callID:   req.CallID().Value(),
		localTag: c.in.toTag,
		localSeq: 1,
		via:      c.b.srv.origin(req.Transport()),
		contact:  c.b.srv.contactURI(c.in.Dialled, req.Transport()),
	}
	if f := req.From(); f != nil {
		d.remoteURI, d.remoteTag = f.Address, tagOf(f.Params)
	}
	if t := req.To(); t != nil {
		d.localURI = t.Address
	}
	if cs := req.CSeq(); cs != nil {
		d.remoteSeq = cs.SeqNo
	}
	if u := contactOf(req); u != nil {
		d.target = *u
	} else {
		d.target = d.remoteURI
	}
	d.routes = recordRoutes(req) // UAS: in order (RFC 3261 §12.1.1)
	if req.Transport() != "UDP" {
		d.dest = c.in.Source.String()
	}
	return d
}

// registerLeg makes d's in-dialog requests reach the call, from carrier's
// sources only.
func (c *call) registerLeg(d *dialog, leg media.Leg, carrier string) {
	key := dialogKey(d.callID, d.localTag)
	c.b.register(key, &legRef{c: c, leg: leg, allow: c.b.allowedSources(leg, carrier)})
	c.keys = append(c.keys, key)
}

// attempt places the outbound INVITE through one carrier and waits for
// its outcome. answered: the callee answered and the caller has the 200.
// next: the attempt failed over (5xx, 408, ring timeout...) and the next
// carrier should be tried. Neither: the call ended (the caller has its
// final response).
func (c *call) attempt(ctx context.Context, car outCarrier, callee, callerID string, offerB []byte) (answered, next bool) {
	o, err := c.invite(ctx, car, callee, c.callerID(callerID), offerB)
	att := routing.CallAttempt{Carrier: car.name}
	if err != nil {
		c.log.Warn("outbound INVITE failed", "to_carrier", car.name, "error", err)
		att.Reason = "send_failed"
		c.rec.Attempts = append(c.rec.Attempts, att)
		return false, true
	}
	c.out = o
	ring := time.NewTimer(c.b.opts.RingTimeout)
	defer ring.Stop()
	for {
		select {
		case res := <-o.tx.Responses():
			code := res.StatusCode
			switch {
			case code == 100:
				continue
			case code < 200:
				c.provisional(o, res)
				continue
			case code < 300:
				att.Status = code
				c.rec.Attempts = append(c.rec.Attempts, att)
				c.out = nil // answered: nothing to cancel any more
				return c.answer(o, res), false
			}
			att.Status = code
			c.rec.Attempts = append(c.rec.Attempts, att)
			c.out = nil
			if failsOver(code) {
				c.log.Info("outbound attempt failed over", "to_carrier", car.name, "status", code)
				return false, true
			}
			c.log.Info("call rejected by callee side", "to_carrier", car.name, "status", code)
			c.finishEarly(code, endRejected)
			return false, false
		case <-o.tx.Done():
			att.Reason = "no_response"
			c.rec.Attempts = append(c.rec.Attempts, att)
			c.out = nil
			c.log.Info("outbound attempt got no answer", "to_carrier", car.name, "error", o.tx.Err())
			return false, true
		case <-ring.C:
			att.Reason = "ring_timeout"
			c.rec.Attempts = append(c.rec.Attempts, att)
			c.abandon(o)
			c.log.Info("outbound attempt ring timeout", "to_carrier", car.name)
			return false, true
		case <-c.in.Cancelled():
			att.Reason = "caller_cancel"
			c.rec.Attempts = append(c.rec.Attempts, att)
			c.abandon(o)
			c.rec.Status = 487
			c.rec.EndReason = endCallerCancel
			return false, false
		case ev := <-c.events:
			c.earlyEvent(ev)
		case <-ctx.Done():
			att.Reason = "shutdown"
			c.rec.Attempts = append(c.rec.Attempts, att)
			c.abandon(o)
			c.finishEarly(503, endShutdown)
			return false, false
		}
	}
}

// invite builds and sends the outbound INVITE: every header is Veil's.
func (c *call) invite(ctx context.Context, car outCarrier, callee, callerID string, sdp []byte) (*outInvite, error) {
	ruri, err := sipURI(FormatNumber(callee, car.format), car.address, car.transport)
	if err != nil {
		return nil, err
	}
	via := c.b.srv.origin(car.transport)
	d := &dialog{
		callID:    sipmsg.GenerateTagN(32),
		localTag:  sipmsg.GenerateTagN(16),
		localURI:  sipmsg.Uri{Scheme: "sip", User: FormatNumber(callerID, car.format), Host: via.host},
		remoteURI: sipmsg.Uri{Scheme: "sip", User: ruri.User, Host: ruri.Host, Port: ruri.Port},
		target:    ruri,
		via:       via,
		contact:   c.b.srv.contactURI(FormatNumber(callerID, car.format), car.transport),
	}
	req := d.request(sipmsg.INVITE, 0, sdp)
	if in, out := c.in.req.MaxForwards(), req.MaxForwards(); in != nil && out != nil && in.Val() <= 70 {
		*out = sipmsg.MaxForwardsHeader(in.Val() - 1) // the hop count only, for loop detection
	}
	pai := &sipmsg.FromHeader{Address: d.localURI}
	req.AppendHeader(sipmsg.NewHeader("P-Asserted-Identity", pai.Value()))
	req.AppendHeader(sipmsg.NewHeader("Allow", allowedMethods))
	c.registerLeg(d, media.LegB, car.name)
	// Media latches only from this carrier (or the SDP address).
	c.bridge.SetAllowed(media.LegB, c.b.allowedSources(media.LegB, car.name))
	tx, err := c.b.client.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return nil, err
	}
	return &outInvite{carrier: car, req: req, tx: tx, dlg: d}, nil
}

// provisional bridges a 18x to the caller, with the early-media answer
// rewritten when it carries SDP.
func (c *call) provisional(o *outInvite, res *sipmsg.Response) {
	if !o.ringing {
		o.ringing = true
		c.observePDD()
	}
	code := res.StatusCode
	var body []byte
	if len(res.Body()) > 0 {
		ans, err := c.bridge.Answer(media.LegB, res.Body())
		if err != nil {
			c.log.Info("early media SDP refused", "error", err)
		} else {
			body, o.early = ans, res.Body()
		}
	}
	if code == 183 && body == nil {
		code = 180
	}
	if body != nil {
		c.answerA = body
	}
	if err := c.in.respondContact(code, reasonPhrase(code), body, c.legA.contact); err != nil {
		c.log.Debug("bridging provisional", "status", code, "error", err)
	}
}

// observePDD records the post-dial delay: from the INVITE to the first
// sign of life of the callee's side (ringing or answer).
func (c *call) observePDD() {
	if c.rec.PostDialDelayMS != 0 {
		return
	}
	d := c.b.opts.Now().Sub(c.started)
	c.rec.PostDialDelayMS = max(d.Milliseconds(), 1)
	if m := c.b.opts.Metrics; m != nil {
		m.pdd.Observe(d.Seconds())
	}
}

// earlyEvent answers an in-dialog request that arrives before the call is
// answered: only the caller's leg has a dialog then, and Veil does not
// take offers before the answer.
func (c *call) earlyEvent(ev inEvent) {
	switch ev.req.Method {
	case sipmsg.ACK:
	case sipmsg.BYE:
		// A BYE in an early dialog: the caller gave up (RFC 3261 §15).
		c.respondEvent(ev, 481)
	case sipmsg.INFO, sipmsg.PRACK:
		// The dialog lives: not 481, which would end it for the peer.
		c.respondEvent(ev, 405)
	default:
		c.respondEvent(ev, 491)
	}
}

// answer completes an answered attempt: ACK the callee, answer the
// caller. It reports whether the call is now up.
func (c *call) answer(o *outInvite, res *sipmsg.Response) bool {
	c.observePDD()
	d := o.dlg
	d.remoteTag = tagOf(res.To().Params)
	if u := contactOf(res); u != nil {
		d.target = *u
	}
	d.routes = reversed(recordRoutes(res)) // UAC: reversed (RFC 3261 §12.1.2)
	// The callee's dialog is confirmed from here on, whatever becomes of
	// the call: every way out below must hang it up (bye needs legB).
	c.legB = d
	ack := d.request(sipmsg.ACK, o.req.CSeq().SeqNo, nil)
	if err := c.b.client.WriteRequest(ack, noBuild); err != nil {
		c.log.Warn("ACK to callee failed", "error", err)
	}
	// A retransmitted 200 means the ACK was lost: send it again. The
	// transaction outlives the call (RFC 6026 Timer M), so the callback
	// holds the client and the ACK, never the call: a call object kept
	// for Timer M after every call would keep its bridge, relay and
	// messages on the heap (about 10 KB a call: 0.4 GB at 1,500 calls a
	// second with sipgo's default of 32 s).
	client := c.b.client
	o.tx.OnRetransmission(func(r *sipmsg.Response) {
		if r.StatusCode >= 200 && r.StatusCode < 300 {
			_ = client.WriteRequest(ack.Clone(), noBuild)
		}
	})

	body := c.answerA
	if len(res.Body()) > 0 {
		ans, err := c.bridge.Answer(media.LegB, res.Body())
		if err != nil {
			c.log.Info("answer SDP refused", "error", err)
			body = nil
		} else {
			body = ans
		}
	}
	if body == nil {
		c.log.Warn("callee answered without a usable SDP answer: hanging up")
		c.bye(media.LegB)
		c.finishEarly(502, endBadSDP)
		return false
	}
	c.answerA = body
	if err := c.in.respondContact(200, "OK", body, c.legA.contact); err != nil {
		c.log.Warn("answering caller failed", "error", err)
		c.bye(media.LegB)
		c.rec.Status = 500
		c.rec.EndReason = endNoAck
		return false
	}
	c.rec.Status = 200
	now := c.b.opts.Now()
	c.rec.AnsweredAt = &now
	return true
}

// bridged runs the answered call until one side hangs up or a limit ends
// it.
func (c *call) bridged(ctx context.Context) {
	c.bridge.Arm()
	maxDur := time.NewTimer(c.b.opts.MaxCallDuration)
	defer maxDur.Stop()

	// The 2xx to the caller is retransmitted until its ACK (RFC 3261
	// §13.3.1.4) on an unreliable transport.
	acked := false
	var retrans <-chan time.Time
	interval := t1
	var retransTimer *time.Timer
	if c.in.req.Transport() == "UDP" {
		retransTimer = time.NewTimer(interval)
		defer retransTimer.Stop()
		retrans = retransTimer.C
	}
	ackDeadline := time.NewTimer(timerB)
	defer ackDeadline.Stop()

	var pend *pending
	defer func() {
		if pend != nil {
			pend.fail(c, 487)
		}
	}()
	for {
		var pendRes <-chan *sipmsg.Response
		var pendDone <-chan struct{}
		if pend != nil {
			pendRes, pendDone = pend.out.Responses(), pend.out.Done()
		}
		select {
		case ev := <-c.events:
			if ev.leg == media.LegA && ev.req.IsAck() && !acked {
				acked = true
				retrans = nil
				ackDeadline.Stop()
				continue
			}
			if end := c.confirmedEvent(ev, &pend); end != "" {
				c.end(end)
				return
			}
		case <-c.in.tx.Acks():
			if !acked {
				acked = true
				retrans = nil
				ackDeadline.Stop()
			}
		case <-retrans:
			_ = c.in.retransmitFinal()
			interval = min(interval*2, t2)
			retransTimer.Reset(interval)
		case <-ackDeadline.C:
			if !acked {
				c.log.Warn("caller never acknowledged the answer: hanging up")
				c.end(endNoAck)
				return
			}
		case res := <-pendRes:
			if pend.response(c, res) {
				pend = nil
			}
		case <-pendDone:
			pend.fail(c, 408)
			pend = nil
		case <-c.bridge.Done():
			c.log.Info("media timeout: hanging up", "error", c.bridge.Err())
			c.end(endMediaTimeout)
			return
		case <-maxDur.C:
			c.log.Info("maximum call duration reached: hanging up")
			c.end(endMaxDuration)
			return
		case <-ctx.Done():
			c.end(endShutdown)
			return
		}
	}
}

// end hangs up both legs (a leg whose BYE started the end is already
// answered and gone) and records why.
func (c *call) end(reason string) {
	switch reason {
	case endCallerHangup:
		c.bye(media.LegB)
	case endCalleeHangup:
		c.bye(media.LegA)
	default:
		c.bye(media.LegA)
		c.bye(media.LegB)
	}
	c.rec.EndReason = reason
}

// confirmedEvent handles a request within the answered call. It returns
// an end reason when the request ends the call.
func (c *call) confirmedEvent(ev inEvent, pend **pending) string {
	d := c.dialogOf(ev.leg)
	if ev.req.IsAck() {
		return "" // ACK of a bridged re-INVITE's 2xx, or a retransmission
	}
	if d == nil || !d.acceptRequest(ev.req) {
		c.respondEvent(ev, 500)
		return ""
	}
	switch ev.req.Method {
	case sipmsg.BYE:
		c.respondEvent(ev, 200)
		if ev.leg == media.LegA {
			return endCallerHangup
		}
		return endCalleeHangup
	case sipmsg.INVITE, sipmsg.UPDATE:
		if *pend != nil {
			c.respondEvent(ev, 491) // glare (RFC 3261 §14.2)
			return ""
		}
		*pend = c.reoffer(ev)
	case sipmsg.OPTIONS:
		c.respondEvent(ev, 200)
	case sipmsg.INFO, sipmsg.PRACK:
		// Not relayed; the dialog lives on (a 481 would end it for the
		// peer).
		c.respondEvent(ev, 405)
	default:
		c.respondEvent(ev, 501)
	}
	return ""
}

// dialogOf returns the dialog of a leg.
func (c *call) dialogOf(leg media.Leg) *dialog {
	if leg == media.LegA {
		return c.legA
	}
	return c.legB
}

func otherLeg(leg media.Leg) media.Leg {
	if leg == media.LegA {
		return media.LegB
	}
	return media.LegA
}

// pending is a re-INVITE or UPDATE received on one leg and bridged to the
// other, waiting for the other leg's final response.
type pending struct {
	ev  inEvent
	out sipmsg.ClientTransaction
	req *sipmsg.Request
}

// reoffer bridges a re-INVITE or UPDATE (hold, resume, a new address) to
// the other leg with its SDP rewritten. A request without SDP (a session
// refresh) is answered at once with the SDP last sent on its leg.
func (c *call) reoffer(ev inEvent) *pending {
	from := ev.leg
	d := c.dialogOf(from)
	d.updateTarget(ev.req)
	if len(ev.req.Body()) == 0 {
		c.respondEventBody(ev, 200, c.lastSentTo(from))
		return nil
	}
	offer, err := c.bridge.Offer(from, ev.req.Body())
	if err != nil {
		c.log.Info("re-offer refused", "method", string(ev.req.Method), "error", err)
		c.respondEvent(ev, 488)
		return nil
	}
	to := c.dialogOf(otherLeg(from))
	req := to.request(ev.req.Method, 0, offer)
	tx, err := c.b.client.TransactionRequest(context.Background(), req, noBuild)
	if err != nil {
		c.log.Warn("bridging re-offer failed", "error", err)
		c.respondEvent(ev, 500)
		return nil
	}
	return &pending{ev: ev, out: tx, req: req}
}

// lastSentTo is the SDP Veil last sent on a leg.
func (c *call) lastSentTo(leg media.Leg) []byte {
	if leg == media.LegA {
		return c.answerA
	}
	return nil
}

// response handles the other leg's response to a bridged re-offer; it
// reports true when the exchange is over.
func (p *pending) response(c *call, res *sipmsg.Response) bool {
	code := res.StatusCode
	if code < 200 {
		return false
	}
	to := otherLeg(p.ev.leg)
	if code >= 300 {
		p.fail(c, code)
		return true
	}
	d := c.dialogOf(to)
	d.updateTarget(res)
	if p.req.Method == sipmsg.INVITE {
		ack := d.request(sipmsg.ACK, p.req.CSeq().SeqNo, nil)
		if err := c.b.client.WriteRequest(ack, noBuild); err != nil {
			c.log.Warn("ACK of re-INVITE failed", "error", err)
		}
	}
	ans, err := c.bridge.Answer(to, res.Body())
	if err != nil {
		c.log.Info("re-offer answer refused", "error", err)
		p.fail(c, 488)
		return true
	}
	if p.ev.leg == media.LegA {
		c.answerA = ans
	}
	c.respondEventBody(p.ev, 200, ans)
	return true
}

// fail answers the re-offer's sender with an error.
func (p *pending) fail(c *call, code int) {
	c.respondEvent(p.ev, code)
}

// respondEvent answers an in-dialog request without a body.
func (c *call) respondEvent(ev inEvent, code int) {
	c.respondEventBody(ev, code, nil)
}

// respondEventBody answers an in-dialog request; a 2xx to INVITE or
// UPDATE carries Veil's Contact and SDP.
func (c *call) respondEventBody(ev inEvent, code int, body []byte) {
	defer func() {
		if ev.done != nil {
			close(ev.done)
		}
	}()
	res := sipmsg.NewResponseFromRequest(ev.req, code, reasonPhrase(code), body)
	if code == 405 {
		res.AppendHeader(sipmsg.NewHeader("Allow", allowedMethods)) // RFC 3261 §21.4.6
	}
	if code >= 200 && code < 300 && (ev.req.IsInvite() || ev.req.Method == sipmsg.UPDATE) {
		if d := c.dialogOf(ev.leg); d != nil {
			res.AppendHeader(&sipmsg.ContactHeader{Address: d.contact})
		}
		if body != nil {
			res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		}
	}
	if err := ev.tx.Respond(res); err != nil {
		c.log.Debug("responding in dialog", "status", code, "error", err)
	}
}

// bye ends one leg's dialog with BYE and waits (bounded) for its answer.
func (c *call) bye(leg media.Leg) {
	d := c.dialogOf(leg)
	if d == nil {
		return
	}
	req := d.request(sipmsg.BYE, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), byeWait)
	defer cancel()
	tx, err := c.b.client.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		c.log.Warn("BYE failed", "leg", leg.String(), "error", err)
		return
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode >= 200 {
				return
			}
		case ev := <-c.events:
			// The peer's own BYE crossed ours, or anything else: answer
			// it so its sender is not left waiting.
			if ev.req.Method == sipmsg.BYE {
				c.respondEvent(ev, 200)
			} else if !ev.req.IsAck() {
				c.respondEvent(ev, 481)
			}
		case <-tx.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}

// abandon cancels an outbound INVITE that will not be bridged and, in the
// background, waits for its final response: a 200 that crossed the
// CANCEL is acknowledged and hung up at once (RFC 3261 §9.1, §15).
func (c *call) abandon(o *outInvite) {
	c.out = nil
	b, log := c.b, c.log
	cancelReq := newCancel(o.req)
	b.bg.Go(func() {
		defer o.tx.Terminate()
		ctx, cancel := context.WithTimeout(b.bgCtx, timerB)
		defer cancel()
		// The CANCEL's own 200 is of no interest; its transaction lives
		// until the INVITE's outcome is known.
		if tx, err := b.client.TransactionRequest(ctx, cancelReq, noBuild); err != nil {
			log.Debug("CANCEL failed", "error", err)
		} else {
			defer tx.Terminate()
		}
		for {
			select {
			case res := <-o.tx.Responses():
				if res.StatusCode < 200 {
					continue
				}
				if res.StatusCode < 300 {
					log.Info("answer crossed CANCEL: acknowledging and hanging up")
					hangUpCrossed(ctx, b, o, res)
				}
				return
			case <-o.tx.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	})
}

// hangUpCrossed acknowledges a 200 that arrived for an abandoned INVITE
// and ends that dialog with BYE.
func hangUpCrossed(ctx context.Context, b *B2BUA, o *outInvite, res *sipmsg.Response) {
	d := o.dlg
	d.remoteTag = tagOf(res.To().Params)
	if u := contactOf(res); u != nil {
		d.target = *u
	}
	d.routes = reversed(recordRoutes(res))
	_ = b.client.WriteRequest(d.request(sipmsg.ACK, o.req.CSeq().SeqNo, nil), noBuild)
	tx, err := b.client.TransactionRequest(ctx, d.request(sipmsg.BYE, 0, nil), noBuild)
	if err != nil {
		return
	}
	defer tx.Terminate()
	select {
	case <-tx.Responses():
	case <-tx.Done():
	case <-ctx.Done():
	}
}

// newCancel builds the CANCEL of an INVITE (RFC 3261 §9.1): the same
// Request-URI, top Via, From, To, Call-ID and CSeq number, and Route.
func newCancel(inv *sipmsg.Request) *sipmsg.Request {
	req := sipmsg.NewRequest(sipmsg.CANCEL, inv.Recipient)
	if v := inv.Via(); v != nil {
		req.AppendHeader(v.Clone())
	}
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sipmsg.HeaderClone(h))
	}
	mf := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := inv.GetHeader(name); h != nil {
			req.AppendHeader(sipmsg.HeaderClone(h))
		}
	}
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipmsg.CANCEL})
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	inv.Laddr.Copy(&req.Laddr)
	if d := inv.Destination(); d != "" {
		req.SetDestination(d)
	}
	return req
}

func reversed(u []sipmsg.Uri) []sipmsg.Uri {
	slices.Reverse(u)
	return u
}

// cleanup runs when the call ends: media closed, dialogs forgotten, the
// record written.
func (c *call) cleanup() {
	close(c.finished)
	// Answer what was queued: the senders wait for it.
	for {
		select {
		case ev := <-c.events:
			if !ev.req.IsAck() {
				c.respondEvent(ev, 481)
			}
			continue
		default:
		}
		break
	}
	for _, k := range c.keys {
		c.b.unregister(k)
	}
	if c.out != nil {
		c.abandon(c.out)
	}
	now := c.b.opts.Now()
	c.rec.EndedAt = now
	if c.rec.AnsweredAt != nil {
		c.rec.DurationMS = now.Sub(*c.rec.AnsweredAt).Milliseconds()
	}
	if c.bridge != nil {
		st := c.bridge.Stats()
		_ = c.bridge.Close()
		c.rec.Media = &routing.CallMedia{
			CallerToCallee: mediaDirection(st.AToB),
			CalleeToCaller: mediaDirection(st.BToA),
		}
	}
	if c.rec.EndReason == "" {
		c.rec.EndReason = endNoRoute
	}
	if m := c.b.opts.Metrics; m != nil {
		m.calls.WithLabelValues(c.rec.EndReason).Inc()
	}
	c.log.Info("call ended", "status", c.rec.Status, "reason", c.rec.EndReason, "duration_ms", c.rec.DurationMS)
	// The record's synced write takes a disk flush; the call's slot (and
	// its handler goroutine) is not held for it: the record writer
	// batches it with others (see recordBatchWindow). Server.Close waits
	// for these writes (detach).
	rec, router, log := c.rec, c.b.opts.Router, c.log
	if c.b.queueRecord(&rec) {
		return
	}
	c.b.records.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := router.RecordCall(ctx, &rec); err != nil {
			log.Error("recording call", "error", err)
		}
	})
}

func mediaDirection(d media.DirectionStats) routing.MediaDirection {
	return routing.MediaDirection{Packets: d.Packets, Bytes: d.Bytes, Lost: d.Lost, Jitter: d.Jitter}
}
