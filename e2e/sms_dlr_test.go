package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// long2 is a 2-part GSM text (170 septets) with a tag to tell messages
// apart.
func long2(tag string) string {
	return (tag + " " + strings.Repeat("0123456789", 17))[:170]
}

// relay sends text from A to P at the simulator and waits for its MT to
// B; it returns the parts.
func relay(t *testing.T, sim *smsc, text string) []mtPart {
	t.Helper()
	st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text, Concat: "udh8"})
	for _, s := range st {
		if s != 0 {
			t.Fatalf("deliver_sm_resp statuses %v, want all 0", st)
		}
	}
	return waitMT(t, sim, calleeB, text, 15*time.Second)
}

// TestSMSReceiptAggregation: the receipts of a 2-part message, written by
// the test (deliver_sm with esm_class 0x04 from the simulator), make it
// delivered only once both parts are; the first leaves it sent with one
// part delivered. The receipt ids are the SMSC's hex ids written in
// decimal, and the second receipt's keys are upper case.
func TestSMSReceiptAggregation(t *testing.T) {
	sim := startSMSC(t, smscConfig{Config: map[string]any{"receipts": map[string]any{"enabled": false}}})
	d, sid := startSMSDaemon(t, sim, "", false)
	text := long2("aggregate")
	parts := relay(t, sim, text)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	out := waitOut(t, d, sid, text, "sent with both carrier ids", 10*time.Second, statusIs("sent"))
	ids := make([]string, 2)
	for i, p := range parts {
		hexID := deref(p.sub.MessageID)
		v, err := strconv.ParseUint(hexID, 16, 64)
		if err != nil {
			t.Fatalf("SMSC id %q is not hex: %v", hexID, err)
		}
		ids[i] = strconv.FormatUint(v, 10)
		if out.Parts[i].CarrierID != hexID {
			t.Errorf("part %d carrier id %q, want %q", i+1, out.Parts[i].CarrierID, hexID)
		}
	}
	receipt := func(text string) {
		t.Helper()
		st := sim.MO(t, smscMO{From: calleeB, To: proxyP, Raw: &smscRawMO{ESMClass: 0x04, ShortMessageHex: gsmHex(t, text)}})
		if len(st) != 1 || st[0] != 0 {
			t.Fatalf("receipt deliver_sm_resp %v, want [0]", st)
		}
	}
	// Done dates (minute precision) after the submits: the next two
	// minutes.
	base := time.Now().UTC().Truncate(time.Minute)
	date := func(d time.Duration) string { return base.Add(d).Format("0601021504") }
	receipt("id:" + ids[0] + " sub:001 dlvrd:001 submit date:" + date(0) + " done date:" + date(time.Minute) + " stat:DELIVRD err:000 text:")
	m := waitOut(t, d, sid, text, "part 1 delivered", 10*time.Second, func(m messageRecord) bool { return m.Parts[0].Status == "delivered" })
	if m.Status != "sent" || m.Parts[1].Status != "sent" || m.DoneAt != nil {
		t.Fatalf("after the first receipt: status %q, part 2 %q, done_at %v; want sent, sent, none", m.Status, m.Parts[1].Status, m.DoneAt)
	}
	receipt("ID:" + ids[1] + " SUB:001 DLVRD:001 SUBMIT DATE:" + date(0) + " DONE DATE:" + date(2*time.Minute) + " STAT:DELIVRD ERR:000 TEXT:")
	m = waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
	want := base.Add(2 * time.Minute)
	if m.DoneAt == nil || !m.DoneAt.Equal(want) {
		t.Errorf("done_at %v, want the last part's done date %v; parts %+v", m.DoneAt, want, m.Parts)
	}
	for i, p := range m.Parts {
		if p.Status != "delivered" || p.DoneAt == nil {
			t.Errorf("part %d: %q done %v", i+1, p.Status, p.DoneAt)
		}
	}
}

// TestSMSReceiptFormats: receipts in the forms carriers send (text, TLV
// or both; ids in hex, HEX or decimal on either side; lower case, upper
// case keys; the receipt before the submit_sm_resp) all make a 2-part
// message delivered.
func TestSMSReceiptFormats(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, "", false)
	cases := []struct {
		name string
		cfg  map[string]any
	}{
		{"text hex", map[string]any{"id_format": "hex", "receipt_id_format": "same", "receipts": map[string]any{"mode": "text"}}},
		{"text hex resp, decimal receipt", map[string]any{"id_format": "hex", "receipt_id_format": "decimal", "receipts": map[string]any{"mode": "text"}}},
		{"text decimal resp, HEX receipt", map[string]any{"id_format": "decimal", "receipt_id_format": "HEX", "receipts": map[string]any{"mode": "text"}}},
		{"tlv decimal resp, hex receipt", map[string]any{"id_format": "decimal", "receipt_id_format": "hex", "receipts": map[string]any{"mode": "tlv"}}},
		{"tlv HEX", map[string]any{"id_format": "HEX", "receipt_id_format": "same", "receipts": map[string]any{"mode": "tlv"}}},
		{"both", map[string]any{"id_format": "hex", "receipt_id_format": "decimal", "receipts": map[string]any{"mode": "both"}}},
		{"text lower case", map[string]any{"id_format": "hex", "receipt_id_format": "same", "receipts": map[string]any{"mode": "text", "lowercase": true}}},
		{"text upper case keys", map[string]any{"id_format": "hex", "receipt_id_format": "decimal", "receipts": map[string]any{"mode": "text", "uppercase_keys": true}}},
		// The receipt is written 0 ms after the submit, its resp 300 ms
		// later: Veil holds the receipt and matches it once the resp
		// names the id.
		{"text before resp", map[string]any{"id_format": "hex", "receipt_id_format": "decimal", "resp_delay_ms": 300, "receipts": map[string]any{"mode": "text", "before_resp": true}}},
		{"tlv before resp", map[string]any{"id_format": "decimal", "receipt_id_format": "hex", "resp_delay_ms": 300, "receipts": map[string]any{"mode": "tlv", "before_resp": true}}},
	}
	defaults := map[string]any{"id_format": nil, "receipt_id_format": nil, "resp_delay_ms": nil, "receipts": nil}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim.Config(t, defaults)
			sim.Config(t, tc.cfg)
			text := long2(fmt.Sprintf("format%d", i))
			parts := relay(t, sim, text)
			m := waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
			for j, p := range m.Parts {
				if p.Status != "delivered" || p.CarrierID != deref(parts[j].sub.MessageID) {
					t.Errorf("part %d %q carrier id %q, want delivered with %q", j+1, p.Status, p.CarrierID, deref(parts[j].sub.MessageID))
				}
			}
		})
	}
	if st := sim.Stats(t); st.ReceiptsNacked != 0 {
		t.Errorf("%d receipts answered with an error", st.ReceiptsNacked)
	}
}

// TestSMSReceiptFailures: a part the carrier could not deliver makes the
// whole message failed (with the part's error); an expired destination
// makes it expired.
func TestSMSReceiptFailures(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, "", false)

	t.Run("failed part", func(t *testing.T) {
		sim.Config(t, map[string]any{"receipts": map[string]any{"fail_part": 2}})
		text := long2("failpart")
		relay(t, sim, text)
		m := waitOut(t, d, sid, text, "failed", 10*time.Second, statusIs("failed"))
		// Part 1's receipt may come after the failure; wait for it too.
		m = waitOut(t, d, sid, text, "part 1 delivered", 10*time.Second, func(m messageRecord) bool { return m.Parts[0].Status == "delivered" })
		if m.Status != "failed" || m.Parts[1].Status != "failed" || !strings.Contains(m.Parts[1].Error, "UNDELIV") {
			t.Errorf("status %q, part 2 %q error %q: want failed, failed, UNDELIV", m.Status, m.Parts[1].Status, m.Parts[1].Error)
		}
		sim.Config(t, map[string]any{"receipts": map[string]any{"fail_part": 0}})
	})
	t.Run("expired", func(t *testing.T) {
		sim.Config(t, map[string]any{"receipts": map[string]any{"stat_by_dest": map[string]any{calleeB: "EXPIRED"}}})
		text := "this one expires"
		relay(t, sim, text)
		waitOut(t, d, sid, text, "expired", 10*time.Second, statusIs("expired"))
		sim.Config(t, map[string]any{"receipts": map[string]any{"stat_by_dest": map[string]any{}}})
	})
	t.Run("refused submit", func(t *testing.T) {
		// ESME_RINVDSTADR (0x0B) is permanent: no retry, failed at once.
		sim.Config(t, map[string]any{"throttle": map[string]any{"first": 1, "status": 0x0B}})
		text := "to a bad destination"
		st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text})
		if len(st) != 1 || st[0] != 0 {
			t.Fatalf("deliver_sm_resp %v", st)
		}
		m := waitOut(t, d, sid, text, "failed", 10*time.Second, statusIs("failed"))
		if m.Parts[0].Error == "" {
			t.Errorf("part error empty, want the carrier's status")
		}
		sim.Config(t, map[string]any{"throttle": nil})
	})
}

// TestSMSThrottled: a carrier that throttles (ESME_RTHROTTLED on every
// other submit, and on the first five) slows Veil down but loses nothing:
// every message is accepted once throttling lets it through, and
// delivered.
func TestSMSThrottled(t *testing.T) {
	sim := startSMSC(t, smscConfig{Config: map[string]any{"throttle": map[string]any{"every": 2, "first": 5}}})
	d, sid := startSMSDaemon(t, sim, ", window: 4", false)
	const n = 20
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("throttled message %02d", i)
		if i%5 == 4 {
			texts[i] = long2(fmt.Sprintf("throttled long %02d", i))
		}
		st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: texts[i], Concat: "udh8"})
		for _, s := range st {
			if s != 0 {
				t.Fatalf("MO %d: deliver_sm_resp %v", i, st)
			}
		}
	}
	for _, text := range texts {
		waitMT(t, sim, calleeB, text, 30*time.Second)
		waitOut(t, d, sid, text, "delivered", 15*time.Second, statusIs("delivered"))
	}
	st := sim.Stats(t)
	if st.Throttled < 5 {
		t.Errorf("the simulator throttled %d submits, want at least 5", st.Throttled)
	}
	accepted := 0
	for _, s := range sim.Submits(t, 0) {
		if s.Status == 0 {
			accepted++
		}
	}
	if want := n + n/5; accepted != want {
		t.Errorf("%d submits accepted, want %d (each part once)", accepted, want)
	}
}

// TestSMSBindDropDrains: the SMSC drops the connection (no unbind) while
// submits wait for their responses and refuses binds for a while; Veil
// reconnects with backoff and submits again what was not acknowledged,
// so every message is delivered after the drop.
func TestSMSBindDropDrains(t *testing.T) {
	// Responses held for 10 s: the submits are in flight when the
	// connection goes.
	sim := startSMSC(t, smscConfig{Config: map[string]any{"resp_delay_ms": 10000}})
	d, sid := startSMSDaemon(t, sim, ", window: 20", false)
	const n = 6
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("sent before the drop %d", i)
		if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: texts[i]}); len(st) != 1 || st[0] != 0 {
			t.Fatalf("MO %d: deliver_sm_resp %v", i, st)
		}
	}
	sim.WaitStats(t, 10*time.Second, "submits in flight", func(s smscStats) bool { return s.Submits >= n })
	sim.Config(t, map[string]any{"resp_delay_ms": 0})
	sim.Drop(t, 1500)
	dropped := time.Now()
	// Sent through the API while the bind is down (binds are refused for
	// 1.5 s): queued, and sent once the bind is back.
	downText := "sent while the bind is down"
	var acc struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Parts  int    `json:"parts"`
	}
	d.mustCall("POST", "/v1/messages", map[string]any{"from": proxyP, "to": calleeB, "body": downText}, &acc, http.StatusAccepted)
	if acc.Status != "queued" || acc.Parts != 1 {
		t.Errorf("POST /v1/messages answered %+v, want queued in 1 part", acc)
	}
	for _, text := range texts {
		waitOut(t, d, sid, text, "delivered", 20*time.Second, statusIs("delivered"))
	}
	var down messageRecord
	deadline := time.Now().Add(10 * time.Second)
	for down.Status != "delivered" {
		if time.Now().After(deadline) {
			t.Fatalf("message sent while down: %+v, not delivered", down)
		}
		time.Sleep(20 * time.Millisecond)
		d.mustCall("GET", "/v1/messages/"+acc.ID, nil, &down, http.StatusOK)
	}
	for _, p := range waitMT(t, sim, calleeB, downText, time.Second) {
		if p.sub.Conn < 2 {
			t.Errorf("the message sent while down went on connection %d, before the drop", p.sub.Conn)
		}
	}
	if time.Since(dropped) < 1500*time.Millisecond {
		t.Errorf("delivered %s after the drop, before binds were allowed again", time.Since(dropped))
	}
	st := sim.Stats(t)
	if st.ConnectionsTotal < 2 || st.BindsActive != 1 {
		t.Errorf("connections %d, binds active %d: want a reconnect and one bind", st.ConnectionsTotal, st.BindsActive)
	}
	// What goes after the reconnect goes at once.
	text := "sent after the reconnect"
	if s := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text}); len(s) != 1 || s[0] != 0 {
		t.Fatalf("MO after reconnect: %v", s)
	}
	waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
}
