package configs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// validYAML has one carrier with both sections, every other key defaulted.
const validYAML = `
carriers:
  - name: c1
    sip: {address: "127.0.0.1:5070", inbound_cidrs: ["127.0.0.1/32"]}
    smpp: {address: "127.0.0.1:2775", system_id: veil, password_env: VEIL_SMPP_PASSWORD}
`

// mustParse parses src and fails the test on error.
func mustParse(tb testing.TB, src string) *Config {
	tb.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		tb.Fatalf("Parse: %v\ninput:\n%s", err, src)
	}
	return c
}

// problemsOf splits a Validate/Parse error into its one-line problems.
func problemsOf(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		key       string
		got, want any
	}{
		{"data_dir", c.DataDir, "./data"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:8080"},
		{"admin.token_env", c.Admin.TokenEnv, "VEIL_ADMIN_TOKEN"},
		{"admin.read_timeout", c.Admin.ReadTimeout, 10 * time.Second},
		{"admin.write_timeout", c.Admin.WriteTimeout, 30 * time.Second},
		{"admin.idle_timeout", c.Admin.IdleTimeout, 120 * time.Second},
		{"admin.max_body_bytes", c.Admin.MaxBodyBytes, int64(1048576)},
		{"sip.listen", c.SIP.Listen, []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}},
		{"media.address", c.Media.Address, "127.0.0.1"},
		{"media.port_min", c.Media.PortMin, 20000},
		{"media.port_max", c.Media.PortMax, 29999},
		{"sessions.default_ttl", c.Sessions.DefaultTTL, 24 * time.Hour},
		{"sessions.max_ttl", c.Sessions.MaxTTL, 8760 * time.Hour},
		{"sessions.sweep_interval", c.Sessions.SweepInterval, time.Second},
		{"fallback_number", c.FallbackNumber, ""},
		{"carriers", len(c.Carriers), 0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	// Each call is a fresh copy.
	c.SIP.Listen[0] = "mutated"
	if Default().SIP.Listen[0] == "mutated" {
		t.Error("Default shares its slices between calls")
	}
}

func TestEmptyInputIsDefault(t *testing.T) {
	for _, src := range []string{
		"",
		"\n\n",
		"# only a comment\n",
		"---\n",
		"---\n...\n",
		"{}",
		"~",
		"null\n",
		"log: {}\nadmin:\nsip:\n",
		"sip: {listen: []}\ncarriers: []\n",
		"---\n---\n",
		"{}\n---\n...\n---\n~\n",
	} {
		got, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if want := Default(); !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, want Default() %+v", src, got, want)
		}
	}
}

func TestParseValues(t *testing.T) {
	c := mustParse(t, `
data_dir: /var/lib/veil
log: {level: debug, format: json}
admin: {listen: ":9090", token_env: MY_TOKEN, read_timeout: 1m30s, write_timeout: 500ms, max_body_bytes: 4096}
sip: {listen: ["tcp://[::1]:5061"]}
media: {address: "::1", port_min: 40000, port_max: 40001}
sessions: {default_ttl: 1h, max_ttl: 2h, sweep_interval: 250ms}
fallback_number: "+442079460000"
carriers:
  - name: voice-only
    sip: {address: "sip.example.net:5061", transport: tcp, number_format: e164_noplus}
  - name: sms_only
    smpp: {address: "smsc.example.net:2775", system_id: veil, tps: 30, bind_type: transmitter_receiver, window: 1000}
  - name: both
    sip: {address: "192.0.2.1:5060"}
    smpp: {address: "192.0.2.1:2775", system_id: x}
`)
	want := &Config{
		DataDir: "/var/lib/veil",
		Log:     Log{Level: "debug", Format: "json"},
		Admin: Admin{Listen: ":9090", TokenEnv: "MY_TOKEN", ReadTimeout: 90 * time.Second,
			WriteTimeout: 500 * time.Millisecond, IdleTimeout: 120 * time.Second, MaxBodyBytes: 4096},
		SIP:      SIP{Listen: []string{"tcp://[::1]:5061"}, RingTimeout: time.Minute, MaxCallDuration: 4 * time.Hour, SocketBuffer: 4 << 20, TCPIdleTimeout: 5 * time.Minute},
		Media:    Media{Address: "::1", PortMin: 40000, PortMax: 40001, MediaTimeout: 30 * time.Second},
		Sessions: Sessions{DefaultTTL: time.Hour, MaxTTL: 2 * time.Hour, SweepInterval: 250 * time.Millisecond},
		Shutdown: Shutdown{DrainDelay: 2 * time.Second, DrainTimeout: 30 * time.Second},
		SMS: SMS{ReassemblyTimeout: time.Minute, SubmitTimeout: 30 * time.Second, RetryMax: 30 * time.Second,
			Validity: 24 * time.Hour, ReceiptWait: 72 * time.Hour},
		FallbackNumber: "+442079460000",
		Carriers: []Carrier{
			{Name: "voice-only", SIP: &CarrierSIP{Address: "sip.example.net:5061", Transport: "tcp", NumberFormat: "e164_noplus"}},
			{Name: "sms_only", SMPP: &CarrierSMPP{Address: "smsc.example.net:2775", SystemID: "veil", Window: 1000, TPS: 30, BindType: "transmitter_receiver", EnquireLink: 30 * time.Second}},
			// Nested defaults are applied per carrier.
			{Name: "both", SIP: &CarrierSIP{Address: "192.0.2.1:5060", Transport: "udp", NumberFormat: "e164"},
				SMPP: &CarrierSMPP{Address: "192.0.2.1:2775", SystemID: "x", Window: 10, BindType: "transceiver", EnquireLink: 30 * time.Second}},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "data_dir: x\nbogus: 1\n", []string{"line 2", "bogus"}},
		{"unknown nested key", "admin:\n  listen: \":1\"\n  tokenenv: X\n", []string{"line 3", "tokenenv"}},
		{"unknown carrier key", validYAML + "    smsc: {}\n", []string{"line 6", "smsc"}},
		{"unknown key in flow map", "carriers:\n  - {name: a, sip: {address: \"h:1\", cidrs: []}}\n", []string{"line 2", "cidrs"}},
		{"several unknown keys", "a: 1\nlog: {lvl: x}\n", []string{"line 1", `unknown key "a"`, "line 2", `unknown key "lvl" in the log section`}},
		{"wrong type", "media:\n  port_min: lots\n", []string{"line 2", "lots"}},
		{"duration without unit", "admin:\n  read_timeout: 10\n", []string{"line 2", "10"}},
		{"bad duration", "sessions: {max_ttl: 1y}\n", []string{"line 1", "1y"}},
		{"list instead of map", "carriers: {name: a}\n", []string{"line 1"}},
		{"duplicate key", "data_dir: a\ndata_dir: b\n", []string{"line 2", "data_dir"}},
		{"syntax error", "log: {level: info\n", []string{"line"}},
		{"tab indentation", "log:\n\tlevel: info\n", []string{"line 2"}},
		{"top-level scalar", "hello\n", []string{"line 1"}},
		{"two documents", "data_dir: a\n---\ndata_dir: b\n", []string{"line 2", "more than one YAML document"}},
		{"empty first document", "---\n---\ndata_dir: b\n", []string{"more than one YAML document"}},
		{"excessive nesting", "data_dir: " + strings.Repeat("[", 20000) + "\n", []string{"max depth"}},
		{"broken second document", "data_dir: a\n---\n[\n", []string{"line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if !errors.Is(err, ErrDecode) {
				t.Errorf("error %q does not wrap ErrDecode", err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("decode error %q wraps ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // the single problem reported; "" = valid
	}{
		{"baseline", func(c *Config) {}, ""},

		{"data_dir empty", func(c *Config) { c.DataDir = "" }, "data_dir: required"},

		{"log level", func(c *Config) { c.Log.Level = "INFO" },
			`log.level: must be one of debug, info, warn, error, got "INFO"`},
		{"log level empty", func(c *Config) { c.Log.Level = "" },
			`log.level: must be one of debug, info, warn, error, got ""`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" },
			`log.format: must be one of text, json, got "logfmt"`},

		{"admin listen no port", func(c *Config) { c.Admin.Listen = "127.0.0.1" }, "admin.listen: missing port"},
		{"admin listen empty", func(c *Config) { c.Admin.Listen = "" }, "admin.listen: required"},
		{"admin listen named port", func(c *Config) { c.Admin.Listen = "127.0.0.1:http" },
			`admin.listen: port "http" is not a number from 0 to 65535`},
		{"admin listen port too big", func(c *Config) { c.Admin.Listen = "127.0.0.1:65536" },
			`admin.listen: port "65536" is not a number from 0 to 65535`},
		{"admin listen unbracketed ipv6", func(c *Config) { c.Admin.Listen = "::1:8080" }, "admin.listen: too many colons"},
		{"admin listen bad host", func(c *Config) { c.Admin.Listen = "my host:8080" },
			`admin.listen: "my host" is neither an IP address nor a host name`},
		{"admin listen any host port 0", func(c *Config) { c.Admin.Listen = ":0" }, ""},
		{"admin listen ipv6", func(c *Config) { c.Admin.Listen = "[::1]:8080" }, ""},
		{"admin listen hostname", func(c *Config) { c.Admin.Listen = "localhost:8080" }, ""},
		{"admin token_env empty", func(c *Config) { c.Admin.TokenEnv = "" }, "admin.token_env: required"},
		{"admin token_env bad", func(c *Config) { c.Admin.TokenEnv = "1TOKEN" },
			`admin.token_env: "1TOKEN" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`},
		{"admin token_env is a value", func(c *Config) { c.Admin.TokenEnv = "s3cr3t-token!" },
			`admin.token_env: "s3cr3t-token!" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`},
		{"admin read_timeout negative", func(c *Config) { c.Admin.ReadTimeout = -time.Second },
			"admin.read_timeout: must be positive, got -1s"},
		{"admin write_timeout zero", func(c *Config) { c.Admin.WriteTimeout = 0 },
			"admin.write_timeout: must be positive, got 0s"},
		{"admin idle_timeout negative", func(c *Config) { c.Admin.IdleTimeout = -time.Minute },
			"admin.idle_timeout: must be positive, got -1m0s"},
		{"admin max_body_bytes negative", func(c *Config) { c.Admin.MaxBodyBytes = -1 },
			"admin.max_body_bytes: must be positive, got -1"},

		{"sip listen empty", func(c *Config) { c.SIP.Listen = nil }, "sip.listen: at least one listener required"},
		{"sip listen no scheme", func(c *Config) { c.SIP.Listen = []string{"127.0.0.1:5060"} },
			`sip.listen[0]: "127.0.0.1:5060" has no transport, want udp://, tcp:// or tls:// then host:port`},
		{"sip listen bad scheme", func(c *Config) { c.SIP.Listen = []string{"udp://127.0.0.1:5060", "sctp://127.0.0.1:5060"} },
			`sip.listen[1]: "sctp://127.0.0.1:5060" has transport "sctp", want udp, tcp or tls`},
		{"sip listen upper-case scheme", func(c *Config) { c.SIP.Listen = []string{"UDP://127.0.0.1:5060"} },
			`sip.listen[0]: "UDP://127.0.0.1:5060" has transport "UDP", want udp, tcp or tls`},
		{"sip listen no port", func(c *Config) { c.SIP.Listen = []string{"tls://127.0.0.1"} },
			`sip.listen[0]: "tls://127.0.0.1": missing port`},
		{"sip listen path", func(c *Config) { c.SIP.Listen = []string{"udp://127.0.0.1:5060/x"} },
			`sip.listen[0]: "udp://127.0.0.1:5060/x": port "5060/x" is not a number from 0 to 65535`},
		{"sip listen duplicate", func(c *Config) {
			c.SIP.Listen = []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060", "udp://127.0.0.1:5060"}
		}, "sip.listen[2]: duplicate of sip.listen[0]"},
		{"sip listen all interfaces", func(c *Config) { c.SIP.Listen = []string{"udp://:5060", "tcp://0.0.0.0:5060", "tcp://[::]:5061"} }, ""},
		{"sip listen tls not yet", func(c *Config) { c.SIP.Listen = []string{"tls://127.0.0.1:5061"} },
			"sip.listen[0]: tls listeners are not supported yet (certificates come with secure calls): use udp:// or tcp://"},
		{"carrier sip tls not yet", func(c *Config) { c.Carriers[0].SIP.Transport = "tls" },
			"carriers[0].sip.transport: tls is not supported yet (it comes with secure calls): use udp or tcp"},

		{"media address hostname", func(c *Config) { c.Media.Address = "localhost" },
			`media.address: "localhost" is not an IP address`},
		{"media address empty", func(c *Config) { c.Media.Address = "" }, `media.address: "" is not an IP address`},
		{"media address with port", func(c *Config) { c.Media.Address = "127.0.0.1:1" },
			`media.address: "127.0.0.1:1" is not an IP address`},
		{"media address ipv6", func(c *Config) { c.Media.Address = "2001:db8::1" }, ""},
		{"media port_min low", func(c *Config) { c.Media.PortMin = 1022 },
			"media.port_min: must be between 1024 and 65535, got 1022"},
		{"media port_min odd", func(c *Config) { c.Media.PortMin = 20001 },
			"media.port_min: must be even (RTP on even ports, RTCP on odd), got 20001"},
		{"media port_max high", func(c *Config) { c.Media.PortMax = 65536 },
			"media.port_max: must be between 1024 and 65535, got 65536"},
		{"media port_max below min", func(c *Config) { c.Media.PortMin, c.Media.PortMax = 30000, 29999 },
			"media.port_max: must be greater than media.port_min (30000), got 29999"},
		{"media one port", func(c *Config) { c.Media.PortMin, c.Media.PortMax = 30000, 30000 },
			"media.port_max: must be greater than media.port_min (30000), got 30000"},
		{"media two ports", func(c *Config) { c.Media.PortMin, c.Media.PortMax = 1024, 1025 }, ""},
		{"media top of range", func(c *Config) { c.Media.PortMin, c.Media.PortMax = 65534, 65535 }, ""},

		{"sessions default_ttl negative", func(c *Config) { c.Sessions.DefaultTTL = -time.Hour },
			"sessions.default_ttl: must be positive, got -1h0m0s"},
		{"sessions max_ttl negative", func(c *Config) { c.Sessions.MaxTTL = -time.Hour },
			"sessions.max_ttl: must be positive, got -1h0m0s"},
		{"sessions max below default", func(c *Config) { c.Sessions.DefaultTTL, c.Sessions.MaxTTL = 2*time.Hour, time.Hour },
			"sessions.max_ttl: 1h0m0s is less than sessions.default_ttl (2h0m0s)"},
		{"sessions max equals default", func(c *Config) { c.Sessions.DefaultTTL, c.Sessions.MaxTTL = time.Hour, time.Hour }, ""},
		{"sessions sweep_interval negative", func(c *Config) { c.Sessions.SweepInterval = -time.Millisecond },
			"sessions.sweep_interval: must be positive, got -1ms"},

		{"fallback ok 8 digits", func(c *Config) { c.FallbackNumber = "+12345678" }, ""},
		{"fallback ok 15 digits", func(c *Config) { c.FallbackNumber = "+123456789012345" }, ""},
		{"fallback no plus", func(c *Config) { c.FallbackNumber = "15550100000" },
			`fallback_number: "15550100000" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},
		{"fallback leading zero", func(c *Config) { c.FallbackNumber = "+05550100000" },
			`fallback_number: "+05550100000" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},
		{"fallback 7 digits", func(c *Config) { c.FallbackNumber = "+1234567" },
			`fallback_number: "+1234567" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},
		{"fallback 16 digits", func(c *Config) { c.FallbackNumber = "+1234567890123456" },
			`fallback_number: "+1234567890123456" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},
		{"fallback formatted", func(c *Config) { c.FallbackNumber = "+1 555 010 0000" },
			`fallback_number: "+1 555 010 0000" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},
		{"fallback trailing newline", func(c *Config) { c.FallbackNumber = "+15550100000\n" },
			`fallback_number: "+15550100000\n" is not E.164 ("+" then 8 to 15 digits, the first not 0)`},

		{"sip max_tcp_connections negative", func(c *Config) { c.SIP.MaxTCPConns = -1 },
			"sip.max_tcp_connections: must not be negative, got -1"},
		{"sip tcp_idle_timeout negative", func(c *Config) { c.SIP.TCPIdleTimeout = -time.Second },
			"sip.tcp_idle_timeout: must be positive, got -1s"},

		{"carrier name empty", func(c *Config) { c.Carriers[0].Name = "" }, "carriers[0].name: required"},
		{"carrier name upper case", func(c *Config) { c.Carriers[0].Name = "Carrier1" },
			`carriers[0].name: "Carrier1" must be 1 to 32 characters from [a-z0-9_-]`},
		{"carrier name too long", func(c *Config) { c.Carriers[0].Name = strings.Repeat("a", 33) },
			`carriers[0].name: "` + strings.Repeat("a", 33) + `" must be 1 to 32 characters from [a-z0-9_-]`},
		{"carrier name 32 chars", func(c *Config) { c.Carriers[0].Name = strings.Repeat("a", 32) }, ""},
		{"carrier name duplicate", func(c *Config) {
			c.Carriers = append(c.Carriers, Carrier{Name: "c2", SMPP: c.Carriers[0].SMPP}, Carrier{Name: "c1", SIP: c.Carriers[0].SIP})
		}, `carriers[2].name: duplicate name "c1" (also carriers[0])`},
		{"carrier without sections", func(c *Config) { c.Carriers[0].SIP, c.Carriers[0].SMPP = nil, nil },
			"carriers[0]: needs a sip or an smpp section (or both)"},
		{"carrier sip only", func(c *Config) { c.Carriers[0].SMPP = nil }, ""},
		{"carrier smpp only", func(c *Config) { c.Carriers[0].SIP = nil }, ""},

		{"sip address empty", func(c *Config) { c.Carriers[0].SIP.Address = "" }, "carriers[0].sip.address: required"},
		{"sip address no port", func(c *Config) { c.Carriers[0].SIP.Address = "sip.example.net" },
			"carriers[0].sip.address: missing port"},
		{"sip address port 0", func(c *Config) { c.Carriers[0].SIP.Address = "192.0.2.1:0" },
			"carriers[0].sip.address: port 0 is not a destination port"},
		{"sip address no host", func(c *Config) { c.Carriers[0].SIP.Address = ":5060" },
			"carriers[0].sip.address: missing host"},
		{"sip address uri", func(c *Config) { c.Carriers[0].SIP.Address = "sip:192.0.2.1:5060" },
			"carriers[0].sip.address: too many colons"},
		{"sip address hostname", func(c *Config) { c.Carriers[0].SIP.Address = "sip-1.carrier.example.:5060" }, ""},
		{"sip transport", func(c *Config) { c.Carriers[0].SIP.Transport = "ws" },
			`carriers[0].sip.transport: must be one of udp, tcp, tls, got "ws"`},
		{"sip inbound_cidrs bad", func(c *Config) { c.Carriers[0].SIP.InboundCIDRs = []string{"10.0.0.0/8", "10.0.0.1"} },
			`carriers[0].sip.inbound_cidrs[1]: "10.0.0.1" is not a CIDR prefix like 192.0.2.0/24`},
		{"sip inbound_cidrs too long", func(c *Config) { c.Carriers[0].SIP.InboundCIDRs = []string{"10.0.0.0/33"} },
			`carriers[0].sip.inbound_cidrs[0]: "10.0.0.0/33" is not a CIDR prefix like 192.0.2.0/24`},
		{"sip inbound_cidrs ipv6", func(c *Config) { c.Carriers[0].SIP.InboundCIDRs = []string{"2001:db8::/32", "0.0.0.0/0"} }, ""},
		{"sip inbound_cidrs empty", func(c *Config) { c.Carriers[0].SIP.InboundCIDRs = nil }, ""},
		{"sip number_format", func(c *Config) { c.Carriers[0].SIP.NumberFormat = "national" },
			`carriers[0].sip.number_format: must be one of e164, e164_noplus, got "national"`},

		{"smpp address empty", func(c *Config) { c.Carriers[0].SMPP.Address = "" }, "carriers[0].smpp.address: required"},
		{"smpp address no port", func(c *Config) { c.Carriers[0].SMPP.Address = "192.0.2.1" },
			"carriers[0].smpp.address: missing port"},
		{"smpp system_id empty", func(c *Config) { c.Carriers[0].SMPP.SystemID = "" }, "carriers[0].smpp.system_id: required"},
		{"smpp system_id 15", func(c *Config) { c.Carriers[0].SMPP.SystemID = strings.Repeat("s", 15) }, ""},
		{"smpp system_id 16", func(c *Config) { c.Carriers[0].SMPP.SystemID = strings.Repeat("s", 16) },
			"carriers[0].smpp.system_id: longer than 15 characters (SMPP 3.4 §4.1.1)"},
		{"smpp system_id not ascii", func(c *Config) { c.Carriers[0].SMPP.SystemID = "véil" },
			"carriers[0].smpp.system_id: must be printable ASCII (SMPP 3.4 §4.1.1)"},
		{"smpp password_env empty", func(c *Config) { c.Carriers[0].SMPP.PasswordEnv = "" }, ""},
		{"smpp password_env bad", func(c *Config) { c.Carriers[0].SMPP.PasswordEnv = "hunter2!" },
			`carriers[0].smpp.password_env: "hunter2!" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`},
		{"smpp window 0", func(c *Config) { c.Carriers[0].SMPP.Window = 0 },
			"carriers[0].smpp.window: must be between 1 and 1000, got 0"},
		{"smpp window 1001", func(c *Config) { c.Carriers[0].SMPP.Window = 1001 },
			"carriers[0].smpp.window: must be between 1 and 1000, got 1001"},
		{"smpp window 1", func(c *Config) { c.Carriers[0].SMPP.Window = 1 }, ""},
		{"smpp tps negative", func(c *Config) { c.Carriers[0].SMPP.TPS = -1 },
			"carriers[0].smpp.tps: must not be negative (0 means unlimited), got -1"},
		{"smpp bind_type", func(c *Config) { c.Carriers[0].SMPP.BindType = "receiver" },
			`carriers[0].smpp.bind_type: must be one of transceiver, transmitter_receiver, got "receiver"`},
		{"smpp tls_ca without tls", func(c *Config) { c.Carriers[0].SMPP.TLSCA = "/etc/veil/smsc-ca.pem" },
			"carriers[0].smpp.tls_ca: set but tls is false"},
		{"smpp tls_ca with tls", func(c *Config) { c.Carriers[0].SMPP.TLS, c.Carriers[0].SMPP.TLSCA = true, "/etc/veil/smsc-ca.pem" }, ""},
		{"sms validity zero", func(c *Config) { c.SMS.Validity = 0 }, "sms.validity: must be positive, got 0s"},
		{"sms validity negative", func(c *Config) { c.SMS.Validity = -time.Hour }, "sms.validity: must be positive, got -1h0m0s"},
		{"sms receipt_wait negative", func(c *Config) { c.SMS.ReceiptWait = -time.Second },
			"sms.receipt_wait: must be positive, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tt.mutate(c)
			err := c.Validate()
			got := problemsOf(err)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("Validate() problems = %q\nwant [%q]", got, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(tt.want, fe.Path+": ") {
				t.Errorf("errors.As FieldError = %+v, want path prefix of %q", fe, tt.want)
			}
		})
	}
}

// TestParseValidationErrors checks that Parse validates, reporting every
// problem at once, each with its key path, and that defaults do not hide
// explicit bad values.
func TestParseValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"negative durations", `
admin: {read_timeout: -1s}
sessions: {sweep_interval: -5m}
`, []string{
			"admin.read_timeout: must be positive, got -1s",
			"sessions.sweep_interval: must be positive, got -5m0s",
		}},
		{"default_ttl above default max_ttl", "sessions: {default_ttl: 9000h}\n", []string{
			"sessions.max_ttl: 8760h0m0s is less than sessions.default_ttl (9000h0m0s)",
		}},
		{"everything wrong at once", `
data_dir: ""
log: {level: verbose, format: xml}
admin: {listen: "localhost", token_env: "x y", max_body_bytes: -5}
sip: {listen: ["udp://127.0.0.1:5060", "udp://127.0.0.1:5060", "ws://127.0.0.1:80"]}
media: {address: localhost, port_min: 1000, port_max: 70000}
sessions: {default_ttl: -1h, max_ttl: -2h}
fallback_number: "555-0100"
carriers:
  - name: carrier1
    sip: {address: "127.0.0.1:5070", inbound_cidrs: ["127.0.0.1/32"]}
  - name: carrier1
    sip: {address: "127.0.0.1", transport: sctp, inbound_cidrs: ["127.0.0.1"], number_format: plus}
    smpp: {address: "", system_id: a-very-long-system-id, password_env: "p@ss", window: -1, tps: -1, bind_type: rx}
  - name: Bad Name
`, []string{
			"log.level: must be one of debug, info, warn, error, got \"verbose\"",
			"log.format: must be one of text, json, got \"xml\"",
			"admin.listen: missing port",
			`admin.token_env: "x y" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`,
			"admin.max_body_bytes: must be positive, got -5",
			"sip.listen[1]: duplicate of sip.listen[0]",
			`sip.listen[2]: "ws://127.0.0.1:80" has transport "ws", want udp, tcp or tls`,
			`media.address: "localhost" is not an IP address`,
			"media.port_min: must be between 1024 and 65535, got 1000",
			"media.port_max: must be between 1024 and 65535, got 70000",
			"sessions.default_ttl: must be positive, got -1h0m0s",
			"sessions.max_ttl: must be positive, got -2h0m0s",
			`fallback_number: "555-0100" is not E.164 ("+" then 8 to 15 digits, the first not 0)`,
			"carriers[1].sip.address: missing port",
			`carriers[1].sip.transport: must be one of udp, tcp, tls, got "sctp"`,
			`carriers[1].sip.inbound_cidrs[0]: "127.0.0.1" is not a CIDR prefix like 192.0.2.0/24`,
			`carriers[1].sip.number_format: must be one of e164, e164_noplus, got "plus"`,
			"carriers[1].smpp.address: required",
			"carriers[1].smpp.system_id: longer than 15 characters (SMPP 3.4 §4.1.1)",
			`carriers[1].smpp.password_env: "p@ss" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`,
			"carriers[1].smpp.window: must be between 1 and 1000, got -1",
			"carriers[1].smpp.tps: must not be negative (0 means unlimited), got -1",
			`carriers[1].smpp.bind_type: must be one of transceiver, transmitter_receiver, got "rx"`,
			`carriers[1].name: duplicate name "carrier1" (also carriers[0])`,
			`carriers[2].name: "Bad Name" must be 1 to 32 characters from [a-z0-9_-]`,
			"carriers[2]: needs a sip or an smpp section (or both)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrDecode) {
				t.Errorf("error wraps ErrInvalid=%v ErrDecode=%v, want true, false",
					errors.Is(err, ErrInvalid), errors.Is(err, ErrDecode))
			}
			got := problemsOf(err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSampleFiles(t *testing.T) {
	for _, name := range []string{"veil.yaml", "veil.example.yaml"} {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(name); err != nil {
				t.Fatal(err)
			}
		})
	}

	c, err := Load("veil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// No tls:// listener until secure calls bring certificates.
	wantListen := []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}
	if !slices.Equal(c.SIP.Listen, wantListen) {
		t.Errorf("sip.listen = %q, want %q", c.SIP.Listen, wantListen)
	}
	// Each carrier calls in from an address of its own: a trunk ACL
	// prefix belongs to one carrier.
	for _, want := range []struct{ name, sip, smpp, cidr string }{
		{"carrier1", "127.0.0.1:5070", "127.0.0.1:2775", "127.0.0.1/32"},
		{"carrier2", "127.0.0.1:5080", "127.0.0.1:2776", "127.0.0.2/32"},
	} {
		cr, ok := c.Carrier(want.name)
		if !ok {
			t.Errorf("veil.yaml has no carrier %q", want.name)
			continue
		}
		if cr.SIP == nil || cr.SIP.Address != want.sip || cr.SIP.Transport != "udp" ||
			!slices.Equal(cr.SIP.InboundCIDRs, []string{want.cidr}) {
			t.Errorf("%s sip = %+v", want.name, cr.SIP)
		}
		if cr.SMPP == nil || cr.SMPP.Address != want.smpp || cr.SMPP.SystemID != "veil" ||
			cr.SMPP.PasswordEnv != "VEIL_SMPP_PASSWORD" || cr.SMPP.Window != 50 {
			t.Errorf("%s smpp = %v", want.name, cr.SMPP)
		}
	}
}

// TestExampleDocumentsEveryKey walks the Config type and checks that
// veil.example.yaml sets every key and puts a comment on it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("veil.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	collectKeys(reflect.TypeFor[Config](), "", &keys)
	if len(keys) < 30 {
		t.Fatalf("collected only %d keys: %q", len(keys), keys)
	}
	for _, key := range keys {
		k, v := lookupKey(doc.Content[0], strings.Split(key, "."))
		switch {
		case k == nil:
			t.Errorf("veil.example.yaml does not set %s", key)
		case k.HeadComment == "" && k.LineComment == "" && v.LineComment == "":
			t.Errorf("veil.example.yaml: %s (line %d) has no comment", key, k.Line)
		}
	}
}

// collectKeys appends the dotted YAML key path of every field under t;
// slices of structs contribute "key.field" for their element fields.
func collectKeys(t reflect.Type, prefix string, out *[]string) {
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		key := prefix + tag
		*out = append(*out, key)
		ft := f.Type
		if ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
			collectKeys(ft, key+".", out)
		}
	}
}

// lookupKey returns the key and value nodes at path under n, looking into
// the first element of sequences.
func lookupKey(n *yaml.Node, path []string) (key, value *yaml.Node) {
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			return n.Content[i], n.Content[i+1]
		}
		return lookupKey(n.Content[i+1], path[1:])
	}
	return nil, nil
}

func TestCarrierLookup(t *testing.T) {
	c := mustParse(t, validYAML)
	cr, ok := c.Carrier("c1")
	if !ok || cr != &c.Carriers[0] {
		t.Fatalf("Carrier(c1) = %p, %v; want %p, true", cr, ok, &c.Carriers[0])
	}
	if cr, ok := c.Carrier("nope"); ok || cr != nil {
		t.Errorf("Carrier(nope) = %v, %v; want nil, false", cr, ok)
	}
}

func TestSecretsComeFromEnv(t *testing.T) {
	const password, token = "pw-s3cr3t", "tok-s3cr3t"
	t.Setenv("VEIL_SMPP_PASSWORD", password)
	t.Setenv("VEIL_ADMIN_TOKEN", token)
	c := mustParse(t, validYAML)
	smpp := c.Carriers[0].SMPP
	if got := smpp.Password(); got != password {
		t.Errorf("Password() = %q, want %q", got, password)
	}
	if got := c.Admin.Token(); got != token {
		t.Errorf("Token() = %q, want %q", got, token)
	}
	if got := (&CarrierSMPP{}).Password(); got != "" {
		t.Errorf("Password() with no password_env = %q, want empty", got)
	}

	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		slog.New(h).Info("bind", "smpp", smpp, "carrier", c.Carriers[0], "config", c)
	}
	outputs := map[string]string{
		"String":  smpp.String(),
		"%v":      fmt.Sprintf("%v %+v %v", c, c.Carriers[0], *smpp),
		"slog":    logs.String(),
		"nil ptr": (*CarrierSMPP)(nil).String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, password) || strings.Contains(out, token) {
			t.Errorf("%s output leaks a secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["String"], "password_env=VEIL_SMPP_PASSWORD") {
		t.Errorf("String() = %q, want it to name the env var", outputs["String"])
	}
	if !strings.Contains(logs.String(), "smpp.system_id=veil") {
		t.Errorf("slog output %q does not use LogValue", logs.String())
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if c, err := Load(write("empty.yaml", "")); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(empty) = %+v, %v; want Default()", c, err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) error = %v, want ErrNotExist naming the file", err)
	}

	bad := write("bad.yaml", "log: {level: loud}\n")
	_, err := Load(bad)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("Load(bad) error = %v, want ErrInvalid naming the file and log.level", err)
	}

	unknown := write("unknown.yaml", "\nlogs: {}\n")
	_, err = Load(unknown)
	if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), unknown) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load(unknown) error = %v, want ErrDecode naming the file and line 2", err)
	}
}

func TestSplitListen(t *testing.T) {
	tests := []struct {
		in              string
		transport, addr string
		wantErr         bool
	}{
		{"udp://127.0.0.1:5060", "udp", "127.0.0.1:5060", false},
		{"tcp://:5060", "tcp", ":5060", false},
		{"tls://[::1]:5061", "tls", "[::1]:5061", false},
		{"tls://sip.example.net:0", "tls", "sip.example.net:0", false},
		{"udp:127.0.0.1:5060", "", "", true},
		{"ws://127.0.0.1:80", "", "", true},
		{"udp://127.0.0.1", "", "", true},
		{"udp://", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		transport, addr, err := SplitListen(tt.in)
		if transport != tt.transport || addr != tt.addr || (err != nil) != tt.wantErr {
			t.Errorf("SplitListen(%q) = %q, %q, %v; want %q, %q, err=%v",
				tt.in, transport, addr, err, tt.transport, tt.addr, tt.wantErr)
		}
	}
}
