package smpp

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseUDH(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sm       string // hex
		want     UDH
		wantRest string // hex
		wantErr  error
	}{
		{"IEI 00", "050003A70302 4142", UDH{Len: 6, Concat: true, Ref: 0xA7, Total: 3, Seq: 2}, "4142", nil},
		{"IEI 08", "060804BEEF0201 0041", UDH{Len: 7, Concat: true, Ref16: true, Ref: 0xBEEF, Total: 2, Seq: 1}, "0041", nil},
		{"header only", "0500030A0101", UDH{Len: 6, Concat: true, Ref: 10, Total: 1, Seq: 1}, "", nil},
		{"port addressing then IEI 00", "0B 0504 0B84 23F0 0003 11 02 02 61", UDH{Len: 12, Concat: true, Ref: 0x11, Total: 2, Seq: 2}, "61", nil},
		{"IEI 00 then unknown IE", "08 0003 11 02 01 7001 FF 61", UDH{Len: 9, Concat: true, Ref: 0x11, Total: 2, Seq: 1}, "61", nil},
		{"empty IE", "02 2400 61", UDH{Len: 3}, "61", nil},
		{"UDHL 0", "00 6162", UDH{Len: 1}, "6162", nil},
		{"no concatenation IE", "04 0502 1234 61", UDH{Len: 5}, "61", nil},
		{"total 0 is ignored", "050003010001 61", UDH{Len: 6}, "61", nil},
		{"seq 0 is ignored", "050003010200 61", UDH{Len: 6}, "61", nil},
		{"seq above total is ignored", "050003010203 61", UDH{Len: 6}, "61", nil},
		{"repeated: last counts", "0A 0003010201 0003020302 61", UDH{Len: 11, Concat: true, Ref: 2, Total: 3, Seq: 2}, "61", nil},
		{"8-bit then 16-bit: last counts", "0B 0003010201 080412340303 61", UDH{Len: 12, Concat: true, Ref16: true, Ref: 0x1234, Total: 3, Seq: 3}, "61", nil},
		{"ignored repeat keeps the usable one", "0A 0003010201 0003020000 61", UDH{Len: 11, Concat: true, Ref: 1, Total: 2, Seq: 1}, "61", nil},
		{"empty", "", UDH{}, "", ErrBadUDH},
		{"UDHL beyond the message", "05000301", UDH{}, "", ErrBadUDH},
		{"UDHL 255 on a short message", "FF 0003010101", UDH{}, "", ErrBadUDH},
		{"IE header cut off", "01 00 61", UDH{}, "", ErrBadUDH},
		{"IE runs past the header", "04 0003 0102 6162", UDH{}, "", ErrBadUDH},
		{"IE length past the message", "02 00FF", UDH{}, "", ErrBadUDH},
		{"IEI 00 of length 4", "06 0004 01020301 61", UDH{}, "", ErrBadUDH},
		{"IEI 08 of length 3", "05 0803 010201 61", UDH{}, "", ErrBadUDH},
	} {
		u, rest, err := ParseUDH(mustHex(t, tc.sm))
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if u != tc.want || !bytes.Equal(rest, mustHex(t, tc.wantRest)) {
			t.Errorf("%s: ParseUDH = %+v, % X; want %+v, %s", tc.name, u, rest, tc.want, tc.wantRest)
		}
	}
}

// FuzzParseUDH feeds any short message to ParseUDH: it must not panic,
// and what it returns must be consistent with its input.
func FuzzParseUDH(f *testing.F) {
	f.Add([]byte{0x05, 0x00, 0x03, 0xA7, 0x03, 0x02, 'h', 'i'})
	f.Add([]byte{0x06, 0x08, 0x04, 0xBE, 0xEF, 0x02, 0x01, 0x00, 0x41})
	f.Add([]byte{0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x11, 0x02, 0x02, 0x61})
	f.Add([]byte{0x04, 0x00, 0x03, 0x01, 0x02})
	f.Add([]byte{0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sm []byte) {
		u, rest, err := ParseUDH(sm)
		if err != nil {
			if !errors.Is(err, ErrBadUDH) {
				t.Fatalf("error %v does not wrap ErrBadUDH", err)
			}
			if u != (UDH{}) || rest != nil {
				t.Fatalf("error with a result: %+v, % X", u, rest)
			}
			return
		}
		if u.Len < 1 || u.Len > len(sm) || u.Len != 1+int(sm[0]) || !bytes.Equal(rest, sm[u.Len:]) {
			t.Fatalf("Len %d and %d octets left of %d", u.Len, len(rest), len(sm))
		}
		if u.Concat && (u.Total == 0 || u.Seq == 0 || u.Seq > u.Total || (!u.Ref16 && u.Ref > 0xFF)) {
			t.Fatalf("unusable concatenation %+v", u)
		}
		if !u.Concat && (u.Ref != 0 || u.Ref16 || u.Total != 0 || u.Seq != 0) {
			t.Fatalf("concatenation fields without Concat: %+v", u)
		}
	})
}
