package routing

import "strings"

// ParseE164 checks that s is an E.164 number in its international form:
// "+" then 8 to 15 digits, the first not 0 (ITU-T E.164 §6). It returns s
// unchanged or an ErrInvalid error naming what is wrong. Other spellings
// (no plus, tel: URIs) are normalised by the protocol adapters.
func ParseE164(s string) (string, error) {
	if !strings.HasPrefix(s, "+") {
		return "", invalidf("%s: E.164 number must start with +", redactInput(s))
	}
	d := s[1:]
	if len(d) < 8 || len(d) > 15 {
		return "", invalidf("%s: E.164 number must have 8 to 15 digits", redactInput(s))
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", invalidf("%s: E.164 number may contain only digits after +", redactInput(s))
		}
	}
	if d[0] == '0' {
		return "", invalidf("%s: E.164 country code cannot start with 0", redactInput(s))
	}
	return s, nil
}

// redactInput bounds user input quoted back in errors.
func redactInput(s string) string {
	if r := []rune(s); len(r) > 24 {
		s = string(r[:24]) + "..."
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

// CountryCode returns the ITU-T E.164 country calling code of a valid
// E.164 number ("1" for +1 555..., "44" for +44 20...). Numbers sharing a
// calling code are "in the same country" for allocation; within +1 (the
// NANP) or +7 that groups several countries, which is how carriers price
// them too. Hand-written: the assignment list is short and stable, and a
// full numbering-plan library would reject the fictional 555 test ranges.
func CountryCode(e164 string) string {
	d := strings.TrimPrefix(e164, "+")
	if d == "" {
		return ""
	}
	switch d[0] {
	case '1', '7':
		return d[:1]
	}
	if len(d) >= 2 && twoDigitCodes[d[:2]] {
		return d[:2]
	}
	if len(d) >= 3 {
		return d[:3]
	}
	return d
}

// twoDigitCodes are the assigned two-digit calling codes; every other code
// not starting with 1 or 7 has three digits.
var twoDigitCodes = map[string]bool{
	"20": true, "27": true,
	"30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
	"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
	"81": true, "82": true, "84": true, "86": true,
	"90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}

// Mask shortens a phone number for logs above debug level: "+1***101"
// keeps the calling code and the last three digits, enough to tell numbers
// apart in an incident without logging a real number.
func Mask(number string) string {
	if len(number) < 8 {
		return "***"
	}
	return "+" + CountryCode(number) + "***" + number[len(number)-3:]
}
