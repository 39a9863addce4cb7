package smpp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

const (
	testProxy = "+15550100001"
	testDest  = "+15550100102"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeSMSC is an SMSC for the unit tests: it binds anyone, answers
// enquire_link and unbind, and hands every submit_sm to the test, which
// answers it (or not) and writes receipts when it chooses.
type fakeSMSC struct {
	t       testing.TB
	ln      net.Listener
	subs    chan fakeSubmit
	dresps  chan *pdu.DeliverSMResp
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []*fakeConn
	closing bool
}

type fakeConn struct {
	nc  net.Conn
	wmu sync.Mutex
}

// fakeSubmit is one submit_sm received on c.
type fakeSubmit struct {
	c *fakeConn
	p *pdu.SubmitSM
}

func startFakeSMSC(t testing.TB) *fakeSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMSC{t: t, ln: ln, subs: make(chan fakeSubmit, 100), dresps: make(chan *pdu.DeliverSMResp, 100)}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		f.mu.Lock()
		f.closing = true
		for _, c := range f.conns {
			c.nc.Close()
		}
		f.mu.Unlock()
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeSMSC) accept() {
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		c := &fakeConn{nc: nc}
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			nc.Close()
			return
		}
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Go(func() { f.serve(c) })
	}
}

func (f *fakeSMSC) serve(c *fakeConn) {
	defer c.nc.Close()
	for {
		p, err := pdu.Parse(c.nc)
		if err != nil {
			return
		}
		switch p := p.(type) {
		case *pdu.BindRequest, *pdu.EnquireLink:
			c.write(p.GetResponse())
		case *pdu.Unbind:
			c.write(p.GetResponse())
			return
		case *pdu.SubmitSM:
			f.subs <- fakeSubmit{c, p}
		case *pdu.DeliverSMResp:
			f.dresps <- p
		}
	}
}

func (c *fakeConn) write(p pdu.PDU) {
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.nc.Write(buf.Bytes())
}

// next returns the next submit_sm, failing the test after 10 s.
func (f *fakeSMSC) next() fakeSubmit {
	f.t.Helper()
	select {
	case s := <-f.subs:
		return s
	case <-time.After(10 * time.Second):
		f.t.Fatal("no submit_sm within 10s")
	}
	return fakeSubmit{}
}

// answer writes the submit_sm_resp of s.
func (s fakeSubmit) answer(st data.CommandStatusType, id string) {
	r := s.p.GetResponse().(*pdu.SubmitSMResp)
	r.CommandStatus, r.MessageID = st, id
	s.c.write(r)
}

// receipt writes a text delivery receipt on s's connection and waits for
// its deliver_sm_resp (so what it carries is on disk).
func (f *fakeSMSC) receipt(s fakeSubmit, id, stat string) {
	f.t.Helper()
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.SourceAddr, d.DestAddr = s.p.DestAddr, s.p.SourceAddr
	d.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
	text := "id:" + id + " sub:001 dlvrd:001 submit date:2612041200 done date:2612041201 stat:" + stat + " err:000 text:"
	if err := d.Message.SetMessageDataWithEncoding([]byte(text), data.GSM7BIT); err != nil {
		f.t.Fatal(err)
	}
	d.SetSequenceNumber(int32(time.Now().UnixNano() & 0x3fffffff))
	s.c.write(d)
	select {
	case r := <-f.dresps:
		if r.CommandStatus != data.ESME_ROK {
			f.t.Fatalf("deliver_sm_resp status %v", r.CommandStatus)
		}
	case <-time.After(10 * time.Second):
		f.t.Fatal("no deliver_sm_resp within 10s")
	}
}

// testEnv is a routing service with a proxy number on carrier c1 in a
// fresh store.
type testEnv struct {
	db *store.DB
	rt *routing.Service
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	db := storetest.Open(t)
	rt, err := routing.New(db, routing.Options{Carriers: []string{"c1"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.AddNumber(context.Background(), routing.AddNumberRequest{Number: testProxy, Carrier: "c1"}); err != nil {
		t.Fatal(err)
	}
	return &testEnv{db: db, rt: rt}
}

// service builds a Service for carrier c1 at addr (not started).
func (e *testEnv) service(t *testing.T, addr string, sms configs.SMS) *Service {
	t.Helper()
	s, err := New(Options{
		DB: e.db, Routing: e.rt, Logger: quiet, SMS: sms,
		Carriers: []configs.Carrier{{Name: "c1", SMPP: &configs.CarrierSMPP{Address: addr, SystemID: "veil", Window: 10, EnquireLink: time.Minute}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts s; the returned stop cancels it and waits for Run to return.
func run(t *testing.T, s *Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitMessage polls the record of id until cond holds.
func (e *testEnv) waitMessage(t *testing.T, id, what string, cond func(*routing.MessageRecord) bool) *routing.MessageRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := e.rt.GetMessage(context.Background(), id)
		if err == nil && cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %s not reached; last %+v (%v)", id, what, m, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusIs(st string) func(*routing.MessageRecord) bool {
	return func(m *routing.MessageRecord) bool { return m.Status == st }
}

// concatSeq reads the part number of a concatenated submit (0: single).
func concatSeq(t *testing.T, p *pdu.SubmitSM) int {
	t.Helper()
	if p.EsmClass&data.SM_UDH_GSM == 0 {
		return 0
	}
	udh, err := p.Message.UDH().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := p.Message.GetMessageData()
	h, _, err := ParseUDH(append(udh, msg...))
	if err != nil {
		t.Fatal(err)
	}
	return int(h.Seq)
}

func TestAggregate(t *testing.T) {
	s := &Service{metrics: newMetrics(nil), now: time.Now}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		parts []string
		want  string
	}{
		{[]string{routing.MsgSent, routing.MsgSent}, routing.MsgSent},
		{[]string{routing.MsgDelivered, routing.MsgSent}, routing.MsgSent},
		{[]string{routing.MsgDelivered, routing.MsgQueued}, routing.MsgSent},
		{[]string{routing.MsgDelivered, routing.MsgDelivered}, routing.MsgDelivered},
		{[]string{routing.MsgFailed, routing.MsgSent}, routing.MsgFailed},
		{[]string{routing.MsgDelivered, routing.MsgFailed}, routing.MsgFailed},
		{[]string{routing.MsgExpired, routing.MsgFailed}, routing.MsgFailed},
		{[]string{routing.MsgDelivered, routing.MsgExpired}, routing.MsgExpired},
		{[]string{routing.MsgExpired, routing.MsgSent}, routing.MsgSent},
		{[]string{routing.MsgDelivered, routing.MsgUnknown}, routing.MsgUnknown},
		{[]string{routing.MsgUnknown, routing.MsgExpired}, routing.MsgExpired},
		{[]string{routing.MsgDelivered}, routing.MsgDelivered},
	}
	for _, tc := range cases {
		m := &outMsg{rec: routing.MessageRecord{Status: routing.MsgSent}}
		for i, st := range tc.parts {
			done := t0.Add(time.Duration(i) * time.Minute)
			m.rec.Parts = append(m.rec.Parts, routing.MessagePart{Seq: i + 1, Status: st, DoneAt: &done})
		}
		s.aggregate(m)
		if m.rec.Status != tc.want {
			t.Errorf("parts %v: status %q, want %q", tc.parts, m.rec.Status, tc.want)
		}
		if tc.want != routing.MsgSent && m.rec.DoneAt == nil {
			t.Errorf("parts %v: no done_at", tc.parts)
		}
		if tc.want == routing.MsgDelivered && !m.rec.DoneAt.Equal(t0.Add(time.Duration(len(tc.parts)-1)*time.Minute)) {
			t.Errorf("parts %v: done_at %v, want the last part's", tc.parts, m.rec.DoneAt)
		}
	}
}

// TestReceiptsPerPart: the committer's bookkeeping, driven without
// goroutines: a receipt that comes before its submit_sm_resp is held (on
// disk) and applied when the resp names its id (hex in the resp, decimal
// in the receipt); the message is delivered only when both parts are; a
// second receipt for a part changes nothing; a receipt nobody claims is
// dropped after heldReceiptTTL.
func TestReceiptsPerPart(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s := e.service(t, "127.0.0.1:1", configs.SMS{})
	s.now = func() time.Time { return now }
	b := s.binds["c1"]
	apply := func(o *op) {
		t.Helper()
		var got error
		done := o.done
		o.done = func(err error) {
			got = err
			if done != nil {
				done(err)
			}
		}
		s.commitBatch([]*op{o})
		if got != nil {
			t.Fatal(got)
		}
	}
	m, err := s.newOut(testProxy, testDest, longText(170), routing.MessageRecord{Origin: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.q.Parts) != 2 {
		t.Fatalf("%d parts, want 2", len(m.q.Parts))
	}
	apply(&op{apply: func(c *commit) { s.startOut(c, m) }})
	if got := len(b.fifo); got != 2 {
		t.Fatalf("%d parts queued on the bind, want 2", got)
	}
	receipt := func(id, stat string) {
		t.Helper()
		d := pdu.NewDeliverSM().(*pdu.DeliverSM)
		d.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
		_ = d.Message.SetMessageDataWithEncoding([]byte("id:"+id+" sub:001 dlvrd:001 submit date:2612041200 done date:2612041205 stat:"+stat+" err:000 text:"), data.GSM7BIT)
		o := s.receiptOp(b, d)
		if o == nil {
			t.Fatal("receipt not read")
		}
		apply(o)
	}
	// Part 1: receipt first (decimal 2684354560 = hex a0000000).
	receipt("2684354560", "DELIVRD")
	if len(s.held) != 1 {
		t.Fatalf("%d receipts held, want 1", len(s.held))
	}
	if ok, _ := e.db.Has(store.Key(store.PrefixDLRHeld, "c1", "2684354560")); !ok {
		t.Error("the held receipt is not on disk")
	}
	apply(&op{apply: func(c *commit) { s.accept(c, &partJob{m: m, idx: 0}, "A0000000") }})
	if len(s.held) != 0 {
		t.Errorf("the held receipt was not matched: %v", s.held)
	}
	if ok, _ := e.db.Has(store.Key(store.PrefixDLRHeld, "c1", "2684354560")); ok {
		t.Error("the matched receipt is still on disk")
	}
	rec, _ := e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Status != routing.MsgQueued || rec.Parts[0].Status != routing.MsgDelivered {
		t.Fatalf("after part 1: status %q, part 1 %q; want queued, delivered", rec.Status, rec.Parts[0].Status)
	}
	// Part 2: resp, then receipt.
	apply(&op{apply: func(c *commit) { s.accept(c, &partJob{m: m, idx: 1}, "a0000001") }})
	rec, _ = e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Status != routing.MsgSent || rec.SentAt == nil {
		t.Fatalf("both parts accepted: status %q sent_at %v, want sent", rec.Status, rec.SentAt)
	}
	if ok, _ := e.db.Has(store.Key(store.PrefixSMSQueue, m.rec.ID)); ok {
		t.Error("the queue row outlives the acceptance of every part")
	}
	receipt("A0000001", "DELIVRD")
	rec, _ = e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Status != routing.MsgDelivered || rec.DoneAt == nil {
		t.Fatalf("both receipts: status %q done_at %v, want delivered", rec.Status, rec.DoneAt)
	}
	// Final parts have no receipt index rows left.
	for _, id := range []string{"a0000000", "a0000001"} {
		if ok, _ := e.db.Has(store.Key(store.PrefixDLR, "c1", id)); ok {
			t.Errorf("receipt index row of final part %s still there", id)
		}
	}
	// A duplicate receipt (carriers resend after a reconnect) changes
	// nothing: it finds no index row and is held like an unknown id.
	receipt("a0000001", "DELIVRD")
	rec, _ = e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Status != routing.MsgDelivered {
		t.Errorf("after a duplicate receipt: %q", rec.Status)
	}

	// A receipt for an id Veil never had waits heldReceiptTTL, then goes.
	receipt("ffff", "DELIVRD")
	apply(&op{apply: func(c *commit) { s.sweepHeld(c) }})
	if len(s.held) != 2 {
		t.Fatalf("held %d, want 2 (the duplicate and ffff) before the TTL", len(s.held))
	}
	now = now.Add(heldReceiptTTL)
	apply(&op{apply: func(c *commit) { s.sweepHeld(c) }})
	if len(s.held) != 0 {
		t.Errorf("held %d after the TTL, want 0", len(s.held))
	}
	if ok, _ := e.db.Has(store.Key(store.PrefixDLRHeld, "c1", "ffff")); ok {
		t.Error("the expired held receipt is still on disk")
	}
}

func longText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// TestSubmitOutcomes: transient refusals (throttled, queue full, system
// error) are submitted again after a backoff until accepted; a permanent
// one ends the message failed at once, with no resubmit.
func TestSubmitOutcomes(t *testing.T) {
	cases := []struct {
		status data.CommandStatusType
		retry  bool
	}{
		{data.ESME_RTHROTTLED, true},
		{data.ESME_RMSGQFUL, true},
		{data.ESME_RSYSERR, true},
		{data.ESME_RINVDSTADR, false},
		{data.ESME_RINVSRCADR, false},
	}
	e := newEnv(t)
	f := startFakeSMSC(t)
	s := e.service(t, f.ln.Addr().String(), configs.SMS{RetryMax: 200 * time.Millisecond})
	run(t, s)
	for i, tc := range cases {
		t.Run(tc.status.String(), func(t *testing.T) {
			rec, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: "outcome " + strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			first := f.next()
			first.answer(tc.status, "")
			if !tc.retry {
				m := e.waitMessage(t, rec.ID, "failed", statusIs(routing.MsgFailed))
				if m.Parts[0].Error == "" {
					t.Error("failed part without the carrier's error")
				}
				return
			}
			again := f.next()
			msg1, _ := first.p.Message.GetMessageData()
			msg2, _ := again.p.Message.GetMessageData()
			if string(msg1) != string(msg2) {
				t.Fatalf("after %v the next submit is another message", tc.status)
			}
			again.answer(data.ESME_ROK, "c0ffee"+strconv.Itoa(i))
			m := e.waitMessage(t, rec.ID, "sent", statusIs(routing.MsgSent))
			if m.Parts[0].CarrierID != "c0ffee"+strconv.Itoa(i) {
				t.Errorf("carrier id %q", m.Parts[0].CarrierID)
			}
		})
	}
}

// TestResumeAfterRestart: a message whose part 1 was accepted and part 2
// not when the service stopped is resumed by the next one from the store:
// only part 2 is submitted again, and the receipts of both parts (part
// 1's id from before the restart) make it delivered.
func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t)
	f := startFakeSMSC(t)
	s1 := e.service(t, f.ln.Addr().String(), configs.SMS{})
	stop1 := run(t, s1)
	rec, err := s1.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: longText(200)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Parts) != 2 || rec.Status != routing.MsgQueued {
		t.Fatalf("queued %+v", rec)
	}
	a, b := f.next(), f.next()
	if concatSeq(t, a.p) != 1 || concatSeq(t, b.p) != 2 {
		t.Fatalf("parts submitted as %d, %d", concatSeq(t, a.p), concatSeq(t, b.p))
	}
	a.answer(data.ESME_ROK, "1001")
	e.waitMessage(t, rec.ID, "part 1 accepted", func(m *routing.MessageRecord) bool { return m.Parts[0].CarrierID == "1001" })
	stop1() // part 2 never answered

	s2 := e.service(t, f.ln.Addr().String(), configs.SMS{})
	run(t, s2)
	b2 := f.next()
	if concatSeq(t, b2.p) != 2 {
		t.Fatalf("resumed submit is part %d, want 2 only", concatSeq(t, b2.p))
	}
	if b2.p.DestAddr.Address() != testDest[1:] || b2.p.SourceAddr.Address() != testProxy[1:] {
		t.Errorf("resumed submit from %q to %q", b2.p.SourceAddr.Address(), b2.p.DestAddr.Address())
	}
	b2.answer(data.ESME_ROK, "1002")
	e.waitMessage(t, rec.ID, "sent", statusIs(routing.MsgSent))
	f.receipt(b2, "1001", "DELIVRD")
	f.receipt(b2, "1002", "DELIVRD")
	m := e.waitMessage(t, rec.ID, "delivered", statusIs(routing.MsgDelivered))
	if m.Parts[0].CarrierID != "1001" || m.Parts[1].CarrierID != "1002" {
		t.Errorf("parts %+v", m.Parts)
	}
	select {
	case extra := <-f.subs:
		t.Errorf("an extra submit: part %d", concatSeq(t, extra.p))
	default:
	}
}

// TestSendAfterClose: once Run returns, Send fails with ErrClosed (and
// does not block on the stopped committer).
func TestSendAfterClose(t *testing.T) {
	e := newEnv(t)
	f := startFakeSMSC(t)
	s := e.service(t, f.ln.Addr().String(), configs.SMS{})
	stop := run(t, s)
	stop()
	_, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: "late"})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Send after close: %v, want ErrClosed", err)
	}
}

// TestReceiptOp: where a receipt's id and state are read from: the text in
// short_message or in message_payload, the receipted_message_id and
// message_state TLVs (which win over the text); a deliver_sm with no id
// is unreadable (nil: the SMSC is told so).
func TestReceiptOp(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, "127.0.0.1:1", configs.SMS{})
	b := s.binds["c1"]
	const text = "id:0A1B sub:001 dlvrd:000 submit date:2612041200 done date:2612041201 stat:UNDELIV err:005 text:"
	cases := []struct {
		name    string
		sm      string
		payload string
		tlvID   string
		state   byte
		wantKey string // held under c1/<canonical id>; "" for unreadable
		want    State
	}{
		{"text", text, "", "", 0, "c1/a1b", Failed},
		{"text in message_payload", "", text, "", 0, "c1/a1b", Failed},
		{"tlv only", "", "", "2587\x00", 2, "c1/2587", Delivered},
		{"tlv id, text state", text, "", "777", 0, "c1/777", Failed},
		{"tlv state wins", text, "", "", 3, "c1/a1b", Expired},
		{"no id", "hello there", "", "", 0, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clear(s.held)
			d := pdu.NewDeliverSM().(*pdu.DeliverSM)
			d.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
			_ = d.Message.SetMessageDataWithEncoding([]byte(tc.sm), data.GSM7BIT)
			if tc.payload != "" {
				d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessagePayload, Data: []byte(tc.payload)})
			}
			if tc.tlvID != "" {
				d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagReceiptedMessageID, Data: []byte(tc.tlvID)})
			}
			if tc.state != 0 {
				d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessageStateOption, Data: []byte{tc.state}})
			}
			o := s.receiptOp(b, d)
			if tc.wantKey == "" {
				if o != nil {
					t.Fatal("read as a receipt")
				}
				return
			}
			if o == nil {
				t.Fatal("unreadable")
			}
			s.commitBatch([]*op{{apply: o.apply, done: func(error) {}}})
			h, ok := s.held[tc.wantKey]
			if !ok || h.State != tc.want {
				t.Errorf("held %v, want %s with state %v", s.held, tc.wantKey, tc.want)
			}
		})
	}
}

// TestInboundReassembly: the committer's reassembly of a concatenated MO,
// driven without goroutines: parts out of order are kept (on disk) until
// the last one, then relayed once; a part sent again after that is a
// duplicate, not a new message; parts that disagree on the part count
// are not mixed; a part stored before a restart completes with one that
// comes after; an incomplete group is relayed after the timeout, flagged.
func TestInboundReassembly(t *testing.T) {
	const sender = "+15550100101"
	e := newEnv(t)
	sess, err := e.rt.CreateSession(context.Background(), routing.CreateSessionRequest{Participants: []string{sender, testDest}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	sms := configs.SMS{ReassemblyTimeout: time.Minute}
	newSvc := func() *Service {
		s := e.service(t, "127.0.0.1:1", sms)
		s.now = func() time.Time { return now }
		if err := s.resume(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newSvc()
	part := func(s *Service, ref, total, seq byte, text string) {
		t.Helper()
		d := pdu.NewDeliverSM().(*pdu.DeliverSM)
		d.SourceAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, sender[1:])
		d.DestAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, testProxy[1:])
		d.EsmClass = data.SM_UDH_GSM
		udh := pdu.UDH{pdu.NewIEConcatMessage(total, seq, ref)}
		d.Message.SetUDH(udh)
		_ = d.Message.SetMessageDataWithEncoding([]byte(text), data.GSM7BIT)
		// Through the wire format, as the reader gets it.
		p, err := parsePDU(marshal(d))
		if err != nil {
			t.Fatal(err)
		}
		o := s.inboundOp(s.binds["c1"], p.(*pdu.DeliverSM))
		if o == nil {
			t.Fatal("part not read")
		}
		s.commitBatch([]*op{{apply: o.apply, done: func(error) {}}})
	}
	inbound := func() []*routing.MessageRecord {
		t.Helper()
		list, err := e.rt.ListInteractions(context.Background(), sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []*routing.MessageRecord
		for _, it := range list {
			if it.Message != nil && it.Message.Direction == routing.DirectionIn {
				out = append(out, it.Message)
			}
		}
		return out
	}

	part(s, 7, 2, 2, " world")
	if n := len(inbound()); n != 0 {
		t.Fatalf("%d inbound messages after part 2 of 2, want 0", n)
	}
	part(s, 7, 2, 1, "hello")
	in := inbound()
	if len(in) != 1 || in[0].Body != "hello world" || in[0].Incomplete || len(in[0].Parts) != 2 {
		t.Fatalf("inbound %+v, want one complete \"hello world\"", in)
	}
	part(s, 7, 2, 2, " world") // resent
	if n := len(inbound()); n != 1 {
		t.Errorf("%d inbound messages after a resent part, want still 1", n)
	}
	if n := len(s.groups); n != 0 {
		t.Errorf("%d groups open after a resent part, want 0", n)
	}

	// Same reference, 3 parts: another message; part 1 now, and the
	// service restarts before the rest.
	part(s, 7, 3, 1, "one ")
	s = newSvc()
	part(s, 7, 3, 3, "three")
	if n := len(inbound()); n != 1 {
		t.Fatalf("%d inbound messages with part 2 of 3 missing, want 1", n)
	}
	now = now.Add(time.Minute)
	s.commitBatch([]*op{{apply: func(c *commit) { s.sweepGroups(c) }, done: func(error) {}}})
	in = inbound()
	if len(in) != 2 {
		t.Fatalf("%d inbound messages after the timeout, want 2", len(in))
	}
	var late *routing.MessageRecord
	for _, m := range in {
		if m.Body != "hello world" {
			late = m
		}
	}
	if late == nil || late.Body != "one three" || !late.Incomplete || len(late.Parts) != 2 {
		t.Errorf("timed out message %+v, want \"one three\", incomplete, 2 parts", late)
	}
	if err := e.db.Scan([]byte(store.PrefixMOPart), nil, func(k, _ []byte) (bool, error) {
		t.Errorf("part %q still stored", k)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
}
