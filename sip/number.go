package sip

import (
	"fmt"
	"strings"

	"github.com/veilgw/veil/routing"
)

// Number formats for numbers written toward a carrier; the values of
// configs.CarrierSIP.NumberFormat.
const (
	// NumberFormatE164 writes "+15550100101".
	NumberFormatE164 = "e164"
	// NumberFormatE164NoPlus writes "15550100101".
	NumberFormatE164NoPlus = "e164_noplus"
)

// MaxURILen bounds the text NumberFromURI accepts, in bytes. A real
// Request-URI or From value is well under 300 bytes.
const MaxURILen = 1024

// maxIdentities bounds how many P-Asserted-Identity values CallerNumber
// tries. RFC 3325 §9.1 allows at most two (one sip or sips URI and one tel
// URI); a few more tolerates sloppy carriers without letting a huge header
// cost much.
const maxIdentities = 8

// NumberFromURI returns the E.164 number ("+15550100101") held by a SIP,
// SIPS or tel URI. uri is the text of a Request-URI or the value of a From,
// To or P-Asserted-Identity header, bare or in angle brackets, with an
// optional display name and header parameters:
//
//	sip:+15550100101@carrier.example;user=phone
//	sips:15550100101@192.0.2.1:5060
//	tel:+1-555-010-0101
//	"Alice" <sip:+15550100101@carrier.example>;tag=abc
//
// The number is the user part of a sip or sips URI (RFC 3261 §19.1.1, its
// telephone-subscriber parameters dropped) or the number of a tel URI
// (RFC 3966 §3). Percent-escaped digits and "+" are decoded; the visual
// separators of RFC 3966 §5.1.1 ("-", ".", "(", ")") are removed. Then:
//
//   - "+" and digits: kept, checked by routing.ParseE164;
//   - "00" and digits: the international prefix becomes "+";
//   - 8 to 15 digits: international without the plus, as carriers send
//     "15550100101"; "+" is prepended. A national number of that length
//     would be misread, so trunks must send international numbers.
//
// Everything else fails with an error wrapping ErrBadNumber: other
// schemes, no user part, names ("anonymous"), letters, "*" and "#", other
// escaped characters, local numbers with a phone-context (RFC 3966 §5.1.5:
// their country cannot be told reliably), too few or too many digits, and
// input longer than MaxURILen.
func NumberFromURI(uri string) (string, error) {
	if len(uri) > MaxURILen {
		return "", badNumberf("URI longer than %d bytes", MaxURILen)
	}
	addr, err := addrSpec(strings.Trim(uri, " \t\r\n"))
	if err != nil {
		return "", err
	}
	num, params, err := telephoneSubscriber(addr)
	if err != nil {
		return "", err
	}
	return normaliseNumber(num, hasPhoneContext(params))
}

// CallerNumber returns the caller's E.164 number from the
// P-Asserted-Identity values of an INVITE (RFC 3325 §9.1) or, when none
// holds a usable number, from its From value. Each element of
// pAssertedIdentity is one header field value and may hold several
// comma-separated identities (a sip and a tel URI); the first that yields
// a number wins. PAI is trusted because the INVITE comes from a
// configured carrier (the trunk ACL runs first): it is that carrier's
// trust domain (RFC 3325 §2.3). The error, when neither gives a number, is
// From's and wraps ErrBadNumber.
func CallerNumber(pAssertedIdentity []string, from string) (string, error) {
	tried := 0
	for _, v := range pAssertedIdentity {
		for id := range splitHeaderValues(v) {
			if tried == maxIdentities {
				break
			}
			tried++
			if n, err := NumberFromURI(id); err == nil {
				return n, nil
			}
		}
	}
	n, err := NumberFromURI(from)
	if err != nil {
		return "", fmt.Errorf("caller number from From (no usable P-Asserted-Identity): %w", err)
	}
	return n, nil
}

// FormatNumber writes an E.164 number in a carrier's number format:
// NumberFormatE164 keeps it as is, NumberFormatE164NoPlus drops the "+".
// An unknown format keeps E.164; configs.Validate rejects unknown formats
// before they get here.
func FormatNumber(e164 string, format string) string {
	if format == NumberFormatE164NoPlus {
		return strings.TrimPrefix(e164, "+")
	}
	return e164
}

// addrSpec returns the URI inside a header value: the text between "<"
// and ">" of a name-addr (display name and header parameters dropped), or
// the whole value when it is a bare addr-spec or Request-URI
// (RFC 3261 §20.10, §25.1). The URI must be printable ASCII with no
// spaces, quotes or angle brackets.
func addrSpec(s string) (string, error) {
	var rest string
	switch {
	case strings.HasPrefix(s, `"`):
		end, err := quotedStringEnd(s)
		if err != nil {
			return "", err
		}
		rest = strings.TrimLeft(s[end:], " \t\r\n")
		if !strings.HasPrefix(rest, "<") {
			return "", badNumberf(`display name not followed by "<"`)
		}
	case strings.Contains(s, "<"):
		i := strings.IndexByte(s, '<')
		for _, c := range []byte(s[:i]) {
			if !isTokenChar(c) && !isLWS(c) {
				return "", badNumberf("display name has a character not allowed in a token")
			}
		}
		rest = s[i:]
	default:
		if err := checkURIChars(s); err != nil {
			return "", err
		}
		return s, nil
	}
	// rest starts with "<".
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", badNumberf(`"<" without ">"`)
	}
	uri := rest[1:end]
	if after := strings.TrimLeft(rest[end+1:], " \t\r\n"); after != "" && after[0] != ';' {
		return "", badNumberf(`unexpected text after ">"`)
	}
	if err := checkURIChars(uri); err != nil {
		return "", err
	}
	return uri, nil
}

// quotedStringEnd returns the index just past the quoted string that
// starts s (RFC 3261 §25.1 quoted-string, with quoted-pairs).
func quotedStringEnd(s string) (int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // quoted-pair: skip the escaped byte
		case '"':
			return i + 1, nil
		}
	}
	return 0, badNumberf("unterminated quoted display name")
}

// checkURIChars rejects a URI with characters no SIP or tel URI holds
// unescaped: controls, spaces, non-ASCII, quotes and angle brackets.
func checkURIChars(uri string) error {
	if uri == "" {
		return badNumberf("empty URI")
	}
	for _, c := range []byte(uri) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' {
			return badNumberf("URI has a character not allowed unescaped")
		}
	}
	return nil
}

// telephoneSubscriber splits a sip, sips or tel URI into the number text
// (still escaped, with separators) and its parameters (";"-separated,
// without the leading ";").
func telephoneSubscriber(uri string) (num, params string, err error) {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return "", "", badNumberf("URI has no scheme")
	}
	switch strings.ToLower(scheme) {
	case "tel":
		// RFC 3966 §3: telephone-subscriber, then parameters; no host.
		num, params, _ = strings.Cut(rest, ";")
		return num, params, nil
	case "sip", "sips":
		// RFC 3261 §19.1.1: user [":" password] "@" hostport params
		// headers. "@" cannot appear unescaped elsewhere, so the first
		// one ends the userinfo.
		userinfo, hostport, ok := strings.Cut(rest, "@")
		if !ok {
			return "", "", badNumberf("sip URI has no user part")
		}
		if hostport == "" || strings.ContainsAny(hostport[:1], ";?:") || strings.Contains(hostport, "@") {
			return "", "", badNumberf("sip URI has no valid host")
		}
		user, _, _ := strings.Cut(userinfo, ":") // drop a password
		// A user part that is a telephone-subscriber may carry
		// parameters of its own (";phone-context=", ";isub=").
		num, params, _ = strings.Cut(user, ";")
		return num, params, nil
	default:
		return "", "", badNumberf("URI scheme is not sip, sips or tel")
	}
}

// hasPhoneContext reports whether ";"-separated parameters include
// phone-context (RFC 3966 §5.1.5), names compared case-insensitively.
func hasPhoneContext(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		name, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(name, "phone-context") {
			return true
		}
	}
	return false
}

// normaliseNumber decodes and normalises the number text of a URI to
// E.164 (see NumberFromURI).
func normaliseNumber(num string, phoneContext bool) (string, error) {
	// At most "+" or "00" and 15 digits; anything longer fails below.
	var buf [18]byte
	b := buf[:0]
	for i := 0; i < len(num); i++ {
		c := num[i]
		first := i == 0
		if c == '%' {
			if i+2 >= len(num) || !isHex(num[i+1]) || !isHex(num[i+2]) {
				return "", badNumberf("malformed percent-escape")
			}
			c = unhex(num[i+1])<<4 | unhex(num[i+2])
			i += 2
			if c != '+' && !isDigit(c) {
				return "", badNumberf("escaped character other than a digit or +")
			}
		} else if c == '-' || c == '.' || c == '(' || c == ')' {
			continue // RFC 3966 §5.1.1 visual separator
		}
		switch {
		case c == '+' && first:
		case isDigit(c):
		case c == '+':
			return "", badNumberf(`"+" not at the start of the number`)
		default:
			return "", badNumberf("character other than a digit in the number")
		}
		if len(b) == len(buf) {
			return "", badNumberf("more than 15 digits")
		}
		b = append(b, c)
	}
	s := string(b)
	plus := strings.HasPrefix(s, "+")
	if !plus && phoneContext {
		return "", badNumberf("local number with a phone-context, not international")
	}
	switch {
	case plus:
	case strings.HasPrefix(s, "00"):
		s = "+" + s[2:]
	case len(s) >= 8 && len(s) <= 15:
		s = "+" + s
	case s == "":
		return "", badNumberf("no number")
	default:
		return "", badNumberf("%d digits without + or 00, want 8 to 15", len(s))
	}
	if _, err := routing.ParseE164(s); err != nil {
		// Not wrapped: routing's message quotes the number.
		return "", badNumberf("not E.164 (want 8 to 15 digits, the first not 0)")
	}
	return s, nil
}

// splitHeaderValues yields the comma-separated values of a header field
// value, ignoring commas inside quoted strings and angle brackets (a sip
// URI user part may hold a comma). Values are trimmed; empty ones skipped.
func splitHeaderValues(v string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		start, inQuote, inAngle := 0, false, false
		emit := func(end int) bool {
			s := strings.Trim(v[start:end], " \t\r\n")
			return s == "" || yield(s)
		}
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case inQuote && c == '\\':
				i++
			case c == '"' && !inAngle:
				inQuote = !inQuote
			case inQuote:
			case c == '<':
				inAngle = true
			case c == '>':
				inAngle = false
			case c == ',' && !inAngle:
				if !emit(i) {
					return
				}
				start = i + 1
			}
		}
		emit(len(v))
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isTokenChar reports whether c may appear in an RFC 3261 §25.1 token.
func isTokenChar(c byte) bool {
	switch {
	case isDigit(c), 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}
