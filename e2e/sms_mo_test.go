package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// inFor finds the session's inbound message with body text.
func inFor(t *testing.T, d *daemon, sid, text string, timeout time.Duration) messageRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range sessionMessages(t, d, sid) {
			if m.Direction == "in" && m.Body == text {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no inbound message %q in the session after %s: %+v", short(text), timeout, sessionMessages(t, d, sid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSMSMultipartMO: concatenated MOs (UDH with 8-bit and 16-bit
// references, SAR TLVs; GSM and UCS-2; parts out of order) are
// reassembled before the relay: B gets the whole text, and the inbound
// record counts the parts that came.
func TestSMSMultipartMO(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, "", false)
	gsm := strings.Repeat("Parts of a long note from A, in order. ", 9) // 351 septets: 3 parts
	ucs := strings.Repeat("Ünïcödé ✓ \U0001F60A ", 12)                  // 144 units: 3 parts
	cases := []struct {
		name, text, coding, concat string
		order                      []int
		parts                      int
	}{
		{"udh8 gsm", "udh8 " + gsm, "gsm", "udh8", nil, 3},
		{"udh16 gsm reversed", "udh16 " + gsm, "gsm", "udh16", []int{3, 2, 1}, 3},
		{"sar gsm", "sar " + gsm, "gsm", "sar", []int{2, 1, 3}, 3},
		{"udh8 ucs2", "udh8 " + ucs, "ucs2", "udh8", []int{1, 3, 2}, 3},
		{"udh16 ucs2", "udh16 " + ucs, "ucs2", "udh16", nil, 3},
		{"sar ucs2", "sar " + ucs, "ucs2", "sar", []int{3, 1, 2}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: tc.text, Coding: tc.coding, Concat: tc.concat, PartsOrder: tc.order})
			if len(st) != tc.parts {
				t.Fatalf("the simulator sent %d parts, want %d", len(st), tc.parts)
			}
			for _, s := range st {
				if s != 0 {
					t.Fatalf("deliver_sm_resp statuses %v, want all 0", st)
				}
			}
			waitMT(t, sim, calleeB, tc.text, 10*time.Second)
			in := inFor(t, d, sid, tc.text, 10*time.Second)
			if in.Incomplete || len(in.Parts) != tc.parts || in.Status != "received" {
				t.Errorf("inbound record: incomplete %v, %d parts, status %q; want complete, %d, received", in.Incomplete, len(in.Parts), in.Status, tc.parts)
			}
		})
	}
}

// TestSMSReassemblyTimeout: a concatenated MO whose part 2 of 3 never
// comes is relayed after sms.reassembly_timeout with what arrived (parts
// 1 and 3), flagged incomplete.
func TestSMSReassemblyTimeout(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, "", false)
	p1 := strings.Repeat("1", 153)
	p2 := strings.Repeat("2", 153)
	p3 := "the end"
	start := time.Now()
	st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: p1 + p2 + p3, Concat: "udh8", OmitParts: []int{2}})
	if len(st) != 2 || st[0] != 0 || st[1] != 0 {
		t.Fatalf("deliver_sm_resp statuses %v, want [0 0] (part 2 omitted)", st)
	}
	want := p1 + p3
	waitMT(t, sim, calleeB, want, 15*time.Second)
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("relayed after %s, before the 2s reassembly timeout", took)
	}
	in := inFor(t, d, sid, want, 5*time.Second)
	if !in.Incomplete || len(in.Parts) != 2 {
		t.Errorf("inbound record: incomplete %v with %d parts, want incomplete with 2", in.Incomplete, len(in.Parts))
	}
	out := waitOut(t, d, sid, want, "delivered", 10*time.Second, statusIs("delivered"))
	if out.Related != in.ID {
		t.Errorf("relayed message related to %q, want %q", out.Related, in.ID)
	}
}

// TestSMSOutOfSession: an MO from someone without an open session on P is
// answered (stored) but not relayed; when the pair's session was closed it
// is recorded in that session as rejected with the reason; the configured
// auto-reply goes back to the sender from P.
func TestSMSOutOfSession(t *testing.T) {
	const reply = "This number is no longer in use."
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemonOpts(t, sim, smsDaemonOpts{SMS: ", auto_reply: '" + reply + "'"})

	// A stranger (no session at all on P).
	const stranger = "+15550100177"
	if st := sim.MO(t, smscMO{From: stranger, To: proxyP, Text: "hello, who is this?"}); len(st) != 1 || st[0] != 0 {
		t.Fatalf("deliver_sm_resp %v, want [0]", st)
	}
	parts := waitMT(t, sim, stranger, reply, 10*time.Second)
	if parts[0].sub.SourceAddr != digits(proxyP) {
		t.Errorf("auto-reply from %q, want P", parts[0].sub.SourceAddr)
	}

	// A's session closed: A's message is recorded there, rejected.
	d.mustCall("POST", "/v1/sessions/"+sid+"/close", nil, nil, http.StatusOK)
	text := "are you still there?"
	if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text}); len(st) != 1 || st[0] != 0 {
		t.Fatalf("deliver_sm_resp %v, want [0]", st)
	}
	in := inFor(t, d, sid, text, 10*time.Second)
	if in.Status != "rejected" || in.Reason != "session_closed" {
		t.Errorf("inbound record status %q reason %q, want rejected, session_closed", in.Status, in.Reason)
	}
	waitMT(t, sim, callerA, reply, 10*time.Second)
	ar := waitOut(t, d, sid, reply, "the auto-reply delivered", 10*time.Second, statusIs("delivered"))
	if ar.Origin != "auto_reply" || ar.Related != in.ID || in.Related != ar.ID {
		t.Errorf("auto-reply origin %q related %q (inbound %q related %q): want auto_reply, linked both ways", ar.Origin, ar.Related, in.ID, in.Related)
	}
	if strings.Contains(in.From, digits(callerA)) {
		t.Errorf("full number in the record: %q", in.From)
	}
	for _, s := range sim.Submits(t, 0) {
		if s.DestinationAddr == digits(calleeB) {
			t.Errorf("a message reached B: %x", s.ShortMessage)
		}
	}
	if n := metricValue(t, d, `veil_smpp_inbound_total{carrier="smsc1",result="rejected"}`); n != 2 {
		t.Errorf("veil_smpp_inbound_total rejected = %v, want 2", n)
	}
	if strings.Contains(d.logs(), digits(stranger)) || strings.Contains(d.logs(), "who is this") {
		t.Errorf("the log holds a full number or the text:\n%s", d.logs())
	}
}
