package smpp

import (
	"strconv"
	"strings"
	"time"
)

// State is where a submitted message stands, as a delivery receipt or the
// message_state TLV tells it. The zero value is Unknown.
type State int

// States of a submitted message.
const (
	// Unknown: the carrier said UNKNOWN, or something this package does
	// not recognise. Not final: a later receipt may still settle it.
	Unknown State = iota
	// Pending: accepted or en route (ACCEPTD, ENROUTE). SMPP 3.4 calls
	// ACCEPTED a final state (read on the subscriber's behalf by customer
	// service), but carriers send ACCEPTD as "taken by the network" and
	// follow it with DELIVRD or UNDELIV, so Veil waits for that.
	Pending
	// Delivered: the message reached the handset (DELIVRD). Final.
	Delivered
	// Failed: undeliverable, rejected or deleted (UNDELIV, REJECTD,
	// DELETED). Final.
	Failed
	// Expired: the validity period ran out before delivery (EXPIRED).
	// Final.
	Expired
)

// String returns the state in lower case ("delivered").
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	case Expired:
		return "expired"
	default:
		return "unknown"
	}
}

// Final reports whether no later receipt is expected to change s:
// Delivered, Failed or Expired.
func (s State) Final() bool {
	return s == Delivered || s == Failed || s == Expired
}

// ReceiptState maps the stat field of a delivery receipt (SMPP 3.4
// Appendix B, Table B-2) to a State, ignoring case and surrounding spaces:
// DELIVRD is Delivered; UNDELIV, REJECTD and DELETED are Failed; EXPIRED
// is Expired; ACCEPTD and ENROUTE are Pending; UNKNOWN and anything else
// are Unknown. The spelled-out forms some carriers send (DELIVERED,
// UNDELIVERABLE, REJECTED, ACCEPTED) are taken too.
func ReceiptState(stat string) State {
	stat = strings.TrimSpace(stat)
	var buf [16]byte
	if len(stat) > len(buf) {
		return Unknown
	}
	for i := 0; i < len(stat); i++ {
		c := stat[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(stat)]) {
	case "DELIVRD", "DELIVERED":
		return Delivered
	case "UNDELIV", "UNDELIVERABLE", "REJECTD", "REJECTED", "DELETED":
		return Failed
	case "EXPIRED":
		return Expired
	case "ACCEPTD", "ACCEPTED", "ENROUTE":
		return Pending
	}
	return Unknown
}

// StateFromMessageState maps the message_state TLV of a receipt or a
// query_sm_resp (SMPP 3.4 §5.2.28) to a State: 1 ENROUTE and 6 ACCEPTED
// are Pending, 2 DELIVERED is Delivered, 3 EXPIRED is Expired, 4 DELETED,
// 5 UNDELIVERABLE and 8 REJECTED are Failed, 7 UNKNOWN and any other
// value are Unknown.
func StateFromMessageState(v byte) State {
	switch v {
	case 1, 6:
		return Pending
	case 2:
		return Delivered
	case 3:
		return Expired
	case 4, 5, 8:
		return Failed
	}
	return Unknown
}

// Receipt is a delivery receipt as carried in the short_message (or
// message_payload) of a deliver_sm with the receipt bit of esm_class set,
// in the format of SMPP 3.4 Appendix B:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// A field the receipt lacks is left at its zero value.
type Receipt struct {
	// ID is the message id the SMSC gave in submit_sm_resp, as written
	// (spaces trimmed). Carriers write it in decimal or hex, with or
	// without leading zeros, not always as they wrote it in the
	// response: match it through [IDForms].
	ID string

	// Sub and Dlvrd are the numbers of messages submitted and delivered
	// (0 when missing or not decimal).
	Sub, Dlvrd int

	// SubmitDate and DoneDate are the submit and final-state times,
	// YYMMDDhhmm or YYMMDDhhmmss in the SMSC's local time, whose zone the
	// receipt does not give: they are returned as written, in UTC. A
	// missing or malformed date is the zero time.
	SubmitDate, DoneDate time.Time

	// Stat is the stat field in upper case ("DELIVRD"); State is what it
	// means (see [ReceiptState]).
	Stat  string
	State State

	// Err is the network- or SMSC-specific error code as written
	// ("000").
	Err string

	// Text is the text field: the first characters of the original
	// message. It is user content: never log it.
	Text string
}

// receiptField names the fields ParseReceipt knows.
type receiptField int

const (
	fieldOther receiptField = iota
	fieldID
	fieldSub
	fieldDlvrd
	fieldSubmitDate
	fieldDoneDate
	fieldStat
	fieldErr
	fieldText
)

// fieldOf names the key before a colon; prefix is the bare word before it
// ("submit" of "submit date:"), or "".
func fieldOf(prefix, key string) receiptField {
	eq := strings.EqualFold
	if prefix != "" && eq(key, "date") {
		switch {
		case eq(prefix, "submit"):
			return fieldSubmitDate
		case eq(prefix, "done"):
			return fieldDoneDate
		}
		return fieldOther
	}
	switch {
	case eq(key, "id"):
		return fieldID
	case eq(key, "sub"):
		return fieldSub
	case eq(key, "dlvrd"):
		return fieldDlvrd
	case eq(key, "submit_date"), eq(key, "submitdate"):
		return fieldSubmitDate
	case eq(key, "done_date"), eq(key, "donedate"):
		return fieldDoneDate
	case eq(key, "stat"):
		return fieldStat
	case eq(key, "err"):
		return fieldErr
	case eq(key, "text"):
		return fieldText
	}
	return fieldOther
}

// ParseReceipt parses the text of a delivery receipt (SMPP 3.4 Appendix
// B). It is lenient, as carriers are: keys in any case; "submit date",
// "submit_date" or "submitdate"; fields missing, repeated (the first
// counts), reordered or unknown (vendor fields are skipped); a space after
// the colon; dates of 10 or 12 digits. The text field runs to the end of
// the receipt, since it is the last field and may itself hold spaces and
// colons. Only a text with neither an id nor a stat field is refused, with
// an error wrapping [ErrBadReceipt].
func ParseReceipt(text string) (Receipt, error) {
	var (
		r            Receipt
		seen         [fieldText + 1]bool
		prefix, rest = "", text
	)
	for {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest == "" {
			break
		}
		j := strings.IndexAny(rest, ": \t\r\n")
		if j < 0 {
			break // a bare word at the end
		}
		if rest[j] != ':' {
			prefix, rest = rest[:j], rest[j:]
			continue
		}
		f := fieldOf(prefix, rest[:j])
		prefix, rest = "", rest[j+1:]
		if f == fieldText {
			if !seen[fieldText] {
				r.Text = strings.TrimSpace(rest)
				seen[fieldText] = true
			}
			break
		}
		var v string
		v, rest = receiptValue(rest)
		if f == fieldOther || seen[f] {
			continue
		}
		seen[f] = true
		switch f {
		case fieldID:
			r.ID = v
		case fieldSub:
			r.Sub = atoiOrZero(v)
		case fieldDlvrd:
			r.Dlvrd = atoiOrZero(v)
		case fieldSubmitDate:
			r.SubmitDate = receiptTime(v)
		case fieldDoneDate:
			r.DoneDate = receiptTime(v)
		case fieldStat:
			r.Stat = strings.ToUpper(v)
			r.State = ReceiptState(v)
		case fieldErr:
			r.Err = v
		}
	}
	if r.ID == "" && r.Stat == "" {
		return Receipt{}, wrapf(ErrBadReceipt, "no id or stat field in %d octets", len(text))
	}
	return r, nil
}

// receiptValue reads a field value from s, which starts right after the
// colon: the word up to the next space. When the colon is followed by a
// space, the next word is the value unless it is itself a key ("id: 12").
func receiptValue(s string) (v, rest string) {
	if s != "" && !isSpace(s[0]) {
		return cutWord(s)
	}
	t := strings.TrimLeft(s, " \t\r\n")
	w, after := cutWord(t)
	if w == "" || strings.IndexByte(w, ':') >= 0 {
		return "", t
	}
	return w, after
}

// cutWord splits s at its first space.
func cutWord(s string) (word, rest string) {
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return s[:i], s[i:]
		}
	}
	return s, ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// atoiOrZero reads a small decimal count, 0 when v is not one.
func atoiOrZero(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// receiptTime reads YYMMDDhhmm or YYMMDDhhmmss (years 2000-2099) as a UTC
// time; anything else, an impossible date included, is the zero time.
func receiptTime(v string) time.Time {
	if len(v) != 10 && len(v) != 12 {
		return time.Time{}
	}
	var f [6]int
	for i := 0; i < len(v); i += 2 {
		a, b := v[i], v[i+1]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return time.Time{}
		}
		f[i/2] = int(a-'0')*10 + int(b-'0')
	}
	t := time.Date(2000+f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, time.UTC)
	if t.Month() != time.Month(f[1]) || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return time.Time{} // time.Date normalised an out-of-range field
	}
	return t
}

// IDForms returns the normalised forms under which a carrier message id
// may be matched: carriers often answer submit_sm_resp (SMPP 3.4 §4.4.2)
// with an id in hex and put it in decimal in the receipt, or the other way
// round, with or without leading zeros. The first form is the canonical
// form of id as given: spaces trimmed, lower case, leading zeros stripped
// ("0" if nothing else is left). If that is all decimal digits and fits in
// a uint64, its value in hex follows; if it is all hex digits and fits,
// its value in decimal follows (so a decimal-looking id gets both). Forms
// repeat no earlier one. An empty or all-space id has no forms (nil).
//
// Store a submitted part under every form of its id and look a receipt up
// by the first form of its id (or the other way round): either way an id
// written in hex on one side and in decimal on the other matches. The
// extra forms widen the match, so scope the lookup to the carrier.
func IDForms(id string) []string {
	c := strings.ToLower(strings.TrimSpace(id))
	if c == "" {
		return nil
	}
	c = strings.TrimLeft(c, "0")
	if c == "" {
		c = "0"
	}
	forms := make([]string, 1, 3)
	forms[0] = c
	add := func(f string) {
		for _, g := range forms {
			if g == f {
				return
			}
		}
		forms = append(forms, f)
	}
	if v, ok := parseUint(c, 10); ok {
		add(strconv.FormatUint(v, 16))
	}
	if v, ok := parseUint(c, 16); ok {
		add(strconv.FormatUint(v, 10))
	}
	return forms
}

// parseUint reads s, lower case without leading zeros, as an unsigned
// number in base 10 or 16; ok is false if a character is not a digit of
// the base or the value overflows a uint64. It does not allocate (unlike
// strconv.ParseUint, whose error does).
func parseUint(s string, base uint64) (v uint64, ok bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		var d uint64
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if v > (^uint64(0)-d)/base {
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}
