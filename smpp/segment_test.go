package smpp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// reassemble checks the parts of enc the way a receiving SMSC or handset
// would (headers, numbering, sizes, no split escape or surrogate pair)
// and returns the decoded text.
func reassemble(tb testing.TB, enc Encoded, opt SegmentOptions) string {
	tb.Helper()
	if enc.DataCoding != 0 && enc.DataCoding != 8 {
		tb.Fatalf("data_coding %d", enc.DataCoding)
	}
	if len(enc.Parts) == 0 {
		tb.Fatalf("no parts")
	}
	if enc.UDHI != (len(enc.Parts) > 1) {
		tb.Fatalf("UDHI %v with %d parts", enc.UDHI, len(enc.Parts))
	}
	width, perPart := 1, singleSeptets
	if enc.DataCoding == 8 {
		width, perPart = 2, singleUnits
	}
	if enc.UDHI {
		switch {
		case width == 1 && opt.Ref16:
			perPart = concat16Septets
		case width == 1:
			perPart = concat8Septets
		case opt.Ref16:
			perPart = concat16Units
		default:
			perPart = concat8Units
		}
	}
	var all []byte
	var ref uint16
	for i, p := range enc.Parts {
		payload := p
		if enc.UDHI {
			u, rest, err := ParseUDH(p)
			if err != nil {
				tb.Fatalf("part %d: %v", i+1, err)
			}
			if !u.Concat || u.Ref16 != opt.Ref16 || int(u.Total) != len(enc.Parts) || int(u.Seq) != i+1 {
				tb.Fatalf("part %d: header %+v of %d parts", i+1, u, len(enc.Parts))
			}
			if i == 0 {
				ref = u.Ref
			} else if u.Ref != ref {
				tb.Fatalf("part %d: ref %d, part 1 had %d", i+1, u.Ref, ref)
			}
			payload = rest
		}
		if len(payload) > perPart*width || len(payload)%width != 0 {
			tb.Fatalf("part %d: %d octets of payload, limit %d units of %d", i+1, len(payload), perPart, width)
		}
		if len(enc.Parts) > 1 && len(payload) == 0 {
			tb.Fatalf("part %d: empty", i+1)
		}
		if i < len(enc.Parts)-1 && len(payload) > 0 {
			if width == 1 && payload[len(payload)-1] == gsmEscape {
				tb.Fatalf("part %d ends inside an escape sequence", i+1)
			}
			if width == 2 && payload[len(payload)-2]&0xFC == 0xD8 {
				tb.Fatalf("part %d ends inside a surrogate pair", i+1)
			}
		}
		// Each part must decode on its own too: nothing is split.
		if _, err := Decode(enc.DataCoding, payload); err != nil {
			tb.Fatalf("part %d: %v", i+1, err)
		}
		all = append(all, payload...)
	}
	if len(all) != enc.Units*width {
		tb.Fatalf("%d payload octets, Units %d", len(all), enc.Units)
	}
	text, err := Decode(enc.DataCoding, all)
	if err != nil {
		tb.Fatalf("decoding the reassembled text: %v", err)
	}
	return text
}

// partUnits returns the payload units of each part.
func partUnits(tb testing.TB, enc Encoded) []int {
	tb.Helper()
	var n []int
	for _, p := range enc.Parts {
		payload := p
		if enc.UDHI {
			_, rest, err := ParseUDH(p)
			if err != nil {
				tb.Fatal(err)
			}
			payload = rest
		}
		if enc.DataCoding == 8 {
			n = append(n, len(payload)/2)
		} else {
			n = append(n, len(payload))
		}
	}
	return n
}

func TestSegmentSizes(t *testing.T) {
	a, zh := "a", "ж"
	for _, tc := range []struct {
		name   string
		text   string
		ref16  bool
		dc     byte
		units  int
		splits []int
	}{
		{"empty", "", false, 0, 0, []int{0}},
		{"160 septets", strings.Repeat(a, 160), false, 0, 160, []int{160}},
		{"161 septets", strings.Repeat(a, 161), false, 0, 161, []int{153, 8}},
		{"161 septets ref16", strings.Repeat(a, 161), true, 0, 161, []int{152, 9}},
		{"80 euros are 160 septets", strings.Repeat("€", 80), false, 0, 160, []int{160}},
		{"159 + euro is 161 septets", strings.Repeat(a, 159) + "€", false, 0, 161, []int{153, 8}},
		{"306 septets", strings.Repeat(a, 306), false, 0, 306, []int{153, 153}},
		{"307 septets", strings.Repeat(a, 307), false, 0, 307, []int{153, 153, 1}},
		{"70 units", strings.Repeat(zh, 70), false, 8, 70, []int{70}},
		{"71 units", strings.Repeat(zh, 71), false, 8, 71, []int{67, 4}},
		{"71 units ref16", strings.Repeat(zh, 71), true, 8, 71, []int{66, 5}},
		{"35 emoji are 70 units", strings.Repeat("😀", 35), false, 8, 70, []int{70}},
		{"one non-GSM char makes it UCS-2", strings.Repeat(a, 69) + "ç", false, 8, 70, []int{70}},
		{"emoji switches a GSM text to UCS-2", strings.Repeat(a, 100) + "😀", false, 8, 102, []int{67, 35}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := SegmentOptions{Ref16: tc.ref16}
			enc, err := Segment(tc.text, 0x1234, opt)
			if err != nil {
				t.Fatal(err)
			}
			if enc.DataCoding != tc.dc || enc.Units != tc.units {
				t.Errorf("data_coding %d, %d units; want %d, %d", enc.DataCoding, enc.Units, tc.dc, tc.units)
			}
			if got := partUnits(t, enc); fmt.Sprint(got) != fmt.Sprint(tc.splits) {
				t.Errorf("parts of %v units, want %v", got, tc.splits)
			}
			if got := reassemble(t, enc, opt); got != tc.text {
				t.Errorf("reassembled text differs")
			}
		})
	}
}

func TestSegmentHeaders(t *testing.T) {
	text := strings.Repeat("x", 200)
	enc, err := Segment(text, 0x1234, SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{{0x05, 0x00, 0x03, 0x34, 2, 1}, {0x05, 0x00, 0x03, 0x34, 2, 2}} {
		if got := enc.Parts[i][:6]; !bytes.Equal(got, want) {
			t.Errorf("8-bit part %d header % X, want % X", i+1, got, want)
		}
	}
	enc, err = Segment(text, 0x1234, SegmentOptions{Ref16: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{{0x06, 0x08, 0x04, 0x12, 0x34, 2, 1}, {0x06, 0x08, 0x04, 0x12, 0x34, 2, 2}} {
		if got := enc.Parts[i][:7]; !bytes.Equal(got, want) {
			t.Errorf("16-bit part %d header % X, want % X", i+1, got, want)
		}
	}
	// Parts are capped: appending to one leaves the next alone.
	second := append([]byte(nil), enc.Parts[1]...)
	_ = append(enc.Parts[0], 0xEE)
	if !bytes.Equal(enc.Parts[1], second) {
		t.Errorf("appending to part 1 changed part 2")
	}
}

// TestSegmentEscapeAtBoundary puts every extension character across and
// beside the last septet of a part, with 8- and 16-bit references.
func TestSegmentEscapeAtBoundary(t *testing.T) {
	for _, ref16 := range []bool{false, true} {
		per := concat8Septets
		if ref16 {
			per = concat16Septets
		}
		for _, e := range gsmExtChars {
			for _, at := range []int{per - 2, per - 1, per} {
				text := strings.Repeat("a", at) + string(e.r) + strings.Repeat("b", 40)
				opt := SegmentOptions{Ref16: ref16}
				enc, err := Segment(text, 7, opt)
				if err != nil {
					t.Fatal(err)
				}
				wantFirst := at + 2 // the pair fits
				if at == per-1 {
					wantFirst = per - 1 // it would straddle: moved whole to part 2
				} else if at == per {
					wantFirst = per
				}
				got := partUnits(t, enc)
				if enc.DataCoding != 0 || got[0] != wantFirst {
					t.Errorf("ref16=%v %q at septet %d: data_coding %d, parts %v; want first part %d",
						ref16, e.r, at, enc.DataCoding, got, wantFirst)
				}
				if reassemble(t, enc, opt) != text {
					t.Errorf("ref16=%v %q at septet %d: reassembled text differs", ref16, e.r, at)
				}
			}
		}
	}
}

// TestSegmentSurrogateAtBoundary puts an emoji across and beside the last
// unit of a part.
func TestSegmentSurrogateAtBoundary(t *testing.T) {
	for _, ref16 := range []bool{false, true} {
		per := concat8Units
		if ref16 {
			per = concat16Units
		}
		for _, at := range []int{per - 2, per - 1, per} {
			text := strings.Repeat("ж", at) + "😀" + strings.Repeat("я", 20)
			opt := SegmentOptions{Ref16: ref16}
			enc, err := Segment(text, 9, opt)
			if err != nil {
				t.Fatal(err)
			}
			wantFirst := min(at+2, per)
			if at == per-1 {
				wantFirst = per - 1
			}
			if got := partUnits(t, enc); enc.DataCoding != 8 || got[0] != wantFirst {
				t.Errorf("ref16=%v emoji at unit %d: data_coding %d, parts %v; want first part %d",
					ref16, at, enc.DataCoding, got, wantFirst)
			}
			if reassemble(t, enc, opt) != text {
				t.Errorf("ref16=%v emoji at unit %d: reassembled text differs", ref16, at)
			}
		}
	}
}

func TestSegmentErrors(t *testing.T) {
	// 255 full parts fit; one septet more does not.
	enc, err := Segment(strings.Repeat("a", 255*concat8Septets), 1, SegmentOptions{})
	if err != nil || len(enc.Parts) != 255 {
		t.Errorf("255 full parts: %d parts, %v", len(enc.Parts), err)
	}
	for _, tc := range []struct {
		name string
		text string
		opt  SegmentOptions
		want error
	}{
		{"256 parts", strings.Repeat("a", 255*concat8Septets+1), SegmentOptions{}, ErrTooLong},
		{"256 parts ref16", strings.Repeat("a", 255*concat16Septets+1), SegmentOptions{Ref16: true}, ErrTooLong},
		{"256 UCS-2 parts", strings.Repeat("ж", 255*concat8Units+1), SegmentOptions{}, ErrTooLong},
		// 76 euros (152 septets) fill each 153-septet part: the count only
		// shows once the cuts are known.
		{"256 parts after keeping escapes whole", strings.Repeat("€", 255*76+1), SegmentOptions{}, ErrTooLong},
		{"MaxParts", strings.Repeat("a", 3*concat8Septets+1), SegmentOptions{MaxParts: 3}, ErrTooLong},
		{"MaxParts 1", strings.Repeat("a", 161), SegmentOptions{MaxParts: 1}, ErrTooLong},
		{"invalid UTF-8", "abc\xc3", SegmentOptions{}, ErrBadText},
		{"lone surrogate in UTF-8", "a\xed\xa0\x80", SegmentOptions{}, ErrBadText},
	} {
		if _, err := Segment(tc.text, 1, tc.opt); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if enc, err := Segment(strings.Repeat("a", 3*concat8Septets), 1, SegmentOptions{MaxParts: 3}); err != nil || len(enc.Parts) != 3 {
		t.Errorf("3 parts with MaxParts 3: %d parts, %v", len(enc.Parts), err)
	}
	if enc, err := Segment(strings.Repeat("a", 255*concat8Septets), 1, SegmentOptions{MaxParts: 1000}); err != nil || len(enc.Parts) != 255 {
		t.Errorf("MaxParts above 255 should mean 255: %d parts, %v", len(enc.Parts), err)
	}
}

// randomText draws a text of n runes from the default alphabet, its
// extension table and, if wide, beyond (Cyrillic, CJK, combining marks,
// emoji and other runes above U+FFFF).
func randomText(rng *rand.Rand, n int, wide bool) string {
	const (
		gsm   = "abcXYZ0189 @£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà"
		ext   = "^{}\\[~]|€\f"
		other = "çжあ한\u0301\u200d\uFEFF😀🇫🇷𝄞\U0010FFFF"
	)
	pools := [][]rune{[]rune(gsm), []rune(ext)}
	if wide {
		pools = append(pools, []rune(other))
	}
	var b strings.Builder
	for range n {
		pool := pools[0]
		if x := rng.IntN(10); x < 3 {
			pool = pools[1]
		} else if x < 5 && wide {
			pool = pools[2]
		}
		b.WriteRune(pool[rng.IntN(len(pool))])
	}
	return b.String()
}

// TestSegmentRoundTrip is a property test: random texts, fixed seed,
// segmented with both references and reassembled, give the text back.
func TestSegmentRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 1))
	for i := range 600 {
		n := rng.IntN(700)
		if i%50 == 0 {
			n = rng.IntN(6000)
		}
		text := randomText(rng, n, i%2 == 1)
		opt := SegmentOptions{Ref16: rng.IntN(2) == 0}
		ref := uint16(rng.Uint32())
		enc, err := Segment(text, ref, opt)
		if err != nil {
			t.Fatalf("case %d (%d runes): %v", i, n, err)
		}
		if got := reassemble(t, enc, opt); got != text {
			t.Fatalf("case %d (%d runes): reassembled text differs", i, n)
		}
		if enc.UDHI {
			u, _, _ := ParseUDH(enc.Parts[0])
			want := ref
			if !opt.Ref16 {
				want &= 0xFF
			}
			if u.Ref != want {
				t.Fatalf("case %d: ref %d, want %d", i, u.Ref, want)
			}
		}
		dc, payload, err := EncodePayload(text)
		if err != nil || dc != enc.DataCoding {
			t.Fatalf("case %d: EncodePayload data_coding %d, %v; Segment chose %d", i, dc, err, enc.DataCoding)
		}
		if back, err := Decode(dc, payload); err != nil || back != text {
			t.Fatalf("case %d: payload does not round-trip: %v", i, err)
		}
	}
}

func TestEncodePayload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		dc      byte
		octets  int
		wantErr error
	}{
		{"empty", "", 0, 0, nil},
		{"GSM with escapes", "a{b}", 0, 6, nil},
		{"UCS-2", "жя😀", 8, 8, nil},
		{"65535 septets", strings.Repeat("a", 65535), 0, 65535, nil},
		{"65536 septets", strings.Repeat("a", 65534) + "€", 0, 0, ErrTooLong},
		{"32767 units", strings.Repeat("ж", 32767), 8, 65534, nil},
		{"32768 units", strings.Repeat("ж", 32768), 0, 0, ErrTooLong},
		{"invalid UTF-8", "\xff", 0, 0, ErrBadText},
	} {
		dc, b, err := EncodePayload(tc.text)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if err == nil && (dc != tc.dc || len(b) != tc.octets) {
			t.Errorf("%s: data_coding %d, %d octets; want %d, %d", tc.name, dc, len(b), tc.dc, tc.octets)
		}
	}
}

// FuzzSegmentRoundTrip segments any text: valid UTF-8 must come back from
// its reassembled parts unchanged, or fail cleanly with ErrTooLong;
// anything else must fail with ErrBadText.
func FuzzSegmentRoundTrip(f *testing.F) {
	f.Add("hello", uint16(1), false, uint8(0))
	f.Add(strings.Repeat("a", 152)+"€"+strings.Repeat("b", 200), uint16(300), false, uint8(0))
	f.Add(strings.Repeat("a", 151)+"{"+strings.Repeat("b", 200), uint16(300), true, uint8(0))
	f.Add(strings.Repeat("ж", 66)+"😀"+strings.Repeat("я", 100), uint16(65535), false, uint8(3))
	f.Add(strings.Repeat("ж", 65)+"😀"+strings.Repeat("я", 100), uint16(0), true, uint8(0))
	f.Add("bad \xff utf-8", uint16(2), false, uint8(0))
	f.Fuzz(func(t *testing.T, text string, ref uint16, ref16 bool, maxParts uint8) {
		opt := SegmentOptions{Ref16: ref16, MaxParts: int(maxParts)}
		enc, err := Segment(text, ref, opt)
		if !utf8.ValidString(text) {
			if !errors.Is(err, ErrBadText) {
				t.Fatalf("invalid UTF-8: %v, want ErrBadText", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if maxParts > 0 && len(enc.Parts) > int(maxParts) {
			t.Fatalf("%d parts, MaxParts %d", len(enc.Parts), maxParts)
		}
		if got := reassemble(t, enc, opt); got != text {
			t.Fatalf("reassembled text differs")
		}
	})
}
