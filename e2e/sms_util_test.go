package e2e

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// Helpers of the SMS tests that read what reached the simulator with their
// own decoders (user data header, GSM 03.38, UCS-2): written here, apart
// from Veil's codec and the simulator's, so that the test shares the bugs
// of neither.

// mtPart is one submit_sm as the test reads it.
type mtPart struct {
	sub   smscSubmit
	ref   int // concatenation reference; -1 when not concatenated
	total int
	seq   int
	iei   int    // 0x00 (8-bit reference) or 0x08 (16-bit); -1 when none
	ud    []byte // the user data after the header
}

// readMT parses a submit_sm's user data header, if esm_class says there is
// one (UDHI, 0x40; TS 23.040 §9.2.3.24).
func readMT(t *testing.T, s smscSubmit) mtPart {
	t.Helper()
	p := mtPart{sub: s, ref: -1, iei: -1, ud: s.ShortMessage}
	if s.ESMClass&0x40 == 0 {
		return p
	}
	sm := s.ShortMessage
	if len(sm) < 1 || int(sm[0])+1 > len(sm) {
		t.Fatalf("submit %d: UDHI set but short_message %x has no header", s.Seq, sm)
	}
	hdr := sm[1 : 1+int(sm[0])]
	p.ud = sm[1+int(sm[0]):]
	for len(hdr) >= 2 {
		iei, l := hdr[0], int(hdr[1])
		if 2+l > len(hdr) {
			t.Fatalf("submit %d: header %x runs past its length", s.Seq, sm)
		}
		v := hdr[2 : 2+l]
		switch {
		case iei == 0x00 && l == 3:
			p.iei, p.ref, p.total, p.seq = int(iei), int(v[0]), int(v[1]), int(v[2])
		case iei == 0x08 && l == 4:
			p.iei, p.ref, p.total, p.seq = int(iei), int(v[0])<<8|int(v[1]), int(v[2]), int(v[3])
		}
		hdr = hdr[2+l:]
	}
	return p
}

// decodeUCS2ForTest reads UTF-16BE; a lone surrogate becomes U+FFFD.
func decodeUCS2ForTest(t *testing.T, b []byte) string {
	t.Helper()
	if len(b)%2 != 0 {
		t.Fatalf("UCS-2 user data of odd length %d", len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(u))
}

// decodePart decodes one part's user data on its own: a part that ends in
// the middle of an escape or a surrogate pair fails the test.
func decodePart(t *testing.T, p mtPart) string {
	t.Helper()
	switch p.sub.DataCoding {
	case 0:
		if n := len(p.ud); n > 0 && p.ud[n-1] == 0x1b {
			t.Errorf("part %d/%d ends with the escape 0x1B: an escape pair was split", p.seq, p.total)
		}
		return decodeGSMForTest(p.ud)
	case 8:
		if n := len(p.ud); n >= 2 {
			if last := uint16(p.ud[n-2])<<8 | uint16(p.ud[n-1]); last >= 0xD800 && last <= 0xDBFF {
				t.Errorf("part %d/%d ends with the high surrogate %04X: a surrogate pair was split", p.seq, p.total, last)
			}
		}
		if len(p.ud) >= 2 {
			if first := uint16(p.ud[0])<<8 | uint16(p.ud[1]); first >= 0xDC00 && first <= 0xDFFF {
				t.Errorf("part %d/%d starts with the low surrogate %04X", p.seq, p.total, first)
			}
		}
		return decodeUCS2ForTest(t, p.ud)
	}
	t.Fatalf("submit %d: data_coding %d, want 0 or 8", p.sub.Seq, p.sub.DataCoding)
	return ""
}

// mtMessage collects the accepted submits (status 0) to dst whose
// reassembled text is want, checking the concatenation: one reference,
// total parts, seq 1..total each once, and the same data_coding. It
// returns the parts in order, or nil if no message to dst has that text.
func mtMessage(t *testing.T, subs []smscSubmit, dst, want string) []mtPart {
	t.Helper()
	single := map[int][]mtPart{} // ref -> parts (-1 for single parts)
	for _, s := range subs {
		if s.Status != 0 || s.DestinationAddr != digits(dst) {
			continue
		}
		p := readMT(t, s)
		if p.ref < 0 {
			if decodePart(t, p) == want {
				return []mtPart{p}
			}
			continue
		}
		single[p.ref] = append(single[p.ref], p)
	}
	for _, parts := range single {
		sort.Slice(parts, func(i, j int) bool { return parts[i].seq < parts[j].seq })
		// A resubmitted part (after a drop) may be there twice: keep one.
		var uniq []mtPart
		for _, p := range parts {
			if len(uniq) == 0 || uniq[len(uniq)-1].seq != p.seq {
				uniq = append(uniq, p)
			}
		}
		var sb strings.Builder
		for _, p := range uniq {
			sb.WriteString(decodePart(t, p))
		}
		if sb.String() != want {
			continue
		}
		for i, p := range uniq {
			if p.seq != i+1 || p.total != len(uniq) || p.sub.DataCoding != uniq[0].sub.DataCoding || p.iei != uniq[0].iei {
				t.Errorf("part %d: seq %d/%d coding %d iei %d: want seq %d/%d, the same coding and header as part 1", i, p.seq, p.total, p.sub.DataCoding, p.iei, i+1, len(uniq))
			}
		}
		return uniq
	}
	return nil
}

// waitMT polls the simulator until the message to dst with text want has
// arrived whole, and returns its parts.
func waitMT(t *testing.T, sim *smsc, dst, want string, timeout time.Duration) []mtPart {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if parts := mtMessage(t, sim.Submits(t, 0), dst, want); parts != nil {
			return parts
		}
		if time.Now().After(deadline) {
			subs := sim.Submits(t, 0)
			var seen []string
			for _, s := range subs {
				seen = append(seen, fmt.Sprintf("#%d to %s dc %d esm %#x status %d sm %x", s.Seq, s.DestinationAddr, s.DataCoding, s.ESMClass, s.Status, s.ShortMessage))
			}
			t.Fatalf("no MT to %s with text %q within %s; submits:\n%s", dst, want, timeout, strings.Join(seen, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionMessages is the messages among a session's interactions.
func sessionMessages(t *testing.T, d *daemon, sid string) []messageRecord {
	t.Helper()
	var list struct {
		Interactions []struct {
			Kind    string         `json:"kind"`
			Message *messageRecord `json:"message"`
		} `json:"interactions"`
	}
	d.mustCall("GET", "/v1/sessions/"+sid+"/interactions", nil, &list, http.StatusOK)
	var msgs []messageRecord
	for _, it := range list.Interactions {
		if it.Kind == "message" && it.Message != nil {
			msgs = append(msgs, *it.Message)
		}
	}
	return msgs
}

// waitOut waits until the session's outbound message with body text
// satisfies cond, and returns it.
func waitOut(t *testing.T, d *daemon, sid, text, what string, timeout time.Duration, cond func(messageRecord) bool) messageRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var last *messageRecord
		for _, m := range sessionMessages(t, d, sid) {
			if m.Direction == "out" && m.Body == text {
				last = &m
				if cond(m) {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbound message %q: %s not reached in %s; last record %+v", short(text), what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusIs is a waitOut condition.
func statusIs(st string) func(messageRecord) bool {
	return func(m messageRecord) bool { return m.Status == st }
}

func short(s string) string {
	if r := []rune(s); len(r) > 24 {
		return string(r[:24]) + "..."
	}
	return s
}

// gsmHex encodes ASCII letters, digits, space and ':' (the same code
// points in GSM 03.38) as unpacked septets in hex: what a receipt's text
// looks like on the wire.
func gsmHex(t *testing.T, s string) string {
	t.Helper()
	for _, c := range s {
		if !(c == ' ' || c == ':' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			t.Fatalf("gsmHex: %q is not a shared character", c)
		}
	}
	return hex.EncodeToString([]byte(s))
}
