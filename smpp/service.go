package smpp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// Options configure a Service.
type Options struct {
	// DB holds the queue, the receipt index and (through Routing) the
	// message records. Required.
	DB *store.DB
	// Routing resolves inbound messages and routes outbound ones. Required.
	Routing *routing.Service
	// Carriers: those with an smpp section get a bind.
	Carriers []configs.Carrier
	// SMS is the sms section (defaults applied).
	SMS configs.SMS
	// Registry receives the metrics; nil means none are exported.
	Registry prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is Veil's SMS adapter: a bind per carrier, a durable outbound
// queue, inbound reassembly and relay, receipt correlation.
//
// Every state change goes through one committer goroutine, which owns the
// in-memory state of messages in flight, applies changes in batches and
// syncs each batch once: an inbound PDU is answered, a queued message
// acknowledged, a submit's window slot freed, only after its batch is on
// disk (store, then acknowledge).
type Service struct {
	opts    Options
	log     *slog.Logger
	db      *store.DB
	rt      *routing.Service
	now     func() time.Time
	senders map[string]bool
	binds   map[string]*bind
	order   []string
	metrics *metrics

	// ref numbers concatenated messages: a counter, so that two long
	// messages to one handset never share a reference until 256 others
	// (8-bit references) went out in between. Random references did
	// (two in a few dozen often enough to garble a thread).
	ref atomic.Uint32

	ops chan *op
	// closeMu orders closing against submitOp: once closed is set under
	// the write lock, no op reaches ops, so the committer (stopped after
	// the binds) can drain it and nothing waits on a dead committer.
	closeMu sync.RWMutex
	closed  atomic.Bool
	wg      sync.WaitGroup

	// Owned by the committer goroutine.
	active  map[string]*outMsg     // outbound messages not final
	dlrIdx  map[string]string      // carrier/id form -> message id/part, recent
	dlrFIFO []string               // dlrIdx keys in insertion order
	held    map[string]heldReceipt // carrier/canonical id -> receipt
	groups  map[string]*moGroup    // inbound reassembly
	replied map[string]time.Time   // sender/proxy -> last auto-reply
	maxHeld int                    // cap on held, maxHeldReceipts
	// relayedGroups: inbound concatenated messages relayed whole in the
	// last reassembly timeout (group key -> when), to drop resent parts.
	relayedGroups map[string]time.Time
	final         map[string]*routing.MessageRecord // recently final, for late receipts
	// dlrSweepNext is the next dlrtime/ bucket sweepReceiptIndex reads,
	// once dlrSweepInit (see service_expiry.go).
	dlrSweepNext int64
	dlrSweepInit bool
}

// outMsg is an outbound message in flight: its queue row and its record.
type outMsg struct {
	q         queued
	rec       routing.MessageRecord
	cancelled atomic.Bool // a part failed for good: skip the rest
}

// queued is the smsq/ row of an outbound message: what the queue needs to
// (re)submit it. It holds the real destination; it is deleted once every
// part is accepted by the carrier.
type queued struct {
	V          int      `json:"v"`
	ID         string   `json:"id"`
	Carrier    string   `json:"carrier"`
	Src        string   `json:"src"`
	Dst        string   `json:"dst"`
	DataCoding byte     `json:"data_coding"`
	UDHI       bool     `json:"udhi,omitempty"`
	Payload    bool     `json:"payload,omitempty"`
	Parts      [][]byte `json:"parts"`
	Accepted   []bool   `json:"accepted"`
}

// heldReceipt is a receipt that arrived before its submit_sm_resp.
type heldReceipt struct {
	State State     `json:"state"`
	Stat  string    `json:"stat"`
	Err   string    `json:"err,omitempty"`
	At    time.Time `json:"at"`
	// Recv is when Veil received it; a receipt still unmatched
	// heldReceiptTTL later is dropped (its submit_sm_resp will not come:
	// the part was resubmitted, or the id is not Veil's).
	Recv time.Time `json:"recv"`
}

// heldReceiptTTL is how long a receipt waits for its submit_sm_resp.
const heldReceiptTTL = 10 * time.Minute

// op is one change for the committer: apply runs on the committer
// goroutine and adds writes to c; done runs after the batch is synced
// (err is the commit's error).
type op struct {
	apply func(c *commit)
	done  func(err error)
	// reply, when set, is the deliver_sm_resp answered on replyOn once
	// the batch is synced (after done): the replies of a batch are
	// queued, then each link flushed once.
	reply   *pdu.DeliverSMResp
	replyOn *link
	// frees, when set, is the bind whose window slot the op's part held
	// until its outcome is on disk: freed after the batch (after done),
	// all of a batch's at once, so the bind's next submits go out in one
	// burst rather than one per wake-up.
	frees *bind
}

// commit is one batch being built by the committer.
type commit struct {
	s       *Service
	b       *store.Batch
	touched map[string]*outMsg
	records []*routing.MessageRecord // other records to write
	after   []func()                 // run after a successful commit
}

func (c *commit) touch(m *outMsg) { c.touched[m.rec.ID] = m }

// New builds the service; Run starts it.
func New(opts Options) (*Service, error) {
	if opts.DB == nil || opts.Routing == nil {
		return nil, errors.New("smpp: DB and Routing are required")
	}
	s := &Service{
		opts: opts, log: opts.Logger, db: opts.DB, rt: opts.Routing, now: opts.Now,
		senders: make(map[string]bool), binds: make(map[string]*bind),
		ops:    make(chan *op, 4096),
		active: make(map[string]*outMsg), dlrIdx: make(map[string]string),
		held: make(map[string]heldReceipt), groups: make(map[string]*moGroup),
		replied:       make(map[string]time.Time),
		maxHeld:       maxHeldReceipts,
		relayedGroups: make(map[string]time.Time),
		final:         make(map[string]*routing.MessageRecord),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	s.ref.Store(binary.BigEndian.Uint32(seed[:]))
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.SMS.ReassemblyTimeout <= 0 {
		s.opts.SMS.ReassemblyTimeout = time.Minute
	}
	if s.opts.SMS.SubmitTimeout <= 0 {
		s.opts.SMS.SubmitTimeout = 30 * time.Second
	}
	if s.opts.SMS.RetryMax <= 0 {
		s.opts.SMS.RetryMax = 30 * time.Second
	}
	if s.opts.SMS.Validity <= 0 {
		s.opts.SMS.Validity = 24 * time.Hour
	}
	if s.opts.SMS.ReceiptWait <= 0 {
		s.opts.SMS.ReceiptWait = 72 * time.Hour
	}
	s.metrics = newMetrics(opts.Registry)
	for _, id := range opts.SMS.SenderIDs {
		s.senders[id] = true
	}
	for _, c := range opts.Carriers {
		if c.SMPP == nil {
			continue
		}
		cc := c
		smppCfg := *c.SMPP
		cc.SMPP = &smppCfg
		if cc.SMPP.Window <= 0 {
			cc.SMPP.Window = 10
		}
		if cc.SMPP.EnquireLink <= 0 {
			cc.SMPP.EnquireLink = 30 * time.Second
		}
		b, err := newBind(s, cc)
		if err != nil {
			return nil, err
		}
		s.binds[c.Name] = b
		s.order = append(s.order, c.Name)
	}
	return s, nil
}

// Binds reports every bind's state, in configuration order.
func (s *Service) Binds() []BindStatus {
	out := make([]BindStatus, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.binds[n].status())
	}
	return out
}

// Run resumes the queue from the store, starts the binds and the
// committer, and serves until ctx ends; then it unbinds, finishes the
// batch in progress and returns.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.resume(); err != nil {
		return err
	}
	committerDone := make(chan struct{})
	stopCommitter := make(chan struct{})
	go func() {
		defer close(committerDone)
		s.commitLoop(stopCommitter)
	}()
	for _, n := range s.order {
		b := s.binds[n]
		s.wg.Go(func() { b.run(ctx) })
	}
	<-ctx.Done()
	s.closeMu.Lock()
	s.closed.Store(true)
	s.closeMu.Unlock()
	// The binds stop first: their last responses still go through the
	// committer, which then finishes what is queued.
	s.wg.Wait()
	close(stopCommitter)
	<-committerDone
	return nil
}

// newID mints a message id: "SM", 12 hex digits of time, 16 random.
func newID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("SM%012x%016x", now.UnixMilli(), binary.BigEndian.Uint64(r[:]))
}

// submitFromBind hands the committer an op of a bind's reader (a
// response, a receipt, an inbound message). Unlike submitOp it is not
// refused once the service is closing: a stopping bind drains its
// responses through the committer, which Run stops only after every
// bind (and so every reader) has returned.
func (s *Service) submitFromBind(o *op) { s.ops <- o }

// submitOp hands an op to the committer; it fails once the service is
// closed.
func (s *Service) submitOp(o *op) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.ops <- o
	return nil
}

// Send queues an outbound message (POST /v1/messages) and returns its
// record once the queue row is on disk.
func (s *Service) Send(ctx context.Context, req SendRequest) (*routing.MessageRecord, error) {
	if _, err := routing.ParseE164(req.To); err != nil {
		return nil, ErrBadDestination
	}
	if req.Body == "" {
		return nil, ErrEmptyBody
	}
	if _, err := s.rt.GetNumber(req.To); err == nil {
		return nil, ErrDestinationIsProxy
	}
	if !s.senders[req.From] {
		if _, err := s.rt.GetNumber(req.From); err != nil {
			return nil, ErrBadSender
		}
	}
	m, err := s.newOut(req.From, req.To, req.Body, routing.MessageRecord{Origin: "api"})
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	// The record is copied on the committer: once the batch is on disk
	// the parts are dispatched, and their responses change m.rec there.
	var rec routing.MessageRecord
	o := &op{
		apply: func(c *commit) {
			c.s.startOut(c, m)
			rec = m.rec
			rec.Parts = append([]routing.MessagePart(nil), m.rec.Parts...)
		},
		done: func(err error) { done <- err },
	}
	if err := s.submitOp(o); err != nil {
		return nil, err
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("queueing message: %w", err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &rec, nil
}

// newOut encodes and routes an outbound message from src to dst. base
// carries the record's origin, session and relation.
func (s *Service) newOut(src, dst, body string, base routing.MessageRecord) (*outMsg, error) {
	carriers := s.rt.CarriersFor(dst, src)
	var carrier string
	for _, c := range carriers {
		if s.binds[c] != nil {
			carrier = c
			break
		}
	}
	if carrier == "" {
		return nil, ErrNoRoute
	}
	now := s.now()
	id := newID(now)
	q := queued{V: 1, ID: id, Carrier: carrier, Src: src, Dst: dst}
	if s.binds[carrier].cfg.MessagePayload {
		dc, payload, err := EncodePayload(body)
		if err != nil {
			return nil, err
		}
		q.DataCoding, q.Payload, q.Parts = dc, true, [][]byte{payload}
	} else {
		enc, err := Segment(body, uint16(s.ref.Add(1)), SegmentOptions{})
		if err != nil {
			return nil, err
		}
		q.DataCoding, q.UDHI, q.Parts = enc.DataCoding, enc.UDHI, enc.Parts
	}
	q.Accepted = make([]bool, len(q.Parts))
	rec := base
	rec.ID, rec.Direction, rec.Proxy = id, routing.DirectionOut, src
	rec.From, rec.To, rec.Carrier, rec.Body = src, dst, carrier, body
	rec.Encoding = "gsm7"
	if q.DataCoding == data.UCS2Coding {
		rec.Encoding = "ucs2"
	}
	rec.Status, rec.CreatedAt = routing.MsgQueued, now
	rec.Parts = make([]routing.MessagePart, len(q.Parts))
	for i := range rec.Parts {
		rec.Parts[i] = routing.MessagePart{Seq: i + 1, Status: routing.MsgQueued}
	}
	return &outMsg{q: q, rec: rec}, nil
}

// startOut (committer) adds a new outbound message to the batch and
// dispatches its parts once the batch is on disk.
func (s *Service) startOut(c *commit, m *outMsg) {
	s.active[m.rec.ID] = m
	c.touch(m)
	s.metrics.messages.WithLabelValues(routing.DirectionOut, routing.MsgQueued).Inc()
	c.after = append(c.after, func() { s.dispatch(m) })
}

// dispatch hands a message's unaccepted parts to its carrier's bind.
func (s *Service) dispatch(m *outMsg) {
	b := s.binds[m.q.Carrier]
	if b == nil {
		return
	}
	var jobs []*partJob
	for i, ok := range m.q.Accepted {
		if !ok {
			jobs = append(jobs, &partJob{m: m, idx: i})
		}
	}
	b.enqueue(false, jobs...)
}

// submitPDU builds the submit_sm of part i.
func (m *outMsg) submitPDU(i int) pdu.PDU {
	p := pdu.NewSubmitSM().(*pdu.SubmitSM)
	p.SourceAddr = address(m.q.Src)
	p.DestAddr = address(m.q.Dst)
	p.RegisteredDelivery = data.SM_SMSC_RECEIPT_REQUESTED
	enc := data.GSM7BIT
	if m.q.DataCoding == data.UCS2Coding {
		enc = data.UCS2
	}
	if m.q.Payload {
		_ = p.Message.SetMessageDataWithEncoding(nil, enc)
		p.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessagePayload, Data: m.q.Parts[i]})
	} else {
		_ = p.Message.SetMessageDataWithEncoding(m.q.Parts[i], enc)
		if m.q.UDHI {
			p.EsmClass |= data.SM_UDH_GSM
		}
	}
	return p
}

// address is an SMPP address: international E.164 without "+", or an
// alphanumeric sender id (TON 5).
func address(v string) pdu.Address {
	if strings.HasPrefix(v, "+") {
		a, _ := pdu.NewAddressWithTonNpiAddr(1, 1, v[1:])
		return a
	}
	a, _ := pdu.NewAddressWithTonNpiAddr(5, 0, v)
	return a
}

// submitted is called by a bind's reader for a submit_sm_resp (or a
// generic_nack) of job.
func (s *Service) submitted(b *bind, job *partJob, st data.CommandStatusType, carrierID string) {
	outcome := outcomeOf(st)
	label := outcomeName(outcome)
	if outcome == Accepted && strings.TrimSpace(carrierID) == "" {
		// Accepted without a message id: the SMSC has it, so it must not
		// be sent again; no receipt can be matched to it, so it stays
		// "sent".
		label = "accepted_without_id"
	}
	s.metrics.responses.WithLabelValues(b.name, label).Inc()
	switch outcome {
	case Retry:
		job.attempts++
		if st == data.ESME_RTHROTTLED || st == data.ESME_RMSGQFUL {
			// The SMSC is saturated: the bind pauses, and the part goes
			// first once it resumes.
			b.throttled(s.opts.SMS.RetryMax)
			b.enqueue(true, job)
			b.windowFreed()
			return
		}
		b.windowFreed()
		delay := min(100*time.Millisecond<<min(job.attempts, 12), s.opts.SMS.RetryMax)
		time.AfterFunc(delay, func() { b.enqueue(false, job) })
		return
	case Accepted:
		b.accepted()
	}
	o := &op{
		apply: func(c *commit) {
			if outcome == Accepted {
				c.s.accept(c, job, carrierID)
			} else {
				c.s.refuse(c, job, st)
			}
		},
		done:  func(error) {},
		frees: b,
	}
	s.submitFromBind(o)
}

func outcomeName(o Outcome) string {
	switch o {
	case Accepted:
		return "accepted"
	case Retry:
		return "retry"
	}
	return "failed"
}

// accept (committer): part job.idx has carrier id carrierID.
func (s *Service) accept(c *commit, job *partJob, carrierID string) {
	m := job.m
	if m.q.Accepted[job.idx] {
		return // a duplicate response (resubmitted after a timeout)
	}
	now := s.now()
	m.q.Accepted[job.idx] = true
	part := &m.rec.Parts[job.idx]
	part.CarrierID = strings.TrimSpace(carrierID)
	switch {
	case part.Status == routing.MsgQueued:
		part.Status = routing.MsgSent
	case part.Status == routing.MsgExpired && part.SubmittedAt == nil:
		// Given up at the end of sms.validity while its submit was in
		// flight, and accepted after all: it is on its way, its receipt
		// tells how it ends (the message stays expired unless that
		// receipt fails it).
		part.Status, part.Error, part.DoneAt = routing.MsgSent, "", nil
	}
	part.SubmittedAt = &now
	if forms := IDForms(part.CarrierID); len(forms) > 0 {
		canon := forms[0]
		val := m.rec.ID + "/" + strconv.Itoa(job.idx)
		c.b.Set(store.Key(store.PrefixDLR, m.q.Carrier, canon), []byte(val))
		c.b.Set(dlrTimeKey(now, m.q.Carrier, canon), []byte(val))
		s.rememberDLR(m.q.Carrier+"/"+canon, val)
	}
	// A receipt may have come first.
	for _, f := range IDForms(part.CarrierID) {
		k := m.q.Carrier + "/" + f
		if h, ok := s.held[k]; ok {
			delete(s.held, k)
			c.b.Delete(store.Key(store.PrefixDLRHeld, m.q.Carrier, f))
			s.applyReceipt(c, m, job.idx, h)
			break
		}
	}
	all := true
	for _, ok := range m.q.Accepted {
		all = all && ok
	}
	if all && m.rec.Status == routing.MsgQueued {
		m.rec.Status = routing.MsgSent
		m.rec.SentAt = &now
	}
	s.aggregate(m)
	c.touch(m)
}

// refuse (committer): the carrier refused part job.idx for good.
func (s *Service) refuse(c *commit, job *partJob, st data.CommandStatusType) {
	m := job.m
	now := s.now()
	part := &m.rec.Parts[job.idx]
	part.Status, part.Error, part.DoneAt = routing.MsgFailed, st.String(), &now
	m.cancelled.Store(true)
	s.aggregate(m)
	c.touch(m)
}

// rememberDLR keeps recent receipt index rows in memory (a receipt in
// the same batch as its response would not find the row on disk yet).
func (s *Service) rememberDLR(k, v string) {
	const keep = 1 << 16
	s.dlrIdx[k] = v
	s.dlrFIFO = append(s.dlrFIFO, k)
	if len(s.dlrFIFO) > 2*keep {
		for _, old := range s.dlrFIFO[:keep] {
			delete(s.dlrIdx, old)
		}
		s.dlrFIFO = append(s.dlrFIFO[:0], s.dlrFIFO[keep:]...)
	}
}

// dlrTimeKey is the dlrtime/ row of a part accepted at at: the time as
// 16 hex digits of Unix milliseconds, so that key order is time order.
func dlrTimeKey(at time.Time, carrier, canon string) []byte {
	return store.Key(store.PrefixDLRTime, fmt.Sprintf("%016x", max(at.UnixMilli(), 0)), carrier, canon)
}

// forgetDLR (committer) deletes a part's receipt index rows (dlr/ and
// its dlrtime/ row, found from the part's submitted_at) once the part has
// a final state: no receipt can change it any more, so nothing needs to
// find it by its carrier id.
func (s *Service) forgetDLR(c *commit, carrier string, part *routing.MessagePart) {
	forms := IDForms(part.CarrierID)
	if carrier == "" || len(forms) == 0 {
		return
	}
	canon := forms[0]
	c.b.Delete(store.Key(store.PrefixDLR, carrier, canon))
	if part.SubmittedAt != nil {
		c.b.Delete(dlrTimeKey(*part.SubmittedAt, carrier, canon))
	}
	delete(s.dlrIdx, carrier+"/"+canon)
}

// applyReceipt (committer) records a part's receipt state; a final state
// deletes the part's receipt index rows in the same batch.
func (s *Service) applyReceipt(c *commit, m *outMsg, idx int, h heldReceipt) {
	part := &m.rec.Parts[idx]
	switch part.Status {
	case routing.MsgDelivered, routing.MsgFailed, routing.MsgExpired:
		// The first final state wins: a late or repeated receipt (or a
		// carrier that sends DELIVRD then UNDELIV) changes nothing.
		s.metrics.receipts.WithLabelValues(m.rec.Carrier, "after_final").Inc()
		return
	}
	switch h.State {
	case Delivered:
		part.Status = routing.MsgDelivered
	case Failed:
		part.Status = routing.MsgFailed
		part.Error = strings.TrimSpace(h.Stat + " err:" + h.Err)
	case Expired:
		part.Status = routing.MsgExpired
	case Unknown:
		part.Status = routing.MsgUnknown
	default:
		return // accepted/enroute: not final
	}
	at := h.At
	if part.SubmittedAt != nil && at.Before(*part.SubmittedAt) {
		// Receipt done dates have minute precision (SMPP 3.4 appendix B).
		at = *part.SubmittedAt
	}
	part.DoneAt = &at
	if h.State != Unknown {
		// Unknown may still be settled by a later receipt: keep its row.
		s.forgetDLR(c, m.rec.Carrier, part)
	}
	s.aggregate(m)
}

// aggregate sets the message status from its parts: delivered only when
// every part is, failed when any part failed, else expired, else unknown
// once every part is final.
func (s *Service) aggregate(m *outMsg) {
	var failed, expired, unknown, delivered, final int
	var last time.Time
	for _, p := range m.rec.Parts {
		switch p.Status {
		case routing.MsgFailed:
			failed++
		case routing.MsgExpired:
			expired++
		case routing.MsgUnknown:
			unknown++
		case routing.MsgDelivered:
			delivered++
		default:
			continue
		}
		final++
		if p.DoneAt != nil && p.DoneAt.After(last) {
			last = *p.DoneAt
		}
	}
	n := len(m.rec.Parts)
	var st string
	switch {
	case failed > 0:
		st = routing.MsgFailed
	case final < n:
		return
	case delivered == n:
		st = routing.MsgDelivered
	case expired > 0:
		st = routing.MsgExpired
	default:
		st = routing.MsgUnknown
	}
	if st != m.rec.Status {
		m.rec.Status = st
		if last.IsZero() {
			last = s.now()
		}
		m.rec.DoneAt = &last
		s.metrics.messages.WithLabelValues(routing.DirectionOut, st).Inc()
	}
}

// commitLoop is the committer goroutine; it returns once stop is closed
// and every op already queued is committed.
func (s *Service) commitLoop(stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var batch []*op
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		drain:
			for len(batch) < 1024 {
				select {
				case o := <-s.ops:
					batch = append(batch, o)
				default:
					break drain
				}
			}
		case <-tick.C:
			batch = append(batch, &op{apply: func(c *commit) {
				c.s.sweepGroups(c)
				c.s.sweepHeld(c)
				c.s.sweepValidity(c)
				c.s.sweepReceiptIndex(c)
			}, done: func(error) {}})
		case <-stop:
			// Finish what is queued: binds are stopping and their
			// responses still free windows.
			for {
				select {
				case o := <-s.ops:
					batch = append(batch, o)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				s.commitBatch(batch)
			}
			return
		}
		s.commitBatch(batch)
	}
}

// commitBatch applies ops to one batch, writes every touched message once,
// syncs, then runs the callbacks.
func (s *Service) commitBatch(batch []*op) {
	c := &commit{s: s, b: s.db.NewBatch(), touched: make(map[string]*outMsg)}
	for _, o := range batch {
		o.apply(c)
	}
	for _, m := range c.touched {
		if err := s.rt.PutMessage(c.b, &m.rec); err != nil {
			s.log.Error("message record refused", "message", m.rec.ID, "error", err)
		}
		key := store.Key(store.PrefixSMSQueue, m.rec.ID)
		// Failed or expired, or every part accepted: nothing more to
		// submit (a part still queued on the bind after a failure may
		// still go, but is not resumed after a restart).
		done := m.cancelled.Load() || m.rec.Status == routing.MsgFailed
		if !done {
			done = true
			for _, ok := range m.q.Accepted {
				done = done && ok
			}
		}
		if done {
			c.b.Delete(key)
		} else {
			c.b.SetJSON(key, &m.q)
		}
		// Once every part is accepted (or the message failed or expired) only
		// receipts can still change it: they find it among the recent
		// final records or in the store, so a carrier that sends no
		// receipts does not keep it in memory.
		if done {
			delete(s.active, m.rec.ID)
			s.rememberFinal(&m.rec)
		}
	}
	for _, r := range c.records {
		if err := s.rt.PutMessage(c.b, r); err != nil {
			s.log.Error("message record refused", "message", r.ID, "error", err)
		}
	}
	err := c.b.Commit()
	if err != nil {
		s.log.Error("SMS state not saved", "error", err, "changes", len(batch))
	} else {
		for _, f := range c.after {
			f()
		}
	}
	var flush []*link
	var freed map[*bind]int
	for _, o := range batch {
		o.done(err)
		if o.frees != nil {
			if freed == nil {
				freed = make(map[*bind]int)
			}
			freed[o.frees]++
		}
		if o.reply == nil {
			continue
		}
		if err != nil {
			o.reply.CommandStatus = data.ESME_RSYSERR
		}
		// A failed write closes the link (its reader and bind see it).
		if o.replyOn.queue(o.reply) == nil && !slices.Contains(flush, o.replyOn) {
			flush = append(flush, o.replyOn)
		}
	}
	for _, l := range flush {
		_ = l.flush()
	}
	for b, n := range freed {
		b.windowFreedN(n)
	}
}

// sweepHeld (committer) drops receipts held longer than heldReceiptTTL.
func (s *Service) sweepHeld(c *commit) {
	now := s.now()
	for k, h := range s.held {
		if now.Sub(h.Recv) < heldReceiptTTL {
			continue
		}
		delete(s.held, k)
		carrier, id, _ := strings.Cut(k, "/")
		c.b.Delete(store.Key(store.PrefixDLRHeld, carrier, id))
		s.metrics.receipts.WithLabelValues(carrier, "unmatched").Inc()
	}
}

// rememberFinal keeps a bounded number of final records for receipts
// that still come (a second receipt, or one for a part after a failure).
func (s *Service) rememberFinal(r *routing.MessageRecord) {
	if len(s.final) > 1<<15 {
		clear(s.final)
	}
	s.final[r.ID] = r
}

// findMessage (committer) returns the in-flight message id, loading a
// finished one from the store (for a late receipt) as a detached outMsg.
func (s *Service) findMessage(id string) *outMsg {
	if m := s.active[id]; m != nil {
		return m
	}
	rec := s.final[id]
	if rec == nil {
		r, err := s.rt.GetMessage(context.Background(), id)
		if err != nil {
			return nil
		}
		rec = r
	}
	m := &outMsg{rec: *rec}
	m.q.Accepted = make([]bool, len(rec.Parts))
	for i := range m.q.Accepted {
		m.q.Accepted[i] = true
	}
	return m
}

// lookupDLR (committer) finds the message and part a carrier id names.
func (s *Service) lookupDLR(carrier, id string) (*outMsg, int, bool) {
	for _, f := range IDForms(id) {
		v, ok := s.dlrIdx[carrier+"/"+f]
		if !ok {
			b, err := s.db.Get(store.Key(store.PrefixDLR, carrier, f))
			if err != nil {
				continue
			}
			v = string(b)
		}
		msgID, idxS, ok := strings.Cut(v, "/")
		idx, err := strconv.Atoi(idxS)
		if !ok || err != nil {
			continue
		}
		if m := s.findMessage(msgID); m != nil && idx >= 0 && idx < len(m.rec.Parts) {
			return m, idx, true
		}
	}
	return nil, 0, false
}

// delivered is called by a bind's reader for a deliver_sm: a receipt or
// an inbound message. The deliver_sm_resp goes out once what it carries
// is on disk.
func (s *Service) delivered(b *bind, l *link, p *pdu.DeliverSM) {
	resp := p.GetResponse().(*pdu.DeliverSMResp)
	var o *op
	if p.EsmClass&0x3C == data.SM_SMSC_DLV_RCPT_TYPE || p.EsmClass&0x3C == 0x08 || p.EsmClass&0x3C == 0x10 {
		o = s.receiptOp(b, p)
	} else {
		o = s.inboundOp(b, p)
	}
	if o == nil {
		resp.CommandStatus = data.ESME_RX_P_APPN
		_ = l.write(resp)
		return
	}
	if o.done == nil {
		o.done = func(error) {}
	}
	// commitBatch answers (queued, then flushed with the batch's others).
	o.reply, o.replyOn = resp, l
	s.submitFromBind(o)
}

// maxHeldReceipts bounds the receipts held for a submit_sm_resp not yet
// seen (a receipt normally waits milliseconds; held ones expire anyway).
const maxHeldReceipts = 100_000

// receiptOp reads a delivery receipt: the receipted_message_id and
// message_state TLVs when present, else the receipt text.
func (s *Service) receiptOp(b *bind, p *pdu.DeliverSM) *op {
	var id string
	var h heldReceipt
	h.At = s.now()
	h.Recv = h.At
	text, _ := p.Message.GetMessageData()
	if f, ok := p.OptionalParameters[pdu.TagMessagePayload]; ok && len(text) == 0 {
		text = f.Data // some SMSCs put the receipt text there
	}
	if r, err := ParseReceipt(string(text)); err == nil {
		id, h.State, h.Stat, h.Err = r.ID, r.State, r.Stat, r.Err
		if !r.DoneDate.IsZero() {
			h.At = r.DoneDate
		}
	}
	if f, ok := p.OptionalParameters[pdu.TagReceiptedMessageID]; ok {
		if v := strings.TrimSpace(f.String()); v != "" {
			id = v
		}
	}
	if f, ok := p.OptionalParameters[pdu.TagMessageStateOption]; ok && len(f.Data) == 1 {
		h.State = StateFromMessageState(f.Data[0])
		if h.Stat == "" {
			h.Stat = h.State.String()
		}
	}
	if id == "" {
		s.metrics.receipts.WithLabelValues(b.name, "unreadable").Inc()
		return nil
	}
	return &op{apply: func(c *commit) {
		m, idx, ok := s.lookupDLR(b.name, id)
		if !ok {
			canon := IDForms(id)[0]
			if len(s.held) >= s.maxHeld {
				// A flood of receipts for ids Veil never got (a carrier's
				// bug or a hostile SMSC) must not fill memory and disk:
				// past the cap they are answered and dropped.
				s.metrics.receipts.WithLabelValues(b.name, "dropped").Inc()
				return
			}
			s.held[b.name+"/"+canon] = h
			data, _ := json.Marshal(h)
			c.b.Set(store.Key(store.PrefixDLRHeld, b.name, canon), data)
			s.metrics.receipts.WithLabelValues(b.name, "held").Inc()
			return
		}
		s.metrics.receipts.WithLabelValues(b.name, "matched").Inc()
		s.applyReceipt(c, m, idx, h)
		c.touch(m)
	}}
}

// resume (before the committer starts) reloads the queue, held receipts
// and inbound parts.
func (s *Service) resume() error {
	var resumed []*outMsg
	err := s.db.Scan([]byte(store.PrefixSMSQueue), nil, func(k, v []byte) (bool, error) {
		var q queued
		if err := json.Unmarshal(v, &q); err != nil {
			s.log.Error("unreadable queue row skipped", "key", string(k), "error", err)
			return true, nil
		}
		rec, err := s.rt.GetMessage(context.Background(), q.ID)
		if err != nil {
			s.log.Error("queued message without its record skipped", "message", q.ID, "error", err)
			return true, nil
		}
		m := &outMsg{q: q, rec: *rec}
		if len(m.q.Accepted) != len(m.q.Parts) || len(rec.Parts) != len(q.Parts) {
			s.log.Error("queued message inconsistent with its record skipped", "message", q.ID)
			return true, nil
		}
		s.active[q.ID] = m
		resumed = append(resumed, m)
		return true, nil
	})
	if err != nil {
		return err
	}
	err = s.db.Scan([]byte(store.PrefixDLRHeld), nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixDLRHeld, 2)
		var h heldReceipt
		if ok && json.Unmarshal(v, &h) == nil {
			if h.Recv.IsZero() {
				h.Recv = s.now()
			}
			s.held[parts[0]+"/"+parts[1]] = h
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := s.resumeGroups(); err != nil {
		return err
	}
	sort.Slice(resumed, func(i, j int) bool { return resumed[i].rec.ID < resumed[j].rec.ID })
	now := s.now()
	for _, m := range resumed {
		if s.pastValidity(m, now) {
			continue // the committer's first sweep ends it expired
		}
		s.dispatch(m)
	}
	if len(resumed) > 0 {
		s.log.Info("SMS queue resumed", "messages", len(resumed))
	}
	return nil
}
