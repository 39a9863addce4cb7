package smpp

import "github.com/linxGnu/gosmpp/data"

// UDH is what [ParseUDH] reads from a user data header (3GPP TS 23.040
// §9.2.3.24): its length and the concatenation information element, the
// only one Veil acts on. The zero value is a message that is not part of a
// concatenated one.
type UDH struct {
	// Len is the length of the header in octets, the UDHL octet
	// included.
	Len int

	// Concat reports a usable concatenation element: IEI 0x00, 8-bit
	// reference (§9.2.3.24.1), or IEI 0x08, 16-bit reference
	// (§9.2.3.24.8). Ref, Ref16, Total and Seq are only set with it.
	Concat bool

	// Ref16 reports that the reference came from IEI 0x08 (16 bits)
	// rather than IEI 0x00 (8 bits). A reassembler keys parts by both,
	// since an 8-bit and a 16-bit reference of the same value are
	// different messages.
	Ref16 bool

	// Ref is the concatenated short message reference number, the same
	// in every part of one message.
	Ref uint16

	// Total is the number of parts of the message, 1 to 255.
	Total uint8

	// Seq is the 1-based number of this part, 1 to Total.
	Seq uint8
}

// ParseUDH splits sm, the short_message of a deliver_sm whose esm_class
// has the UDHI bit (0x40, SMPP 3.4 §5.2.12) set, into its user data header
// and the user data that follows (a subslice of sm, not a copy).
//
// Information elements other than concatenation are skipped. When a
// concatenation element repeats, or both IEI 0x00 and 0x08 appear, the
// last usable one counts (TS 23.040 §9.2.3.24 has the last occurrence of a
// duplicated or mutually exclusive element win). A
// concatenation element with a part count of 0, a part number of 0 or a
// part number above the count is ignored, as §9.2.3.24.1 tells the
// receiver to do: the message is then taken as not concatenated (Concat
// false) rather than refused.
//
// An empty sm, a UDHL beyond the end of sm, an element running past the
// header, or a concatenation element whose length is not 3 (IEI 0x00) or
// 4 (IEI 0x08) is an error wrapping [ErrBadUDH]. ParseUDH never panics.
func ParseUDH(sm []byte) (UDH, []byte, error) {
	if len(sm) == 0 {
		return UDH{}, nil, wrapf(ErrBadUDH, "empty short message")
	}
	udhl := int(sm[0])
	if 1+udhl > len(sm) {
		return UDH{}, nil, wrapf(ErrBadUDH, "UDHL %d beyond the %d octets after it", udhl, len(sm)-1)
	}
	u := UDH{Len: 1 + udhl}
	h := sm[1 : 1+udhl]
	for i := 0; i < len(h); {
		if i+2 > len(h) {
			return UDH{}, nil, wrapf(ErrBadUDH, "element at offset %d cut off by the header end", 1+i)
		}
		iei, iedl := h[i], int(h[i+1])
		if i+2+iedl > len(h) {
			return UDH{}, nil, wrapf(ErrBadUDH, "element 0x%02x at offset %d runs %d octets past the header", iei, 1+i, i+2+iedl-len(h))
		}
		d := h[i+2 : i+2+iedl]
		switch iei {
		case data.UDH_CONCAT_MSG_8_BIT_REF:
			if iedl != 3 {
				return UDH{}, nil, wrapf(ErrBadUDH, "concatenation element of length %d, not 3", iedl)
			}
			u.setConcat(false, uint16(d[0]), d[1], d[2])
		case data.UDH_CONCAT_MSG_16_BIT_REF:
			if iedl != 4 {
				return UDH{}, nil, wrapf(ErrBadUDH, "concatenation element of length %d, not 4", iedl)
			}
			u.setConcat(true, uint16(d[0])<<8|uint16(d[1]), d[2], d[3])
		}
		i += 2 + iedl
	}
	return u, sm[1+udhl:], nil
}

// setConcat records a concatenation element unless §9.2.3.24.1 says to
// ignore it (count 0, number 0 or number above count).
func (u *UDH) setConcat(ref16 bool, ref uint16, total, seq uint8) {
	if total == 0 || seq == 0 || seq > total {
		return
	}
	u.Concat, u.Ref16, u.Ref, u.Total, u.Seq = true, ref16, ref, total, seq
}
