package smpp

import (
	"unicode/utf8"

	"github.com/linxGnu/gosmpp/data"
)

// This file holds the text codings of short_message and message_payload:
// the GSM 7 bit default alphabet of 3GPP TS 23.038 §6.2.1 with its
// extension table (§6.2.1.1), UCS-2/UTF-16BE (§6.2.3), and the IA5 and
// Latin-1 codings SMPP 3.4 §5.2.19 adds for data_coding 1 and 3.
//
// Veil does not use gosmpp's data.GSM7BIT and data.UCS2 codings (only its
// data_coding constants): its GSM 7 decoder fails on an unknown or trailing
// escape where TS 23.038 §6.2.1.1 shows the base character, and its
// splitters count runes, not septets or UTF-16 units, so an extension
// character or an emoji overflows a part.

// gsmEscape is the septet that escapes to the extension table
// (TS 23.038 §6.2.1, 0x1B).
const gsmEscape = 0x1B

// gsmBasic is the GSM 7 bit default alphabet, TS 23.038 §6.2.1, indexed by
// septet. Entry 0x1B is the escape to gsmExt; it never decodes on its own.
var gsmBasic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExt is the default alphabet extension table, TS 23.038 §6.2.1.1,
// indexed by the septet that follows the escape; 0 marks no character.
var gsmExt = [128]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

// A gsmCode is how a rune encodes: the high byte is the number of septets
// (0: not representable, 1: default alphabet, 2: escape + extension), the
// low byte the septet (after the escape for two).
type gsmCode uint16

// gsmLatin indexes the runes below U+0100; gsmOther the few above (the
// Greek capitals and the euro sign). Both are built from the tables above.
var gsmLatin, gsmOther = buildGSMIndex()

func buildGSMIndex() (latin [256]gsmCode, other map[rune]gsmCode) {
	other = make(map[rune]gsmCode)
	put := func(r rune, c gsmCode) {
		if r < 256 {
			latin[r] = c
		} else {
			other[r] = c
		}
	}
	for s, r := range gsmBasic {
		if s != gsmEscape {
			put(r, 1<<8|gsmCode(s))
		}
	}
	for s, r := range gsmExt {
		if r != 0 {
			put(r, 2<<8|gsmCode(s))
		}
	}
	return latin, other
}

// gsmLookup returns how r encodes in the default alphabet.
func gsmLookup(r rune) gsmCode {
	if r >= 0 && r < 256 {
		return gsmLatin[r]
	}
	return gsmOther[r]
}

// gsmSeptets counts the septets of s in the default alphabet, an extension
// character counting two (TS 23.038 §6.2.1.1); ok is false if a rune (or an
// invalid UTF-8 byte) is not representable.
func gsmSeptets(s string) (n int, ok bool) {
	for _, r := range s {
		c := gsmLookup(r)
		if c == 0 {
			return 0, false
		}
		n += int(c >> 8)
	}
	return n, true
}

// appendGSM appends the septets of s, which gsmSeptets accepted.
func appendGSM(dst []byte, s string) []byte {
	for _, r := range s {
		c := gsmLookup(r)
		if c>>8 == 2 {
			dst = append(dst, gsmEscape)
		}
		dst = append(dst, byte(c))
	}
	return dst
}

// EncodeGSM encodes s in the GSM 7 bit default alphabet and its extension
// table (3GPP TS 23.038 §6.2.1, §6.2.1.1), one septet per octet: the
// unpacked form SMPP carries in short_message with data_coding 0
// (SMPP 3.4 §5.2.19). An extension character (^ { } \ [ ] ~ | € and form
// feed) takes two septets, the escape 0x1B and its code. ok is false, and
// b nil, if s holds a rune the alphabet cannot represent or is not valid
// UTF-8.
func EncodeGSM(s string) (b []byte, ok bool) {
	n, ok := gsmSeptets(s)
	if !ok {
		return nil, false
	}
	return appendGSM(make([]byte, 0, n), s), true
}

// DecodeGSM decodes unpacked GSM 7 bit septets, one per octet (3GPP
// TS 23.038 §6.2.1), the short_message of data_coding 0 and 0xF0-0xF3.
// It never fails:
//   - an escape followed by a code the extension table does not define
//     decodes as that code's default-alphabet character, as TS 23.038
//     §6.2.1.1 has a receiver display it;
//   - two escapes decode as a space: §6.2.1.1 reserves 0x1B for a further
//     extension table and has a receiver display a space meanwhile;
//   - a lone escape at the end is dropped;
//   - an octet above 0x7F, which is no septet, decodes as U+FFFD.
func DecodeGSM(b []byte) string {
	out := make([]byte, 0, len(b)+len(b)/2)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 0x80:
			out = utf8.AppendRune(out, utf8.RuneError)
			continue
		case c != gsmEscape:
			out = utf8.AppendRune(out, gsmBasic[c])
			continue
		}
		i++
		if i == len(b) {
			break
		}
		switch e := b[i]; {
		case e >= 0x80:
			out = utf8.AppendRune(out, utf8.RuneError)
		case e == gsmEscape:
			out = append(out, ' ')
		case gsmExt[e] != 0:
			out = utf8.AppendRune(out, gsmExt[e])
		default:
			out = utf8.AppendRune(out, gsmBasic[e])
		}
	}
	return string(out)
}

// PackSeptets packs septets (one per octet, the high bit ignored) into
// octets the way the air interface carries them, 3GPP TS 23.038 §6.1.2.1.1:
// septet i starts at bit 7*i, least significant bit first, and 8 septets
// fill 7 octets. Spare bits at the end are zero (no CR padding: the SMS
// user data length gives the septet count). SMPP sends unpacked septets;
// this is for tests and for carriers that want data_coding 0 packed.
func PackSeptets(septets []byte) []byte {
	out := make([]byte, (len(septets)*7+7)/8)
	for i, s := range septets {
		s &= 0x7F
		bit := 7 * i
		o, sh := bit/8, uint(bit%8)
		out[o] |= s << sh
		if sh > 1 {
			out[o+1] |= s >> (8 - sh)
		}
	}
	return out
}

// UnpackSeptets is the inverse of [PackSeptets]: it returns n septets,
// one per octet, from packed octets (3GPP TS 23.038 §6.1.2.1.1). n is
// needed because the packing is ambiguous when the last octet has 7 spare
// bits; a negative n, or one larger than the octets hold, means as many as
// fit (len(packed)*8/7, which then reads those spare bits as an '@').
func UnpackSeptets(packed []byte, n int) []byte {
	if most := len(packed) * 8 / 7; n < 0 || n > most {
		n = most
	}
	out := make([]byte, n)
	for i := range out {
		bit := 7 * i
		o, sh := bit/8, uint(bit%8)
		v := packed[o] >> sh
		if sh > 1 {
			v |= packed[o+1] << (8 - sh)
		}
		out[i] = v & 0x7F
	}
	return out
}

// ucs2Units counts the UTF-16 code units of s: two for a rune above
// U+FFFF, one otherwise (an invalid UTF-8 byte counts as U+FFFD).
func ucs2Units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// appendUCS2 appends s as UTF-16BE.
func appendUCS2(dst []byte, s string) []byte {
	for _, r := range s {
		if r > 0xFFFF {
			r -= 0x10000
			hi, lo := 0xD800+(r>>10), 0xDC00+(r&0x3FF)
			dst = append(dst, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
			continue
		}
		dst = append(dst, byte(r>>8), byte(r))
	}
	return dst
}

// EncodeUCS2 encodes s as UTF-16BE, the UCS-2 of data_coding 8 (SMPP 3.4
// §5.2.19, 3GPP TS 23.038 §6.2.3): two octets per character, and a
// surrogate pair (four octets) for a rune above U+FFFF, which handsets
// have long read as UTF-16. An invalid UTF-8 byte encodes as U+FFFD.
func EncodeUCS2(s string) []byte {
	return appendUCS2(make([]byte, 0, 2*ucs2Units(s)), s)
}

// DecodeUCS2 decodes UTF-16BE user data (data_coding 8, 3GPP TS 23.038
// §6.2.3), joining surrogate pairs. A lone surrogate decodes as U+FFFD. An
// odd number of octets is an error wrapping [ErrBadUCS2].
func DecodeUCS2(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", wrapf(ErrBadUCS2, "odd length %d", len(b))
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case u < 0xD800 || u > 0xDFFF:
			out = utf8.AppendRune(out, u)
		case u <= 0xDBFF && i+3 < len(b):
			lo := rune(b[i+2])<<8 | rune(b[i+3])
			if lo < 0xDC00 || lo > 0xDFFF {
				out = utf8.AppendRune(out, utf8.RuneError)
				continue
			}
			out = utf8.AppendRune(out, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
			i += 2
		default:
			out = utf8.AppendRune(out, utf8.RuneError)
		}
	}
	return string(out), nil
}

// decodeIA5 decodes IA5 (ITU-T T.50, i.e. ASCII), data_coding 1; an octet
// above 0x7F decodes as U+FFFD.
func decodeIA5(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x80 {
			out = utf8.AppendRune(out, utf8.RuneError)
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// decodeLatin1 decodes ISO-8859-1, data_coding 3: each octet is the code
// point of the same value.
func decodeLatin1(b []byte) string {
	out := make([]byte, 0, len(b)+len(b)/2)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return string(out)
}

// Decode turns the user data of a mobile-originated short_message (its UDH
// already removed, see [ParseUDH]) or message_payload into text by its
// data_coding (SMPP 3.4 §5.2.19):
//
//	0x00       SMSC default alphabet, taken as GSM 7 bit unpacked ([DecodeGSM])
//	0x01       IA5 / ASCII (octets above 0x7F become U+FFFD)
//	0x03       Latin-1, ISO-8859-1
//	0x08       UCS-2, read as UTF-16BE ([DecodeUCS2])
//	0xF0-0xF3  GSM 7 bit with message class 0-3 (TS 23.038 §4, coding group 1111)
//
// Any other value, 8-bit binary (2, 4, 0xF4-0xF7) among them, gives an
// error wrapping [ErrUnsupportedCoding]. The only other error is an odd
// UCS-2 length ([ErrBadUCS2]). Decode never panics.
func Decode(dataCoding byte, b []byte) (string, error) {
	switch {
	case dataCoding == data.GSM7BITCoding, dataCoding >= 0xF0 && dataCoding <= 0xF3:
		return DecodeGSM(b), nil
	case dataCoding == data.ASCIICoding:
		return decodeIA5(b), nil
	case dataCoding == data.LATIN1Coding:
		return decodeLatin1(b), nil
	case dataCoding == data.UCS2Coding:
		return DecodeUCS2(b)
	}
	return "", wrapf(ErrUnsupportedCoding, "data_coding 0x%02x", dataCoding)
}
