package smpp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// gsmExtChars are the characters of the extension table, TS 23.038
// §6.2.1.1, with their codes after the escape.
var gsmExtChars = []struct {
	r    rune
	code byte
}{
	{'\f', 0x0A}, {'^', 0x14}, {'{', 0x28}, {'}', 0x29}, {'\\', 0x2F},
	{'[', 0x3C}, {'~', 0x3D}, {']', 0x3E}, {'|', 0x40}, {'€', 0x65},
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestEncodeGSM(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string // hex, one septet per octet
		wantOK bool
	}{
		{"", "", true},
		{"Hello", "48 65 6C 6C 6F", true},
		{"@£$¥èéùìòÇ\nØø\rÅå", "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F", true},
		{"Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "10 11 12 13 14 15 16 17 18 19 1A 1C 1D 1E 1F", true},
		{" !\"#¤%&'()*+,-./", "20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F", true},
		{"¡ÄÖÑÜ§¿äöñüà", "40 5B 5C 5D 5E 5F 60 7B 7C 7D 7E 7F", true},
		{"€5", "1B 65 35", true},
		{"\f^{}\\[~]|€", "1B0A 1B14 1B28 1B29 1B2F 1B3C 1B3D 1B3E 1B40 1B65", true},
		{"ç", "", false},  // only the capital Ç is in the alphabet
		{"`", "", false},  // the grave accent is not either
		{"a😀", "", false}, // nor anything above the BMP
		{"\x1b", "", false},
		{"ok\xff", "", false}, // invalid UTF-8
	} {
		got, ok := EncodeGSM(tc.in)
		if ok != tc.wantOK || !bytes.Equal(got, mustHex(t, tc.want)) {
			t.Errorf("EncodeGSM(%q) = % X, %v; want %s, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestGSMTables checks that every septet of the default alphabet and every
// code of the extension table decodes to a character that encodes back to
// it, and that the tables hold 127 + 10 distinct characters.
func TestGSMTables(t *testing.T) {
	seen := map[rune]bool{}
	for s := range 128 {
		if s == gsmEscape {
			continue
		}
		text := DecodeGSM([]byte{byte(s)})
		r, _ := utf8.DecodeRuneInString(text)
		if seen[r] {
			t.Errorf("septet 0x%02X decodes to %q, seen before", s, text)
		}
		seen[r] = true
		if got, ok := EncodeGSM(text); !ok || !bytes.Equal(got, []byte{byte(s)}) {
			t.Errorf("septet 0x%02X -> %q -> % X, %v", s, text, got, ok)
		}
	}
	for _, e := range gsmExtChars {
		in := []byte{gsmEscape, e.code}
		text := DecodeGSM(in)
		if text != string(e.r) {
			t.Errorf("DecodeGSM(% X) = %q, want %q", in, text, e.r)
		}
		if seen[e.r] {
			t.Errorf("extension %q also in the default alphabet", e.r)
		}
		seen[e.r] = true
		if got, ok := EncodeGSM(text); !ok || !bytes.Equal(got, in) {
			t.Errorf("EncodeGSM(%q) = % X, %v; want % X", text, got, ok, in)
		}
	}
	if len(seen) != 127+10 {
		t.Errorf("%d characters in the tables, want 137", len(seen))
	}
}

func TestDecodeGSM(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // hex
		want string
	}{
		{"empty", "", ""},
		{"hello", "68 65 6C 6C 6F", "hello"},
		{"euro", "1B 65 31 30", "€10"},
		{"unknown escape shows the base char", "1B 41 1B 61", "Aa"},
		{"escape cr2 shows cr", "1B 0D", "\r"},
		{"double escape is a space", "61 1B 1B 62", "a b"},
		{"lone trailing escape dropped", "61 62 1B", "ab"},
		{"only an escape", "1B", ""},
		{"octet above 0x7F", "61 80 FF", "a\uFFFD\uFFFD"},
		{"escape then octet above 0x7F", "1B E5 62", "\uFFFDb"},
		{"at sign is 0x00", "00 00", "@@"},
	} {
		if got := DecodeGSM(mustHex(t, tc.in)); got != tc.want {
			t.Errorf("%s: DecodeGSM(%s) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestPackSeptetsKnownAnswers uses packed vectors of the literature
// (TS 23.038 §6.1.2.1.1 packing; "hellohello" is the usual example).
func TestPackSeptetsKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		text   string
		packed string
	}{
		{"", ""},
		{"Test", "D4 F2 9C 0E"},
		{"hellohello", "E8 32 9B FD 46 97 D9 EC 37"},
		{"How are you?", "C8 F7 1D 14 96 97 41 F9 77 FD 07"},
		{"1234567", "31 D9 8C 56 B3 DD 00"}, // 7 spare bits, left zero
		{"12345678", "31 D9 8C 56 B3 DD 70"},
	} {
		septets, ok := EncodeGSM(tc.text)
		if !ok {
			t.Fatalf("EncodeGSM(%q) failed", tc.text)
		}
		want := mustHex(t, tc.packed)
		if got := PackSeptets(septets); !bytes.Equal(got, want) {
			t.Errorf("PackSeptets(%q) = % X, want % X", tc.text, got, want)
		}
		if got := UnpackSeptets(want, len(septets)); !bytes.Equal(got, septets) {
			t.Errorf("UnpackSeptets(% X, %d) = % X, want % X", want, len(septets), got, septets)
		}
	}
	// Without the count, 7 spare bits read as one more septet ('@').
	if got := DecodeGSM(UnpackSeptets(mustHex(t, "31 D9 8C 56 B3 DD 00"), -1)); got != "1234567@" {
		t.Errorf("UnpackSeptets(..., -1) decodes to %q, want 1234567@", got)
	}
	if got := UnpackSeptets([]byte{0xE8}, 5); len(got) != 1 || got[0] != 'h' {
		t.Errorf("UnpackSeptets(E8, 5) = % X, want 68 (clamped)", got)
	}
}

func TestPackSeptetsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 38))
	for range 500 {
		septets := make([]byte, rng.IntN(300))
		for i := range septets {
			septets[i] = byte(rng.IntN(128))
		}
		packed := PackSeptets(septets)
		if want := (len(septets)*7 + 7) / 8; len(packed) != want {
			t.Fatalf("%d septets packed into %d octets, want %d", len(septets), len(packed), want)
		}
		if got := UnpackSeptets(packed, len(septets)); !bytes.Equal(got, septets) {
			t.Fatalf("round trip of %d septets differs", len(septets))
		}
	}
}

func TestEncodeUCS2(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", ""},
		{"A", "0041"},
		{"é€", "00E9 20AC"},
		{"Привет", "041F 0440 0438 0432 0435 0442"},
		{"😀", "D83D DE00"},
		{"a𝄞b", "0061 D834 DD1E 0062"},
		{"\U0010FFFF", "DBFF DFFF"},
		{"\xff", "FFFD"},
	} {
		got := EncodeUCS2(tc.in)
		if want := mustHex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("EncodeUCS2(%q) = % X, want % X", tc.in, got, want)
		}
		if !utf8.ValidString(tc.in) {
			continue
		}
		if back, err := DecodeUCS2(got); err != nil || back != tc.in {
			t.Errorf("DecodeUCS2(EncodeUCS2(%q)) = %q, %v", tc.in, back, err)
		}
	}
}

func TestDecodeUCS2(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string // hex
		want    string
		wantErr error
	}{
		{"empty", "", "", nil},
		{"pair", "D83D DE00 0021", "😀!", nil},
		{"lone high at end", "0061 D83D", "a\uFFFD", nil},
		{"lone low", "DE00 0061", "\uFFFDa", nil},
		{"high then non-low", "D83D 0041", "\uFFFDA", nil},
		{"two highs then low", "D83D D83D DE00", "\uFFFD😀", nil},
		{"BOM kept as written", "FEFF 0041", "\uFEFFA", nil},
		{"odd length", "0041 00", "", ErrBadUCS2},
		{"one octet", "41", "", ErrBadUCS2},
	} {
		got, err := DecodeUCS2(mustHex(t, tc.in))
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: DecodeUCS2(%s) = %q, %v; want %q, %v", tc.name, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		dc      byte
		in      string // hex
		want    string
		wantErr error
	}{
		{0x00, "48 69 1B 65", "Hi€", nil},
		{0xF0, "48 69", "Hi", nil},
		{0xF1, "00", "@", nil},
		{0xF2, "1B 3C", "[", nil},
		{0xF3, "61", "a", nil},
		{0x01, "48 69 21", "Hi!", nil},
		{0x01, "48 E9", "H\uFFFD", nil},
		{0x03, "63 61 66 E9 A3", "café£", nil},
		{0x08, "0063 00E9 D83D DE00", "cé😀", nil},
		{0x08, "00 63 00", "", ErrBadUCS2},
		{0x02, "00 01", "", ErrUnsupportedCoding},
		{0x04, "00 01", "", ErrUnsupportedCoding},
		{0x05, "41", "", ErrUnsupportedCoding},
		{0x06, "41", "", ErrUnsupportedCoding},
		{0xF4, "41", "", ErrUnsupportedCoding},
		{0xF7, "41", "", ErrUnsupportedCoding},
		{0x10, "41", "", ErrUnsupportedCoding},
		{0xFF, "41", "", ErrUnsupportedCoding},
	} {
		got, err := Decode(tc.dc, mustHex(t, tc.in))
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("Decode(0x%02X, %s) = %q, %v; want %q, %v", tc.dc, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestErrorsHoldNoText checks that errors name lengths and codes, never
// the user content they were given.
func TestErrorsHoldNoText(t *testing.T) {
	const secret = "SECRET-4711"
	var errs []error
	_, err := Decode(0x04, []byte(secret))
	errs = append(errs, err)
	_, err = DecodeUCS2([]byte(secret))
	errs = append(errs, err)
	_, err = Segment(secret+"\xff", 1, SegmentOptions{})
	errs = append(errs, err)
	_, err = Segment(strings.Repeat(secret, 100), 1, SegmentOptions{MaxParts: 2})
	errs = append(errs, err)
	_, _, err = EncodePayload(strings.Repeat(secret, 7000))
	errs = append(errs, err)
	_, _, err = ParseUDH(append([]byte{0x20}, secret...))
	errs = append(errs, err)
	_, err = ParseReceipt("hello " + secret)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("case %d: error %q quotes the text", i, err)
		}
	}
}

// FuzzDecode feeds any data_coding and octets to Decode: it must not
// panic, must give valid UTF-8, may only fail on an unsupported coding or
// an odd UCS-2 length, and must decode default-alphabet septets without an
// escape losslessly.
func FuzzDecode(f *testing.F) {
	for _, dc := range []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4} {
		f.Add(dc, []byte("Hello \x1b\x65 \x1b\x1b\x1b"))
		f.Add(dc, []byte{0xD8, 0x3D, 0xDE, 0x00, 0xD8, 0x3D})
		f.Add(dc, []byte{0x00, 0x80, 0xFF, 0x1B})
	}
	f.Fuzz(func(t *testing.T, dc byte, b []byte) {
		s, err := Decode(dc, b)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedCoding) && !errors.Is(err, ErrBadUCS2) {
				t.Fatalf("Decode(0x%02X): unexpected error %v", dc, err)
			}
			if errors.Is(err, ErrBadUCS2) && (dc != 0x08 || len(b)%2 == 0) {
				t.Fatalf("Decode(0x%02X, %d octets): %v", dc, len(b), err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(0x%02X) gave invalid UTF-8", dc)
		}
		if dc == 0x08 {
			if back, err := DecodeUCS2(EncodeUCS2(s)); err != nil || back != s {
				t.Fatalf("UCS-2 text does not round-trip")
			}
		}
		if dc != 0x00 || bytes.IndexByte(b, gsmEscape) >= 0 {
			return
		}
		for _, c := range b {
			if c >= 0x80 {
				return
			}
		}
		if back, ok := EncodeGSM(s); !ok || !bytes.Equal(back, b) {
			t.Fatalf("septets do not round-trip: % X -> % X, %v", b, back, ok)
		}
	})
}
