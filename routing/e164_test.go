package routing

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

func TestParseE164(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"us number", "+14155550100", true},
		{"uk number", "+442071234567", true},
		{"shortest, 8 digits", "+12345678", true},
		{"longest, 15 digits", "+123456789012345", true},
		{"no plus", "14155550100", false},
		{"double plus", "++14155550100", false},
		{"empty", "", false},
		{"plus only", "+", false},
		{"too short, 7 digits", "+1234567", false},
		{"too long, 16 digits", "+1234567890123456", false},
		{"letter", "+1415555O100", false},
		{"trailing letter", "+14155550100x", false},
		{"spaces", "+1 415 555 0100", false},
		{"dashes", "+1-415-555-0100", false},
		{"leading zero", "+04155550100", false},
		{"tel uri", "tel:+14155550100", false},
		{"trailing newline", "+14155550100\n", false},
		{"arabic-indic digits", "+١٢٣٤٥٦٧٨٩", false},
		{"nul byte", "+1415555\x000100", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseE164(tt.in)
			if tt.ok {
				if err != nil || got != tt.in {
					t.Fatalf("ParseE164(%q) = %q, %v; want it unchanged", tt.in, got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseE164(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
			if got != "" {
				t.Fatalf("ParseE164(%q) returned %q with an error", tt.in, got)
			}
		})
	}
}

func TestParseE164ErrorBoundsInput(t *testing.T) {
	long := "+1" + strings.Repeat("9", 500)
	_, err := ParseE164(long)
	if err == nil {
		t.Fatal("accepted a 501-digit number")
	}
	if len(err.Error()) > 200 || strings.Contains(err.Error(), long[:40]) {
		t.Fatalf("error quotes too much of the input: %q", err)
	}
}

func TestCountryCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+14155550100", "1"},    // NANP
		{"+12125550100", "1"},    // NANP
		{"+74951234567", "7"},    // Russia / Kazakhstan
		{"+442071234567", "44"},  // UK
		{"+33123456789", "33"},   // France
		{"+4915112345678", "49"}, // Germany
		{"+201001234567", "20"},  // Egypt
		{"+27211234567", "27"},   // South Africa
		{"+8613800138000", "86"}, // China
		{"+819012345678", "81"},  // Japan
		{"+353861234567", "353"}, // Ireland
		{"+85212345678", "852"},  // Hong Kong
		{"+97150123456", "971"},  // UAE
		{"+2348012345678", "234"},
		{"+380441234567", "380"}, // Ukraine: 38 is not a code
		{"+420212345678", "420"}, // Czechia: 42 is not a code
		{"+3548001234", "354"},   // Iceland: 35 is not a code
		{"+998901234567", "998"},
		{"+", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := CountryCode(tt.in); got != tt.want {
			t.Errorf("CountryCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+14155550101", "+1***101"},
		{"+442071234567", "+44***567"},
		{"+353861234567", "+353***567"},
		{"+12345678", "+1***678"},
		{"+1234", "***"},
		{"", "***"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, n := range []string{"+14155550101", "+442071234567", "+353861234567", "+85212345678", "+12345678", "+123456789012345"} {
		m := Mask(n)
		if strings.Contains(m, n) || strings.Contains(m, n[1:]) || strings.Contains(m, n[len(n)-6:]) {
			t.Errorf("Mask(%q) = %q reveals the number", n, m)
		}
	}
}

func FuzzParseE164(f *testing.F) {
	for _, s := range []string{
		"+14155550100", "+442071234567", "+12345678", "+123456789012345", "+1234567890123456",
		"14155550100", "+04155550100", "+", "", "++1", "+1415555O100", "+١٢٣٤٥٦٧٨", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseE164(s)
		// CountryCode and Mask must not panic on anything either.
		_ = CountryCode(s)
		_ = Mask(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseE164(%q): error %v does not wrap ErrInvalid", s, err)
			}
			if e164RE.MatchString(s) {
				t.Fatalf("ParseE164(%q) rejected a valid number: %v", s, err)
			}
			return
		}
		if got != s {
			t.Fatalf("ParseE164(%q) = %q, want the input unchanged", s, got)
		}
		if !e164RE.MatchString(got) {
			t.Fatalf("ParseE164 accepted %q", s)
		}
		cc := CountryCode(got)
		if len(cc) < 1 || len(cc) > 3 || !strings.HasPrefix(got[1:], cc) {
			t.Fatalf("CountryCode(%q) = %q", got, cc)
		}
		if m := Mask(got); strings.Contains(m, got[1:]) {
			t.Fatalf("Mask(%q) = %q reveals the number", got, m)
		}
	})
}
