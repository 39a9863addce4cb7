package smpp

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/routing"
)

// flushWait is how long a PDU may take to reach the fake SMSC. Nothing
// else happens on the link meanwhile (enquire_link every minute), so a
// PDU left in the link's buffer never arrives.
const flushWait = 3 * time.Second

// limitedService is a Service for carrier c1 at addr with the given
// window, tps and bind type, started, once bound.
func limitedService(t *testing.T, e *testEnv, addr string, window, tps int, bindType string) *Service {
	t.Helper()
	s, err := New(Options{
		DB: e.db, Routing: e.rt, Logger: quiet,
		Carriers: []configs.Carrier{{Name: "c1", SMPP: &configs.CarrierSMPP{Address: addr, SystemID: "veil", Window: window, TPS: tps, BindType: bindType, EnquireLink: time.Minute}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for s.binds["c1"].status().State != BindBound {
		if time.Now().After(deadline) {
			t.Fatal("not bound within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// nextWithin returns the next submit_sm, failing the test after d.
func (f *fakeSMSC) nextWithin(t *testing.T, d time.Duration, what string) fakeSubmit {
	t.Helper()
	select {
	case s := <-f.subs:
		return s
	case <-time.After(d):
		t.Fatalf("%s: no submit_sm within %s (left in the link's buffer?)", what, d)
	}
	return fakeSubmit{}
}

// deliverWithin writes d on c and returns its deliver_sm_resp, failing
// the test after flushWait.
func (f *fakeSMSC) deliverWithin(t *testing.T, c *fakeConn, d *pdu.DeliverSM, what string) *pdu.DeliverSMResp {
	t.Helper()
	c.write(d)
	select {
	case r := <-f.dresps:
		if r.SequenceNumber != d.SequenceNumber {
			t.Fatalf("%s: deliver_sm_resp %d, want %d", what, r.SequenceNumber, d.SequenceNumber)
		}
		return r
	case <-time.After(flushWait):
		t.Fatalf("%s: no deliver_sm_resp within %s (left in the link's buffer?)", what, flushWait)
	}
	return nil
}

// TestNothingLeftUnflushed: link writes are buffered, and whoever
// writes flushes: a burst of submits stopped by the window goes out
// whole, the next one once the window frees, and the deliver_sm_resp of
// a receipt or an inbound message goes out after its batch, with
// nothing else on the link to push them. On a transceiver the bind's
// owner also flushes its link when it looks for submits (every second);
// the receiver of a transmitter_receiver bind has only the committer.
func TestNothingLeftUnflushed(t *testing.T) {
	for _, bt := range []string{"transceiver", "transmitter_receiver"} {
		t.Run(bt, func(t *testing.T) { testNothingLeftUnflushed(t, bt) })
	}
}

func testNothingLeftUnflushed(t *testing.T, bindType string) {
	e := newEnv(t)
	f := startFakeSMSC(t)
	s := limitedService(t, e, f.ln.Addr().String(), 4, 0, bindType)

	var ids []string
	for i := range 6 {
		rec, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: "burst " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	// The window (4) stops the burst: those 4 must be on the wire.
	var subs []fakeSubmit
	for i := range 4 {
		subs = append(subs, f.nextWithin(t, flushWait, "burst up to the window, submit "+strconv.Itoa(i+1)))
	}
	for i, sub := range subs {
		sub.answer(data.ESME_ROK, "m"+strconv.Itoa(i))
	}
	// The freed window lets the last 2 go.
	for i := range 2 {
		sub := f.nextWithin(t, flushWait, "after the window freed, submit "+strconv.Itoa(i+1))
		sub.answer(data.ESME_ROK, "m"+strconv.Itoa(4+i))
		subs = append(subs, sub)
	}
	for _, id := range ids {
		e.waitMessage(t, id, "sent", statusIs(routing.MsgSent))
	}

	// A receipt alone on the link: its deliver_sm_resp comes.
	c := subs[0].c
	if bindType == "transmitter_receiver" {
		f.mu.Lock()
		if len(f.conns) != 2 || f.conns[0] != c {
			f.mu.Unlock()
			t.Fatalf("%d connections, want the transmitter then the receiver", len(f.conns))
		}
		c = f.conns[1]
		f.mu.Unlock()
	}
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.SourceAddr, d.DestAddr = subs[0].p.DestAddr, subs[0].p.SourceAddr
	d.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
	text := "id:m0 sub:001 dlvrd:001 submit date:2612041200 done date:2612041201 stat:DELIVRD err:000 text:"
	if err := d.Message.SetMessageDataWithEncoding([]byte(text), data.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	d.SetSequenceNumber(4242)
	if r := f.deliverWithin(t, c, d, "receipt"); r.CommandStatus != data.ESME_ROK {
		t.Errorf("receipt answered %v", r.CommandStatus)
	}
	e.waitMessage(t, ids[0], "delivered", statusIs(routing.MsgDelivered))

	// An inbound message (no session for it: still answered, after its
	// batch).
	mo := pdu.NewDeliverSM().(*pdu.DeliverSM)
	mo.SourceAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, "15550100199")
	mo.DestAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, testProxy[1:])
	if err := mo.Message.SetMessageDataWithEncoding([]byte("hello"), data.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	mo.SetSequenceNumber(4243)
	f.deliverWithin(t, c, mo, "inbound message")
}

// TestRateLimitedBurstNotHeld: the parts of one message queued at once
// on a bind limited to 1 submit a second go out one by one: the first is
// flushed before the limiter makes the second wait, not 2 s later with
// the rest of the burst.
func TestRateLimitedBurstNotHeld(t *testing.T) {
	e := newEnv(t)
	f := startFakeSMSC(t)
	s := limitedService(t, e, f.ln.Addr().String(), 10, 1, "")
	rec, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: longText(400)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Parts) != 3 {
		t.Fatalf("%d parts, want 3", len(rec.Parts))
	}
	start := time.Now()
	first := f.nextWithin(t, 900*time.Millisecond, "first part under the rate limit")
	first.answer(data.ESME_ROK, "p1")
	for i := 2; i <= 3; i++ {
		f.nextWithin(t, flushWait, "part "+strconv.Itoa(i)).answer(data.ESME_ROK, "p"+strconv.Itoa(i))
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("3 parts at 1 tps took %s, want about 2 s", took)
	}
	e.waitMessage(t, rec.ID, "sent", statusIs(routing.MsgSent))
}

// TestLinkQueueFlush: queue holds PDUs until flush, which writes them
// together; a failed write closes the connection, so the reader (and
// the bind) sees the link is gone.
func TestLinkQueueFlush(t *testing.T) {
	ours, theirs := net.Pipe()
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	l := &link{nc: ours, br: bufio.NewReader(ours), bw: bufio.NewWriter(ours)}
	for i := range 3 {
		if err := l.queue(withSeq(pdu.NewEnquireLink(), int32(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.bw.Buffered(); n != 3*16 {
		t.Fatalf("%d bytes buffered, want 48", n)
	}
	got := make(chan []int32, 1)
	go func() {
		var seqs []int32
		for range 3 {
			p, err := pdu.Parse(theirs)
			if err != nil {
				break
			}
			seqs = append(seqs, p.GetSequenceNumber())
		}
		got <- seqs
	}()
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case seqs := <-got:
		if len(seqs) != 3 || seqs[0] != 10 || seqs[2] != 12 {
			t.Fatalf("read %v, want [10 11 12]", seqs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flushed PDUs not read")
	}

	theirs.Close()
	if err := l.queue(pdu.NewEnquireLink()); err != nil {
		t.Fatal(err) // buffered: nothing written yet
	}
	if err := l.flush(); err == nil {
		t.Fatal("flush to a closed peer succeeded")
	}
	if _, _, err := l.read(); err == nil {
		t.Fatal("the link reads on after a failed write")
	}
	if err := l.write(pdu.NewEnquireLink()); err == nil {
		t.Fatal("a write after a failed one succeeded")
	}
}
