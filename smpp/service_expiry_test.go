package smpp

import (
	"context"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// committerHarness drives a Service's committer by hand, on a fake clock,
// without goroutines.
type committerHarness struct {
	t   *testing.T
	s   *Service
	now *time.Time
}

func newHarness(t *testing.T, e *testEnv, sms configs.SMS, now *time.Time) *committerHarness {
	t.Helper()
	s := e.service(t, "127.0.0.1:1", sms)
	s.now = func() time.Time { return *now }
	if err := s.resume(); err != nil {
		t.Fatal(err)
	}
	return &committerHarness{t: t, s: s, now: now}
}

// apply commits one op and fails the test if the batch is not saved.
func (h *committerHarness) apply(f func(c *commit)) {
	h.t.Helper()
	var got error
	h.s.commitBatch([]*op{{apply: f, done: func(err error) { got = err }}})
	if got != nil {
		h.t.Fatal(got)
	}
}

// tick runs what the committer's ticker runs.
func (h *committerHarness) tick() {
	h.t.Helper()
	h.apply(func(c *commit) {
		c.s.sweepGroups(c)
		c.s.sweepHeld(c)
		c.s.sweepValidity(c)
		c.s.sweepReceiptIndex(c)
	})
}

// send queues a message of n characters and returns it.
func (h *committerHarness) send(n int) *outMsg {
	h.t.Helper()
	m, err := h.s.newOut(testProxy, testDest, longText(n), routing.MessageRecord{Origin: "api"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.apply(func(c *commit) { c.s.startOut(c, m) })
	return m
}

// receipt applies a text receipt for carrier id id.
func (h *committerHarness) receipt(id, stat string) {
	h.t.Helper()
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
	_ = d.Message.SetMessageDataWithEncoding([]byte("id:"+id+" sub:001 dlvrd:001 submit date:2612041200 done date:2612041205 stat:"+stat+" err:000 text:"), data.GSM7BIT)
	o := h.s.receiptOp(h.s.binds["c1"], d)
	if o == nil {
		h.t.Fatal("receipt not read")
	}
	h.apply(o.apply)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func has(t *testing.T, db *store.DB, key []byte) bool {
	t.Helper()
	ok, err := db.Has(key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestValidity: a message the carrier does not accept whole within
// sms.validity ends expired: its unaccepted parts expired and no longer
// submitted, its queue row deleted, counted in the metrics; a part
// accepted before keeps its state and its receipt still counts. After a
// restart the deadline still runs from created_at: an expired message is
// not submitted again.
func TestValidity(t *testing.T) {
	const validity = time.Hour
	e := newEnv(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{Validity: validity}, &now)
	s, b := h.s, h.s.binds["c1"]

	// Two parts; part 1 accepted, part 2 throttled over and over (it
	// stays in the bind's queue).
	m := h.send(170)
	single := h.send(10)
	h.apply(func(c *commit) { c.s.accept(c, &partJob{m: m, idx: 0}, "b1") })

	now = now.Add(validity - time.Second)
	h.tick()
	if rec, _ := e.rt.GetMessage(context.Background(), m.rec.ID); rec.Status != routing.MsgQueued {
		t.Fatalf("before the validity ends: status %q, want queued", rec.Status)
	}
	now = now.Add(time.Second)
	h.tick()
	for _, tc := range []struct {
		m     *outMsg
		parts []string
	}{
		{m, []string{routing.MsgSent, routing.MsgExpired}},
		{single, []string{routing.MsgExpired}},
	} {
		rec, err := e.rt.GetMessage(context.Background(), tc.m.rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != routing.MsgExpired || rec.Reason != validityExpired || rec.DoneAt == nil {
			t.Errorf("%s: status %q reason %q done_at %v, want expired, %s", rec.ID, rec.Status, rec.Reason, rec.DoneAt, validityExpired)
		}
		for i, want := range tc.parts {
			if rec.Parts[i].Status != want {
				t.Errorf("%s part %d: %q, want %q", rec.ID, i+1, rec.Parts[i].Status, want)
			}
		}
		if has(t, e.db, store.Key(store.PrefixSMSQueue, rec.ID)) {
			t.Errorf("%s: queue row still there", rec.ID)
		}
		if s.active[rec.ID] != nil {
			t.Errorf("%s: still in flight", rec.ID)
		}
	}
	if got := counterValue(t, s.metrics.messages.WithLabelValues(routing.DirectionOut, routing.MsgExpired)); got != 2 {
		t.Errorf("veil_sms_messages_total{status=expired} = %v, want 2", got)
	}
	if got := counterValue(t, s.metrics.partsExpired.WithLabelValues("c1")); got != 2 {
		t.Errorf("veil_sms_parts_expired_total = %v, want 2", got)
	}
	// The bind drops the parts it still had queued.
	b.mu.Lock()
	queued := len(b.fifo)
	b.mu.Unlock()
	if queued != 3 || !m.cancelled.Load() || !single.cancelled.Load() {
		t.Fatalf("bind queue %d, cancelled %v %v; want the 3 dispatched parts, both cancelled", queued, m.cancelled.Load(), single.cancelled.Load())
	}
	// Part 1's receipt still counts: delivered + expired is expired.
	h.receipt("b1", "DELIVRD")
	rec, _ := e.rt.GetMessage(context.Background(), m.rec.ID)
	if rec.Status != routing.MsgExpired || rec.Parts[0].Status != routing.MsgDelivered {
		t.Errorf("after part 1's receipt: status %q part 1 %q, want expired, delivered", rec.Status, rec.Parts[0].Status)
	}

	// A submit in flight at the deadline and accepted after it: the part
	// is on its way (its receipt still counts), the message stays expired.
	h.apply(func(c *commit) { c.s.accept(c, &partJob{m: single, idx: 0}, "b9") })
	rec, _ = e.rt.GetMessage(context.Background(), single.rec.ID)
	if rec.Status != routing.MsgExpired || rec.Parts[0].Status != routing.MsgSent || rec.Parts[0].Error != "" {
		t.Errorf("accepted after expiry: status %q part %+v, want expired with the part sent", rec.Status, rec.Parts[0])
	}

	// Restart: a message queued before the stop and past its validity
	// after it is not submitted again, and ends expired.
	late := h.send(10)
	now = now.Add(validity)
	h2 := newHarness(t, e, configs.SMS{Validity: validity}, &now)
	if n := len(h2.s.binds["c1"].fifo); n != 0 {
		t.Errorf("after the restart %d parts queued for submit, want 0", n)
	}
	if h2.s.active[late.rec.ID] == nil {
		t.Fatal("the queued message was not resumed")
	}
	h2.tick()
	rec, _ = e.rt.GetMessage(context.Background(), late.rec.ID)
	if rec.Status != routing.MsgExpired || has(t, e.db, store.Key(store.PrefixSMSQueue, late.rec.ID)) {
		t.Errorf("resumed message past its validity: status %q, queue row %v; want expired, deleted", rec.Status, has(t, e.db, store.Key(store.PrefixSMSQueue, late.rec.ID)))
	}
	if problems, err := routing.Check(e.db); err != nil || len(problems) != 0 {
		t.Errorf("routing.Check: %v %q", err, problems)
	}
}

// TestReceiptIndexBounded: a part's receipt index rows (dlr/, dlrtime/)
// go in the batch that gives it a final state; those of a part whose
// receipt never comes go sms.receipt_wait (plus at most a bucket) after
// its acceptance; a row that a newer part took over (a carrier reusing an
// id) is not deleted with the old one's time row.
func TestReceiptIndexBounded(t *testing.T) {
	const wait = time.Hour
	e := newEnv(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, e, configs.SMS{ReceiptWait: wait}, &now)
	s := h.s
	rows := func(prefix string) []string {
		t.Helper()
		var out []string
		if err := e.db.Scan([]byte(prefix), nil, func(k, _ []byte) (bool, error) {
			out = append(out, string(k))
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	accept := func(m *outMsg, idx int, id string) {
		t.Helper()
		h.apply(func(c *commit) { c.s.accept(c, &partJob{m: m, idx: idx}, id) })
	}

	delivered, silent, reused := h.send(170), h.send(10), h.send(10)
	accept(delivered, 0, "D1")
	accept(delivered, 1, "d2")
	accept(silent, 0, "5")
	if n, m := len(rows(store.PrefixDLR)), len(rows(store.PrefixDLRTime)); n != 3 || m != 3 {
		t.Fatalf("after 3 acceptances: %d dlr/ and %d dlrtime/ rows, want 3 and 3", n, m)
	}
	// Final receipts: part 1 delivered; part 2 undeliverable. An ENROUTE
	// receipt is not final and keeps the row (so does UNKNOWN, which a
	// later receipt may still settle).
	h.receipt("d1", "DELIVRD")
	h.receipt("5", "ENROUTE")
	h.receipt("D2", "UNDELIV")
	if got := rows(store.PrefixDLR); len(got) != 1 || got[0] != string(store.Key(store.PrefixDLR, "c1", "5")) {
		t.Errorf("dlr/ rows after the final receipts: %q, want only c1/5", got)
	}
	if got := rows(store.PrefixDLRTime); len(got) != 1 {
		t.Errorf("dlrtime/ rows after the final receipts: %q, want 1", got)
	}
	if _, ok := s.dlrIdx["c1/d1"]; ok {
		t.Error("the in-memory index still has the delivered part")
	}
	if rec, _ := e.rt.GetMessage(context.Background(), delivered.rec.ID); rec.Status != routing.MsgFailed {
		t.Errorf("delivered + undeliverable: %q, want failed", rec.Status)
	}

	// Id "5" is reused by the carrier for a newer part a bucket later.
	bucket := time.Duration(1<<dlrBucketBits) * time.Millisecond
	now = now.Add(2 * bucket)
	accept(reused, 0, "5")
	if got := rows(store.PrefixDLRTime); len(got) != 2 {
		t.Fatalf("dlrtime/ rows: %q, want 2", got)
	}
	// receipt_wait after the first acceptance (and a bucket): the old
	// time row goes, the dlr/ row (now the newer part's) stays.
	now = now.Add(wait - bucket)
	h.tick()
	if got := rows(store.PrefixDLRTime); len(got) != 1 {
		t.Errorf("dlrtime/ rows after the wait of the first: %q, want the newer part's", got)
	}
	if v, err := e.db.Get(store.Key(store.PrefixDLR, "c1", "5")); err != nil || string(v) != reused.rec.ID+"/0" {
		t.Errorf("dlr/c1/5 = %q (%v), want the newer part's %s/0", v, err, reused.rec.ID)
	}
	if got := counterValue(t, s.metrics.receiptsMissing.WithLabelValues("c1")); got != 1 {
		t.Errorf("veil_smpp_receipts_missing_total = %v, want 1", got)
	}
	// The newer part's wait ends too; after a restart (the sweep starts
	// again from the oldest row).
	now = now.Add(wait)
	h2 := newHarness(t, e, configs.SMS{ReceiptWait: wait}, &now)
	h2.tick()
	if got, got2 := rows(store.PrefixDLR), rows(store.PrefixDLRTime); len(got) != 0 || len(got2) != 0 {
		t.Errorf("after every wait: dlr/ %q dlrtime/ %q, want none", got, got2)
	}
	// A receipt after that is held, not matched, and changes nothing.
	h2.receipt("5", "DELIVRD")
	if rec, _ := e.rt.GetMessage(context.Background(), reused.rec.ID); rec.Status != routing.MsgSent {
		t.Errorf("a receipt after receipt_wait changed the message to %q", rec.Status)
	}
	if problems, err := routing.Check(e.db); err != nil || len(problems) != 0 {
		t.Errorf("routing.Check: %v %q", err, problems)
	}
}
