package smpp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// TestReceiptFinalIsSticky: the first final state of a part wins (a
// carrier sending DELIVRD, then UNDELIV, then EXPIRED changes nothing and
// counts each as after_final); UNKNOWN is not sticky: a later DELIVRD
// settles it.
func TestReceiptFinalIsSticky(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{}, &now)
	status := func(m *outMsg) string {
		t.Helper()
		rec, err := e.rt.GetMessage(context.Background(), m.rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Status
	}
	after := h.s.metrics.receipts.WithLabelValues("c1", "after_final")
	before := counterValue(t, after)

	m := h.send(10)
	h.apply(func(c *commit) { c.s.accept(c, &partJob{m: m, idx: 0}, "a1") })
	h.receipt("a1", "ENROUTE")
	if got := status(m); got != routing.MsgSent {
		t.Fatalf("after ENROUTE: %q, want sent", got)
	}
	h.receipt("a1", "DELIVRD")
	for _, stat := range []string{"UNDELIV", "EXPIRED", "DELIVRD"} {
		h.receipt("a1", stat)
		if got := status(m); got != routing.MsgDelivered {
			t.Fatalf("after DELIVRD then %s: %q, want delivered", stat, got)
		}
	}
	rec, _ := e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Parts[0].Error != "" {
		t.Errorf("delivered part carries error %q", rec.Parts[0].Error)
	}
	// The receipt index row went with the final receipt, so the repeats
	// were held, not applied; send the repeat straight to the part to
	// check the rule itself.
	h.apply(func(c *commit) {
		mm := c.s.findMessage(m.rec.ID)
		if mm == nil {
			t.Fatal("message not found")
		}
		c.s.applyReceipt(c, mm, 0, heldReceipt{State: Failed, Stat: "UNDELIV", At: now})
		c.touch(mm)
	})
	if got := status(m); got != routing.MsgDelivered {
		t.Errorf("a failure applied after delivered: %q, want delivered", got)
	}
	if d := counterValue(t, after) - before; d != 1 {
		t.Errorf("after_final receipts counted %v, want 1", d)
	}

	u := h.send(10)
	h.apply(func(c *commit) { c.s.accept(c, &partJob{m: u, idx: 0}, "b2") })
	h.receipt("b2", "UNKNOWN")
	if got := status(u); got != routing.MsgUnknown {
		t.Fatalf("after UNKNOWN: %q, want unknown", got)
	}
	h.receipt("b2", "DELIVRD")
	if got := status(u); got != routing.MsgDelivered {
		t.Errorf("UNKNOWN then DELIVRD: %q, want delivered", got)
	}
}

// TestAcceptedWithoutID: a submit_sm_resp that accepts a part without a
// message id is taken as accepted (the SMSC has the message; sending it
// again would reach the handset twice): the part is sent, never
// resubmitted, and no receipt index row is written for it.
func TestAcceptedWithoutID(t *testing.T) {
	e := newEnv(t)
	smsc := startFakeSMSC(t)
	s := e.service(t, smsc.ln.Addr().String(), configs.SMS{})
	run(t, s)
	rec, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: "no id"})
	if err != nil {
		t.Fatal(err)
	}
	sub := smsc.next()
	sub.answer(data.ESME_ROK, "")
	e.waitMessage(t, rec.ID, "sent", statusIs(routing.MsgSent))
	// Nothing is resubmitted: a second message goes through and is the
	// next submit the SMSC sees.
	rec2, err := s.Send(context.Background(), SendRequest{From: testProxy, To: testDest, Body: "second"})
	if err != nil {
		t.Fatal(err)
	}
	next := smsc.next()
	if got, _ := next.p.Message.GetMessageData(); string(got) != "second" {
		t.Fatalf("next submit carries %q, want the second message (the first was resubmitted)", got)
	}
	next.answer(data.ESME_ROK, "x9")
	e.waitMessage(t, rec2.ID, "sent", statusIs(routing.MsgSent))
	n := 0
	if err := e.db.Scan([]byte(store.PrefixDLR), nil, func(k, _ []byte) (bool, error) {
		n++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d dlr/ rows, want 1 (only the part with an id)", n)
	}
}

// TestAutoReplyGuarded: an out-of-session MO from a stranger gets the
// auto-reply once per autoReplyEvery; one from a number of the pool or a
// sender id gets none (a carrier looping messages back, or another
// gateway, would otherwise be answered for ever); the API refuses a
// message to a pool number.
func TestAutoReplyGuarded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const other = "+15550100002"
	if _, err := e.rt.AddNumber(ctx, routing.AddNumberRequest{Number: other, Carrier: "c1"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{AutoReply: "This conversation has ended.", SenderIDs: []string{"Acme"}}, &now)
	replies := func() int {
		n := 0
		for _, m := range h.s.active {
			if m.rec.Origin == "auto_reply" {
				n++
			}
		}
		return n
	}
	mo := func(from string) {
		h.apply(func(c *commit) { c.s.relayInbound(c, "c1", from, testProxy, "hello", 1, false) })
	}
	mo("+15550100999")
	mo("+15550100999")
	if got := replies(); got != 1 {
		t.Fatalf("two MOs from a stranger within the hour: %d auto-replies, want 1", got)
	}
	now = now.Add(autoReplyEvery)
	mo("+15550100999")
	if got := replies(); got != 2 {
		t.Fatalf("an hour later: %d auto-replies, want 2", got)
	}
	mo(other)
	mo(testProxy)
	mo("Acme")
	if got := replies(); got != 2 {
		t.Errorf("MOs from pool numbers and a sender id: %d auto-replies, want still 2", got)
	}

	if _, err := h.s.Send(ctx, SendRequest{From: testProxy, To: other, Body: "x"}); !errors.Is(err, ErrDestinationIsProxy) {
		t.Errorf("Send to a pool number: %v, want ErrDestinationIsProxy", err)
	}
}

// TestHeldReceiptsCapped: receipts for ids Veil has not seen are held up
// to a cap; past it they are dropped (and counted), not kept.
func TestHeldReceiptsCapped(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{}, &now)
	h.s.maxHeld = 3
	dropped := h.s.metrics.receipts.WithLabelValues("c1", "dropped")
	before := counterValue(t, dropped)
	for _, id := range []string{"f1", "f2", "f3", "f4", "f5"} {
		h.receipt(id, "DELIVRD")
	}
	if len(h.s.held) != 3 {
		t.Errorf("%d receipts held, want the cap, 3", len(h.s.held))
	}
	n := 0
	if err := e.db.Scan([]byte(store.PrefixDLRHeld), nil, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d held rows on disk, want 3", n)
	}
	if d := counterValue(t, dropped) - before; d != 2 {
		t.Errorf("dropped counted %v, want 2", d)
	}
}

// TestThrottlePerEpisode: a whole window refused with ESME_RTHROTTLED at
// once is one pause of 100 ms; the next episode (after the pause) doubles
// it; an acceptance starts again from 100 ms.
func TestThrottlePerEpisode(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, "127.0.0.1:1", configs.SMS{})
	b := s.binds["c1"]
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i := range 50 {
		b.throttledAt(t0.Add(time.Duration(i)*time.Millisecond), 30*time.Second)
	}
	if got := b.pauseUntil.Sub(t0); got != 100*time.Millisecond {
		t.Fatalf("a window refused at once pauses %v, want 100ms", got)
	}
	t1 := t0.Add(150 * time.Millisecond)
	b.throttledAt(t1, 30*time.Second)
	if got := b.pauseUntil.Sub(t1); got != 200*time.Millisecond {
		t.Fatalf("the second episode pauses %v, want 200ms", got)
	}
	b.accepted()
	t2 := t1.Add(time.Second)
	b.throttledAt(t2, 30*time.Second)
	if got := b.pauseUntil.Sub(t2); got != 100*time.Millisecond {
		t.Errorf("after an acceptance the pause is %v, want 100ms again", got)
	}
	if st := b.status(); st.PausedUntil != nil {
		t.Errorf("status shows a pause that ended: %v", st.PausedUntil)
	}
	b.accepted()
	b.throttled(time.Minute)
	if st := b.status(); st.PausedUntil == nil || !st.PausedUntil.After(time.Now()) {
		t.Errorf("status during a pause: paused_until %v, want a time ahead", st.PausedUntil)
	}
}

// TestInboundNotRelayed: in session, an empty text (or blanks only) and
// one over MaxTextChars are recorded as rejected with their reason, and
// nothing goes to B.
func TestInboundNotRelayed(t *testing.T) {
	e := newEnv(t)
	const sender = "+15550100101"
	if _, err := e.rt.CreateSession(context.Background(), routing.CreateSessionRequest{Participants: []string{sender, testDest}}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{}, &now)
	long := make([]rune, MaxTextChars+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct{ text, reason string }{
		{"", "empty"},
		{"  \n", "empty"},
		{string(long), "too_long"},
	} {
		var in *routing.MessageRecord
		h.apply(func(c *commit) {
			c.s.relayInbound(c, "c1", sender, testProxy, tc.text, 1, false)
			in = c.records[len(c.records)-1]
		})
		if in.Status != routing.MsgRejected || in.Reason != tc.reason {
			t.Errorf("%d characters: status %q reason %q, want rejected %q", len(tc.text), in.Status, in.Reason, tc.reason)
		}
		if len(h.s.active) != 0 {
			t.Fatalf("%d characters: %d messages queued for B, want none", len(tc.text), len(h.s.active))
		}
	}
	// A normal text in session is relayed (the harness can fail).
	h.apply(func(c *commit) { c.s.relayInbound(c, "c1", sender, testProxy, "hello", 1, false) })
	if len(h.s.active) != 1 {
		t.Errorf("%d messages queued for B after a normal text, want 1", len(h.s.active))
	}
}

// TestBindStatusLastError: the last error stays while the bind is down
// and goes once it is bound again.
func TestBindStatusLastError(t *testing.T) {
	e := newEnv(t)
	b := e.service(t, "127.0.0.1:1", configs.SMS{}).binds["c1"]
	b.setState(BindDown, errors.New("connection refused"))
	b.setState(BindConnecting, nil)
	if got := b.status().LastError; got != "connection refused" {
		t.Errorf("connecting after a failure: last_error %q, want the failure", got)
	}
	b.setState(BindBound, nil)
	if got := b.status().LastError; got != "" {
		t.Errorf("bound: last_error %q, want none", got)
	}
}
