package smpp

import (
	"errors"
	"fmt"
)

// Errors of the codec layer (text encodings, segmentation, user data
// headers, delivery receipts). Errors returned by this package wrap one of
// them with a detail that names lengths, offsets and code values only,
// never the message text, which is private user content.
var (
	// ErrUnsupportedCoding reports a data_coding value (SMPP 3.4 §5.2.19)
	// that [Decode] does not turn into text: 8-bit binary (2, 4, 0xF4-0xF7),
	// the national and Japanese/Korean codings (5-7, 9-14), and reserved
	// values. A mobile-originated message with such a coding is not
	// relayed.
	ErrUnsupportedCoding = errors.New("unsupported data_coding")

	// ErrTooLong reports text that does not fit: more concatenated parts
	// than [Segment] may produce (255, the most a user data header can
	// number, TS 23.040 §9.2.3.24.1, or [SegmentOptions.MaxParts]), or more
	// than [MaxPayload] octets for the message_payload TLV.
	ErrTooLong = errors.New("message too long")

	// ErrBadText reports text to encode that is not valid UTF-8. Nothing
	// is guessed: the caller has to hand over real text.
	ErrBadText = errors.New("text is not valid UTF-8")

	// ErrBadUCS2 reports UCS-2/UTF-16BE user data with an odd number of
	// octets (TS 23.038 §6.2.3), which no sender produces on purpose.
	ErrBadUCS2 = errors.New("bad UCS-2 user data")

	// ErrBadUDH reports a user data header (TS 23.040 §9.2.3.24) that does
	// not fit its short message: an empty message with UDHI set, a UDHL
	// beyond the end of the message, an information element running past
	// the header, or a concatenation element of the wrong length.
	ErrBadUDH = errors.New("bad user data header")

	// ErrBadReceipt reports a delivery receipt text (SMPP 3.4 Appendix B)
	// with neither an id nor a stat field: it is not a receipt.
	ErrBadReceipt = errors.New("bad delivery receipt")
)

// wrapf wraps a sentinel with a detail message (lengths, offsets, codes;
// never message text).
func wrapf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Errors of the service (sending, binds).
var (
	// ErrBadSender: the from of an outbound message is neither a proxy
	// number in the pool nor a configured sender id.
	ErrBadSender = errors.New("from is not a proxy number or a configured sender id")
	// ErrBadDestination: the to of an outbound message is not an E.164
	// number.
	ErrBadDestination = errors.New("to is not an E.164 number")
	// ErrDestinationIsProxy: the to of an outbound message is a proxy
	// number of the pool (the message would come back as an inbound one).
	ErrDestinationIsProxy = errors.New("to is a proxy number of the pool")
	// ErrEmptyBody: an outbound message without text.
	ErrEmptyBody = errors.New("message body is empty")
	// ErrNoRoute: no carrier with an SMPP bind carries messages to the
	// destination.
	ErrNoRoute = errors.New("no SMPP carrier routes to the destination")
	// ErrClosed: the service is shutting down and takes no new messages.
	ErrClosed = errors.New("SMS service is shutting down")
	// ErrNoCACert: a carrier's smpp tls_ca file holds no PEM certificate.
	ErrNoCACert = errors.New("no PEM certificate in the file")
)
