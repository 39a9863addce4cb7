package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestSMSEncodings: MOs from A to P relayed to B are encoded and split as
// GSM 03.38 or UCS-2, with concatenation headers that carry one reference
// and number the parts, never splitting an escape pair (extension
// characters) or a surrogate pair (emoji); the text read back by the
// test's own decoder equals the text A sent.
func TestSMSEncodings(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, "", false)

	// 200 GSM characters, no extension characters: 153 + 47 septets.
	gsm200 := strings.Repeat("Meet at the north gate, bring the keys. ", 5)
	if len(gsm200) != 200 {
		t.Fatalf("test text is %d characters", len(gsm200))
	}
	cases := []struct {
		name   string
		text   string
		coding string // the MO's coding at the simulator
		concat string // the MO's concatenation at the simulator
		dc     int    // the MT's data_coding
		parts  int
		// firstLen is the user data length of part 1 (septets or octets),
		// 0 to skip the check.
		firstLen int
	}{
		{"gsm 200 characters in 2 parts", gsm200, "gsm", "udh8", 0, 2, 153},
		{"emoji as ucs2", "See you at 5 \U0001F44D ok?", "ucs2", "none", 8, 1, 0},
		// 66 units, then a surrogate pair that would end at unit 68: part 1
		// must stop at 66 units (132 octets) rather than cut the pair.
		{"surrogate pair at the 67-unit boundary", strings.Repeat("x", 66) + "\U0001F600 and the rest of it", "ucs2", "udh8", 8, 2, 132},
		// 152 septets, then an escape pair that would end at septet 154:
		// part 1 must stop at 152.
		{"euro sign at the 153-septet boundary", strings.Repeat("a", 152) + "€ is the price, okay?", "gsm", "udh8", 0, 2, 152},
		// 151 septets, then '{' as septets 152-153: it fits part 1 whole.
		{"brace ending part 1", strings.Repeat("b", 151) + "{code} next", "gsm", "udh8", 0, 2, 153},
		// 167 extension characters, 334 septets: 76 pairs a part.
		{"extension characters only", strings.Repeat("[]", 80) + "~|^\\€{}", "gsm", "udh8", 0, 3, 152},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: tc.text, Coding: tc.coding, Concat: tc.concat})
			for i, s := range st {
				if s != 0 {
					t.Fatalf("deliver_sm_resp statuses %v, want all 0 (part %d)", st, i+1)
				}
			}
			parts := waitMT(t, sim, calleeB, tc.text, 10*time.Second)
			if len(parts) != tc.parts {
				t.Fatalf("MT in %d parts, want %d", len(parts), tc.parts)
			}
			for _, p := range parts {
				if p.sub.DataCoding != tc.dc {
					t.Errorf("part %d data_coding %d, want %d", p.seq, p.sub.DataCoding, tc.dc)
				}
				if p.sub.SourceAddr != digits(proxyP) || p.sub.RegisteredDelivery&1 != 1 {
					t.Errorf("part %d from %q registered_delivery %d, want from P and a receipt asked", p.seq, p.sub.SourceAddr, p.sub.RegisteredDelivery)
				}
				// 140 octets: 160 septets (one an octet, unpacked, as SMPP
				// carries data_coding 0) or 70 UCS-2 units, header included.
				if limit := map[int]int{0: 160, 8: 140}[tc.dc]; len(p.sub.ShortMessage) > limit {
					t.Errorf("part %d short_message %d octets, more than %d", p.seq, len(p.sub.ShortMessage), limit)
				}
				if p.sub.Concat == nil && tc.parts > 1 {
					t.Errorf("part %d: the simulator saw no concatenation", p.seq)
				} else if tc.parts > 1 && (p.sub.Concat.Ref != p.ref || p.sub.Concat.Seq != p.seq || p.sub.Concat.Total != p.total) {
					t.Errorf("part %d: the simulator read the header as %+v, the test as ref %d seq %d/%d", p.seq, *p.sub.Concat, p.ref, p.seq, p.total)
				}
			}
			if tc.parts > 1 {
				if parts[0].sub.ESMClass&0x40 == 0 || parts[0].iei < 0 {
					t.Errorf("part 1 esm_class %#x, header IEI %#x: want UDHI and a concatenation element", parts[0].sub.ESMClass, parts[0].iei)
				}
				if tc.firstLen > 0 && len(parts[0].ud) != tc.firstLen {
					t.Errorf("part 1 user data is %d long, want %d", len(parts[0].ud), tc.firstLen)
				}
			}
			if tc.dc == 8 && strings.ContainsRune(tc.text, '\U0001F44D') {
				if !strings.Contains(string(parts[0].ud), "\xd8\x3d\xdc\x4d") {
					t.Errorf("UCS-2 user data %x lacks the surrogate pair D83D DC4D", parts[0].ud)
				}
			}
			out := waitOut(t, d, sid, tc.text, "delivered", 10*time.Second, statusIs("delivered"))
			if len(out.Parts) != tc.parts {
				t.Errorf("record has %d parts, want %d", len(out.Parts), tc.parts)
			}
			for i, p := range out.Parts {
				if i < len(parts) && p.CarrierID != deref(parts[i].sub.MessageID) {
					t.Errorf("record part %d carrier id %q, the SMSC's %q", i+1, p.CarrierID, deref(parts[i].sub.MessageID))
				}
			}
			wantEnc := map[int]string{0: "gsm7", 8: "ucs2"}[tc.dc]
			if out.Encoding != wantEnc {
				t.Errorf("record encoding %q, want %q", out.Encoding, wantEnc)
			}
		})
	}
}

// TestSMSMessagePayload: a carrier configured for message_payload gets a
// long text whole in the TLV (SMPP 3.4 §5.3.2.32), with an empty
// short_message and no concatenation.
func TestSMSMessagePayload(t *testing.T) {
	sim := startSMSC(t, smscConfig{})
	d, sid := startSMSDaemon(t, sim, ", message_payload: true", false)
	cases := []struct {
		name, text, coding string
		dc                 int
	}{
		{"gsm", strings.Repeat("A long text in one payload {ok}. ", 10), "gsm", 0},
		{"ucs2", strings.Repeat("Ünïcödé \U0001F60A ", 20), "ucs2", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			since := sim.SubmitCount(t)
			if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: tc.text, Coding: tc.coding, Concat: "udh8"}); len(st) < 2 {
				t.Fatalf("MO in %d parts, want a concatenated one", len(st))
			}
			out := waitOut(t, d, sid, tc.text, "delivered", 10*time.Second, statusIs("delivered"))
			subs := sim.Submits(t, since)
			if len(subs) != 1 || len(out.Parts) != 1 {
				t.Fatalf("%d submits, %d parts in the record; want 1 and 1", len(subs), len(out.Parts))
			}
			s := subs[0]
			if len(s.ShortMessage) != 0 || s.Concat != nil || s.ESMClass&0x40 != 0 || s.DataCoding != tc.dc {
				t.Errorf("short_message %x concat %v esm_class %#x data_coding %d: want empty, none, no UDHI, %d", s.ShortMessage, s.Concat, s.ESMClass, s.DataCoding, tc.dc)
			}
			got := ""
			if tc.dc == 0 {
				got = decodeGSMForTest(s.MessagePayload)
			} else {
				got = decodeUCS2ForTest(t, s.MessagePayload)
			}
			if got != tc.text {
				t.Errorf("message_payload reads %q, want %q", got, tc.text)
			}
		})
	}
}
