package smpp

import (
	"unicode/utf8"

	"github.com/linxGnu/gosmpp/data"
)

// Sizes of one short message. The air interface carries 140 octets of user
// data (3GPP TS 23.040 §9.2.3.16): 160 packed septets or 70 UCS-2 units.
// A concatenated part gives up 6 octets to the header of an 8-bit
// reference (UDHL + IEI 0x00 + length + 3 octets, §9.2.3.24.1) or 7 to one
// of a 16-bit reference (§9.2.3.24.8), and a GSM part must start on a
// septet boundary (§9.2.3.24), which leaves floor((140-6)*8/7) = 153 or
// floor((140-7)*8/7) = 152 septets, and 67 or 66 UCS-2 units.
const (
	singleSeptets   = 160
	singleUnits     = 70
	concat8Septets  = 153
	concat16Septets = 152
	concat8Units    = 67
	concat16Units   = 66

	// maxParts is the most parts a concatenation header can number
	// (TS 23.040 §9.2.3.24.1: one octet).
	maxParts = 255
)

// MaxPayload is the most octets [EncodePayload] produces: the
// message_payload TLV has a 16-bit length (SMPP 3.4 §5.3.2.32).
const MaxPayload = 65535

// UDH lengths, the UDHL octet included.
const (
	udhLen8  = 6
	udhLen16 = 7
)

// SegmentOptions tunes [Segment]. The zero value means 8-bit references
// and up to 255 parts.
type SegmentOptions struct {
	// Ref16 numbers the parts with a 16-bit reference, IEI 0x08
	// (3GPP TS 23.040 §9.2.3.24.8), which leaves 152 septets or 66 UCS-2
	// units per part. By default the reference is 8-bit, IEI 0x00
	// (§9.2.3.24.1), with 153 septets or 67 units per part, and only the
	// low byte of the reference is sent.
	Ref16 bool

	// MaxParts is the most parts one text may take; a text needing more
	// fails with ErrTooLong. 0, or anything above 255, means 255, the most
	// a concatenation header can number.
	MaxParts int
}

// Encoded is a text ready for submit_sm (SMPP 3.4 §4.4.1): its coding and
// one short_message per part.
type Encoded struct {
	// DataCoding is the data_coding of every part (SMPP 3.4 §5.2.19):
	// 0, the SMSC default alphabet sent as unpacked GSM 7 bit septets
	// (3GPP TS 23.038 §6.2.1), or 8, UCS-2 sent as UTF-16BE (§6.2.3).
	DataCoding byte

	// UDHI reports that every part starts with a user data header, so
	// each submit_sm must set the UDHI bit of esm_class, 0x40
	// (data.SM_UDH_GSM, SMPP 3.4 §5.2.12). It is false for a single part.
	UDHI bool

	// Parts are the short_message fields in order: the user data header
	// (if UDHI) and the payload, one septet per octet for coding 0 or
	// UTF-16BE for coding 8. They share one backing array, each capped at
	// its own end, so appending to one never touches the next.
	Parts [][]byte

	// Units is the length of the whole text without headers: septets for
	// coding 0 (an extension character counts two) or UTF-16 code units
	// for coding 8 (a rune above U+FFFF counts two).
	Units int
}

// Segment encodes text for submit_sm. It uses data_coding 0 (GSM 7 bit
// default alphabet and extension table, 3GPP TS 23.038 §6.2.1) when every
// character is in them, else data_coding 8 (UCS-2/UTF-16BE). Up to 160
// septets or 70 units make one part without a header. A longer text is
// split into concatenated parts (TS 23.040 §9.2.3.24.1 or, with
// opt.Ref16, §9.2.3.24.8), each with a header carrying ref, the part count
// and the part's 1-based number; ref should differ between the concurrent
// long messages to one recipient. A part never ends inside an escape
// sequence, which §9.2.3.24.1 forbids splitting, nor inside a surrogate
// pair.
//
// Segment fails with ErrBadText if text is not valid UTF-8 and with
// ErrTooLong if it needs more than opt.MaxParts (255) parts. An empty text
// is one empty part.
func Segment(text string, ref uint16, opt SegmentOptions) (Encoded, error) {
	if !utf8.ValidString(text) {
		return Encoded{}, wrapf(ErrBadText, "%d octets", len(text))
	}
	limit := opt.MaxParts
	if limit <= 0 || limit > maxParts {
		limit = maxParts
	}

	var (
		enc     Encoded
		payload []byte
		perPart int
	)
	if n, ok := gsmSeptets(text); ok {
		enc = Encoded{DataCoding: data.GSM7BITCoding, Units: n}
		if n <= singleSeptets {
			enc.Parts = [][]byte{appendGSM(make([]byte, 0, n), text)}
			return enc, nil
		}
		perPart = concat8Septets
		if opt.Ref16 {
			perPart = concat16Septets
		}
		if err := checkParts(n, perPart, limit); err != nil {
			return Encoded{}, err
		}
		payload = appendGSM(make([]byte, 0, n), text)
	} else {
		n := ucs2Units(text)
		enc = Encoded{DataCoding: data.UCS2Coding, Units: n}
		if n <= singleUnits {
			enc.Parts = [][]byte{appendUCS2(make([]byte, 0, 2*n), text)}
			return enc, nil
		}
		perPart = concat8Units
		if opt.Ref16 {
			perPart = concat16Units
		}
		if err := checkParts(n, perPart, limit); err != nil {
			return Encoded{}, err
		}
		payload = appendUCS2(make([]byte, 0, 2*n), text)
	}

	// Cut points, in payload octets, then the parts.
	cuts := cutPoints(payload, enc.DataCoding, perPart)
	if len(cuts) > limit {
		return Encoded{}, wrapf(ErrTooLong, "%d units need %d parts, more than %d", enc.Units, len(cuts), limit)
	}
	hlen := udhLen8
	if opt.Ref16 {
		hlen = udhLen16
	}
	buf := make([]byte, 0, len(cuts)*hlen+len(payload))
	enc.UDHI = true
	enc.Parts = make([][]byte, len(cuts))
	from := 0
	for i, to := range cuts {
		start := len(buf)
		if opt.Ref16 {
			buf = append(buf, udhLen16-1, data.UDH_CONCAT_MSG_16_BIT_REF, 4, byte(ref>>8), byte(ref))
		} else {
			buf = append(buf, udhLen8-1, data.UDH_CONCAT_MSG_8_BIT_REF, 3, byte(ref))
		}
		buf = append(buf, byte(len(cuts)), byte(i+1))
		buf = append(buf, payload[from:to]...)
		enc.Parts[i] = buf[start:len(buf):len(buf)]
		from = to
	}
	return enc, nil
}

// checkParts fails early, before encoding, when n units cannot fit in
// limit parts of perPart units even without the cuts moved back to keep
// escapes and surrogate pairs whole.
func checkParts(n, perPart, limit int) error {
	if least := (n + perPart - 1) / perPart; least > limit {
		return wrapf(ErrTooLong, "%d units need at least %d parts, more than %d", n, least, limit)
	}
	return nil
}

// cutPoints returns the end offset of each part in payload. A GSM part
// that would end on an escape (which only ever starts a pair in what
// appendGSM writes) ends one septet early; a UCS-2 part that would end on
// a high surrogate ends one unit early.
func cutPoints(payload []byte, coding byte, perPart int) []int {
	width := 1
	if coding == data.UCS2Coding {
		width = 2
	}
	step := perPart * width
	cuts := make([]int, 0, (len(payload)+step-1)/step+1)
	for from := 0; from < len(payload); {
		to := from + step
		if to >= len(payload) {
			cuts = append(cuts, len(payload))
			break
		}
		if width == 1 && payload[to-1] == gsmEscape {
			to--
		} else if width == 2 && payload[to-2] >= 0xD8 && payload[to-2] <= 0xDB {
			to -= 2
		}
		cuts = append(cuts, to)
		from = to
	}
	return cuts
}

// EncodePayload encodes text whole for the message_payload TLV (SMPP 3.4
// §5.3.2.32), which needs no segmentation: data_coding 0 with unpacked
// GSM 7 bit septets when every character is in the default alphabet or
// its extension table, else data_coding 8 with UTF-16BE, as in [Segment].
// It fails with ErrBadText if text is not valid UTF-8 and with ErrTooLong
// above [MaxPayload] octets.
func EncodePayload(text string) (dataCoding byte, payload []byte, err error) {
	if !utf8.ValidString(text) {
		return 0, nil, wrapf(ErrBadText, "%d octets", len(text))
	}
	if n, ok := gsmSeptets(text); ok {
		if n > MaxPayload {
			return 0, nil, wrapf(ErrTooLong, "%d septets, more than %d", n, MaxPayload)
		}
		return data.GSM7BITCoding, appendGSM(make([]byte, 0, n), text), nil
	}
	n := ucs2Units(text)
	if 2*n > MaxPayload {
		return 0, nil, wrapf(ErrTooLong, "%d UCS-2 octets, more than %d", 2*n, MaxPayload)
	}
	return data.UCS2Coding, appendUCS2(make([]byte, 0, 2*n), text), nil
}
