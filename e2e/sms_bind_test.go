package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSMSTransmitterReceiver: with bind_type transmitter_receiver Veil
// binds twice; MOs come on the receiver, submits go on the transmitter,
// and receipts (which the simulator sends to a receiver, since the
// transmitter cannot take them) still make the message delivered.
func TestSMSTransmitterReceiver(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, ", bind_type: transmitter_receiver", false)
	sim.WaitStats(t, 10*time.Second, "two binds", func(s smscStats) bool { return s.BindsActive == 2 && s.ReceiversActive == 1 })
	text := long2("txrx")
	parts := relay(t, sim, text)
	m := waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
	for i, p := range parts {
		if p.sub.Bind != "veil" || m.Parts[i].CarrierID != deref(p.sub.MessageID) {
			t.Errorf("part %d on bind %q with id %q, record %q", i+1, p.sub.Bind, deref(p.sub.MessageID), m.Parts[i].CarrierID)
		}
	}
	if p1, p2 := parts[0].sub.Conn, parts[1].sub.Conn; p1 != p2 {
		t.Errorf("parts on connections %d and %d, want the transmitter's for both", p1, p2)
	}
}

// TestSMSRateLimit: a carrier with tps 20 gets no more than that: 40
// messages take about two seconds, and a simulator that refuses above 25
// per second never has to.
func TestSMSRateLimit(t *testing.T) {
	sim := startSMSC(t, smscConfig{Config: map[string]any{"max_tps": 25}})
	d, sid := startSMSDaemon(t, sim, ", tps: 20, window: 50", false)
	const n = 40
	start := time.Now()
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("rate limited %02d", i)
		if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: texts[i]}); len(st) != 1 || st[0] != 0 {
			t.Fatalf("MO %d: %v", i, st)
		}
	}
	for _, text := range texts {
		waitOut(t, d, sid, text, "delivered", 15*time.Second, statusIs("delivered"))
	}
	// 40 at 20/s with a burst of 2: at least 1.9 s from the first.
	if took := time.Since(start); took < 1800*time.Millisecond {
		t.Errorf("%d messages went in %s, faster than 20/s", n, took)
	}
	if st := sim.Stats(t); st.Throttled != 0 {
		t.Errorf("the simulator throttled %d submits: more than 25/s went out", st.Throttled)
	}
}

// TestSMSBindRefused: a bind refused for a wrong password is retried with
// backoff, logged with the SMSC's status and never the password, and
// shown down in /metrics; once the SMSC takes the password, Veil binds
// and relays.
func TestSMSBindRefused(t *testing.T) {
	const pw = "Wr0ngPw1"
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemonOpts(t, sim, smsDaemonOpts{Password: pw, NoWaitBind: true})
	sim.WaitStats(t, 10*time.Second, "two refused binds", func(s smscStats) bool { return s.BindFailures >= 2 })
	if v := metricValue(t, d, `veil_smpp_bind_up{carrier="smsc1"}`); v != 0 {
		t.Errorf("veil_smpp_bind_up = %v while refused, want 0", v)
	}
	sim.Config(t, map[string]any{"password": pw})
	sim.WaitStats(t, 15*time.Second, "veild bound", func(s smscStats) bool { return s.BindsActive == 1 })
	text := "bound at last"
	if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text}); len(st) != 1 || st[0] != 0 {
		t.Fatalf("MO: %v", st)
	}
	waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
	if v := metricValue(t, d, `veil_smpp_bind_up{carrier="smsc1"}`); v != 1 {
		t.Errorf("veil_smpp_bind_up = %v once bound, want 1", v)
	}
	logs := d.logs()
	if !strings.Contains(logs, "smpp bind failed") {
		t.Errorf("no bind failure logged:\n%s", logs)
	}
	if strings.Contains(logs, pw) {
		t.Errorf("the SMPP password is in the log:\n%s", logs)
	}
}
