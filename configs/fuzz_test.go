package configs

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must never panic, must fail
// with exactly one of ErrDecode or ErrInvalid, and a Config it accepts must
// validate and survive a marshal/Parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"veil.yaml", "veil.example.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n",
		validYAML,
		"carriers: [{name: a, sip: {address: \"h:1\"}}, {name: a}]\n",
		"admin: {read_timeout: -1s}\nsessions: {default_ttl: 9000h}\n",
		"a: &x [*x]\n",
		"<<: {data_dir: x}\n",
		"data_dir: a\n---\ndata_dir: b\n",
		"fallback_number: +15550100000\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if errors.Is(err, ErrDecode) == errors.Is(err, ErrInvalid) {
				t.Fatalf("error wraps ErrDecode=%v ErrInvalid=%v, want exactly one: %v",
					errors.Is(err, ErrDecode), errors.Is(err, ErrInvalid), err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", out, out2)
		}
	})
}
