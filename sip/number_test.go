package sip

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// e164Re is what every successful parse must return.
var e164Re = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// numberCases is the golden table for NumberFromURI: input, then the
// number it yields, or "" when it must fail with ErrBadNumber. Each row
// says why.
var numberCases = []struct {
	in, want string
	why      string
}{
	// Forms carriers send.
	{"sip:+15550100101@carrier.example;user=phone", "+15550100101", "Request-URI, global number"},
	{"sip:15550100101@carrier.example", "+15550100101", "international without plus (8..15 digits)"},
	{"sips:15550100101@1.2.3.4:5060", "+15550100101", "sips with IP host and port"},
	{"SIP:+15550100101@carrier.example", "+15550100101", "scheme is case-insensitive (RFC 3261 §19.1.4)"},
	{"sip:+15550100101@[2001:db8::1]:5060;transport=udp", "+15550100101", "IPv6 host"},
	{"sip:+15550100101:secret@carrier.example", "+15550100101", "password dropped"},
	{"sip:+15550100101;isub=12@carrier.example;user=phone", "+15550100101", "telephone-subscriber parameter in the user part"},
	{"sip:+15550100101@carrier.example?Subject=hi", "+15550100101", "URI headers ignored"},
	{"sip:0015550100101@carrier.example", "+15550100101", `"00" international prefix`},
	{"sip:%2B15550100101@carrier.example", "+15550100101", "escaped plus decoded"},
	{"sip:%2b1555%30100101@carrier.example", "+15550100101", "escaped digits decoded, lower-case hex"},
	{"sip:+1-555-010-0101@carrier.example;user=phone", "+15550100101", "visual separators in a sip user part"},
	{"sip:+44(20)7946.0000@carrier.example", "+442079460000", "parentheses and dots"},
	{"sip:+12345678@h", "+12345678", "shortest E.164: 8 digits"},
	{"sip:+123456789012345@h", "+123456789012345", "longest E.164: 15 digits"},
	{"sip:12345678@h", "+12345678", "8 digits without plus"},
	{"tel:+15550100101", "+15550100101", "tel URI"},
	{"tel:+1-555-010-0101;phone-context=example.com", "+15550100101", "phone-context on a global number ignored"},
	{"TEL:+1.555.010.0101", "+15550100101", "tel with dots, upper-case scheme"},
	{"tel:15550100101", "+15550100101", "tel without plus, as some carriers send"},
	{"tel:+15550100101;ext=42", "+15550100101", "extension parameter ignored"},
	{"<sip:+15550100101@h>", "+15550100101", "name-addr without display name"},
	{`"Alice" <sip:+15550100101@h>;tag=abc`, "+15550100101", "quoted display name and tag"},
	{`Alice Smith <sip:+15550100101@h;user=phone>;tag=abc`, "+15550100101", "token display name, URI parameters inside brackets"},
	{`"Al\"ice <sip:bob@x>" <sip:+15550100101@h>`, "+15550100101", "quoted display name holding a quote and angle brackets"},
	{`"" <tel:+15550100101>`, "+15550100101", "empty display name, tel URI"},
	{"  <sip:+15550100101@h> ;tag=1 ", "+15550100101", "surrounding whitespace"},
	{"sip:+15550100101@h;tag=abc", "+15550100101", "bare addr-spec with header parameters"},
	{`"Álvaro" <sip:+15550100101@h>`, "+15550100101", "UTF-8 in a quoted display name (RFC 3261 §25.1)"},

	// Not a number.
	{"", "", "empty"},
	{"   ", "", "only whitespace"},
	{"sip:anonymous@anonymous.invalid", "", "anonymous caller (RFC 3323)"},
	{`"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1`, "", "anonymous in a name-addr"},
	{"sip:alice@example.com", "", "a name, not a number"},
	{"sip:carrier.example", "", "no user part"},
	{"sip:@carrier.example", "", "empty user part"},
	{"sip:+15550100101@", "", "no host"},
	{"sip:+15550100101@;user=phone", "", "parameters where the host should be"},
	{"sip:+15550100101@h@i", "", "two @"},
	{"sip:1555O100101@h", "", "letter O instead of zero"},
	{"sip:*69@h", "", "star code"},
	{"sip:#31#15550100101@h", "", "hash prefix"},
	{"tel:+1555010010a", "", "hex digit allowed in local tel numbers, not E.164"},
	{"tel:5550100101;phone-context=+1", "", "local number with phone-context: country cannot be told"},
	{"sip:5550100101;phone-context=example.com@h;user=phone", "", "local number with phone-context in a sip user part"},
	{"tel:+1555;phone-context=x", "", "too short even with plus"},
	{"sip:5550100@h", "", "7 digits without plus: a local number"},
	{"sip:+1234567@h", "", "7 digits after plus"},
	{"sip:+1234567890123456@h", "", "16 digits after plus"},
	{"sip:1234567890123456@h", "", "16 digits without plus"},
	{"sip:0012345678901234567@h", "", "too many digits after 00"},
	{"sip:00@h", "", "00 and nothing else"},
	{"sip:+@h", "", "plus only"},
	{"sip:05550100101@h", "", "national trunk prefix 0: not international"},
	{"sip:+05550100101@h", "", "country code cannot start with 0"},
	{"sip:1+5550100101@h", "", "plus not first"},
	{"sip:-+15550100101@h", "", "separator before plus"},
	{"sip:++15550100101@h", "", "two pluses"},
	{"sip:%2B%2B15550100101@h", "", "two escaped pluses"},
	{"sip:%41%42@h", "", "escaped letters"},
	{"sip:+1555%2D0100101@h", "", "escaped separator: escapes are for digits and plus only"},
	{"sip:+1555%0", "", "truncated percent-escape"},
	{"sip:+1555%zz0100101@h", "", "percent-escape with non-hex"},
	{"sip:+1555 0100101@h", "", "space inside a URI"},
	{"sip:+1555\x000100101@h", "", "NUL inside a URI"},
	{"sip:+1555\u00a00100101@h", "", "non-ASCII inside a URI"},
	{"http://+15550100101@h", "", "not a sip, sips or tel URI"},
	{"mailto:+15550100101@h", "", "not a sip, sips or tel URI"},
	{"+15550100101", "", "no scheme"},
	{"15550100101", "", "no scheme, no plus"},
	{"<sip:+15550100101@h", "", "< without >"},
	{"<>", "", "empty brackets"},
	{"<sip:+15550100101@h>junk", "", "text after > that is not a parameter"},
	{`"Alice <sip:+15550100101@h>`, "", "unterminated quoted display name"},
	{`"Alice" sip:+15550100101@h`, "", "quoted display name without <"},
	{`Al"ice <sip:+15550100101@h>`, "", "quote in a token display name"},
	{`Alice, Bob <sip:+15550100101@h>`, "", "comma in a token display name"},
	{"<sip:<sip:+15550100101@h>>", "", "nested brackets"},
	{"sip:+15550100101@h," + "sip:+15550100102@h", "", "two values: CallerNumber splits them, NumberFromURI does not"},
	{"sip:+15550100101@" + strings.Repeat("a", MaxURILen), "", "longer than 1 KiB"},
}

func TestNumberFromURI(t *testing.T) {
	for _, tc := range numberCases {
		t.Run(tc.why, func(t *testing.T) {
			got, err := NumberFromURI(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrBadNumber) {
					t.Fatalf("NumberFromURI(%q) = %q, %v; want ErrBadNumber", tc.in, got, err)
				}
				if got != "" {
					t.Errorf("NumberFromURI(%q) returned %q with an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NumberFromURI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestNumberFromURILimit checks the length bound is on the input as given:
// exactly MaxURILen bytes is parsed, one more is refused.
func TestNumberFromURILimit(t *testing.T) {
	base := "sip:+15550100101@h;x="
	at := base + strings.Repeat("a", MaxURILen-len(base))
	if n, err := NumberFromURI(at); err != nil || n != "+15550100101" {
		t.Fatalf("%d bytes: %q, %v", len(at), n, err)
	}
	if _, err := NumberFromURI(at + "a"); !errors.Is(err, ErrBadNumber) {
		t.Fatalf("%d bytes: err = %v, want ErrBadNumber", len(at)+1, err)
	}
}

// TestBadNumberErrorRedacted checks errors never quote the input, which
// may be a real number (logs must not carry full numbers).
func TestBadNumberErrorRedacted(t *testing.T) {
	for _, in := range []string{
		"sip:+05550100101@h", "sip:+1234567890123456@h", "sip:5550100@h",
		"tel:5550100101;phone-context=+1", "sip:+1555 0100101@h",
	} {
		_, err := NumberFromURI(in)
		if err == nil {
			t.Fatalf("NumberFromURI(%q): no error", in)
		}
		if strings.Contains(err.Error(), "5550100") || strings.Contains(err.Error(), "1234567") {
			t.Errorf("NumberFromURI(%q): error %q quotes the input", in, err)
		}
	}
}

func TestCallerNumber(t *testing.T) {
	const from = `"Alice" <sip:+15550100199@carrier.example>;tag=f1`
	tests := []struct {
		name string
		pai  []string
		from string
		want string // "" means ErrBadNumber
	}{
		{"no PAI: From", nil, from, "+15550100199"},
		{"PAI preferred over From", []string{"<sip:+15550100101@carrier.example;user=phone>"}, from, "+15550100101"},
		{"tel PAI", []string{"<tel:+15550100101>"}, from, "+15550100101"},
		{"first valid of two comma-separated values",
			[]string{`"A" <sip:anonymous@anonymous.invalid>, <tel:+15550100102>`}, from, "+15550100102"},
		{"first valid of two header fields",
			[]string{"<sip:alice@example.com>", "<tel:+1-555-010-0103>"}, from, "+15550100103"},
		{"first of two valid values wins",
			[]string{"<sip:+15550100101@h>, <tel:+15550100102>"}, from, "+15550100101"},
		{"comma inside a quoted display name",
			[]string{`"Smith, Alice" <sip:+15550100104@h>`}, from, "+15550100104"},
		{"comma inside angle brackets (sip user part)",
			[]string{`<sip:alice,x@h>, <sip:+15550100105@h>`}, from, "+15550100105"},
		{"empty values skipped", []string{"", " , ,<tel:+15550100106>"}, from, "+15550100106"},
		{"no usable PAI: From", []string{"<sip:anonymous@anonymous.invalid>"}, from, "+15550100199"},
		{"neither", []string{"<sip:anonymous@anonymous.invalid>"}, "<sip:anonymous@anonymous.invalid>;tag=1", ""},
		{"PAI beyond the bound ignored",
			[]string{strings.Repeat("<sip:x@h>,", maxIdentities) + "<tel:+15550100107>"}, from, "+15550100199"},
		{"PAI at the bound used",
			[]string{strings.Repeat("<sip:x@h>,", maxIdentities-1) + "<tel:+15550100107>"}, from, "+15550100107"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CallerNumber(tc.pai, tc.from)
			if tc.want == "" {
				if !errors.Is(err, ErrBadNumber) {
					t.Fatalf("CallerNumber = %q, %v; want ErrBadNumber", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CallerNumber = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSplitHeaderValues(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"<sip:a@h>", []string{"<sip:a@h>"}},
		{" <sip:a@h> , <tel:+1>,", []string{"<sip:a@h>", "<tel:+1>"}},
		{`"a,b" <sip:c,d@h>, e`, []string{`"a,b" <sip:c,d@h>`, "e"}},
		{`"a\",b" <sip:x@h>,y`, []string{`"a\",b" <sip:x@h>`, "y"}},
	}
	for _, tc := range tests {
		var got []string
		for v := range splitHeaderValues(tc.in) {
			got = append(got, v)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitHeaderValues(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct{ format, want string }{
		{NumberFormatE164, "+15550100101"},
		{NumberFormatE164NoPlus, "15550100101"},
		{"", "+15550100101"},         // unknown: E.164 (config validation rejects it earlier)
		{"national", "+15550100101"}, // unknown
	}
	for _, tc := range tests {
		if got := FormatNumber("+15550100101", tc.format); got != tc.want {
			t.Errorf("FormatNumber(%q) = %q, want %q", tc.format, got, tc.want)
		}
	}
}

// TestFormatRoundTrip checks a number written in either carrier format
// reads back as the same E.164 number.
func TestFormatRoundTrip(t *testing.T) {
	for _, tc := range numberCases {
		if tc.want != "" {
			checkRoundTrip(t, tc.want)
		}
	}
}

func checkRoundTrip(tb testing.TB, e164 string) {
	tb.Helper()
	for _, f := range []string{NumberFormatE164, NumberFormatE164NoPlus} {
		uri := "sip:" + FormatNumber(e164, f) + "@carrier.example;user=phone"
		if got, err := NumberFromURI(uri); err != nil || got != e164 {
			tb.Fatalf("%s: NumberFromURI(%q) = %q, %v; want %q", f, uri, got, err, e164)
		}
	}
}

// FuzzNumberFromURI checks NumberFromURI never panics, fails only with
// ErrBadNumber, returns only E.164 numbers, and that what it returns
// survives a round trip through both carrier formats.
func FuzzNumberFromURI(f *testing.F) {
	for _, tc := range numberCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NumberFromURI(in)
		if err != nil {
			if !errors.Is(err, ErrBadNumber) || got != "" {
				t.Fatalf("NumberFromURI(%q) = %q, %v", in, got, err)
			}
			return
		}
		if !e164Re.MatchString(got) {
			t.Fatalf("NumberFromURI(%q) = %q: not E.164", in, got)
		}
		checkRoundTrip(t, got)
		if _, err := CallerNumber([]string{in}, ""); err != nil {
			// A single value without a top-level comma must parse the
			// same through CallerNumber.
			if !strings.Contains(in, ",") {
				t.Fatalf("CallerNumber(%q) failed where NumberFromURI gave %q: %v", in, got, err)
			}
		}
	})
}
