package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole veild configuration file. After Parse, Load or Default
// every zero value has been replaced by its default; see the doc comment of
// each field for units and defaults.
type Config struct {
	// DataDir is the directory holding the session store, recordings and
	// other state. Relative paths are relative to the working directory of
	// veild. Default "./data".
	DataDir string `yaml:"data_dir"`
	// Log configures the process logger.
	Log Log `yaml:"log"`
	// Admin configures the admin HTTP API.
	Admin Admin `yaml:"admin"`
	// SIP configures the SIP listeners.
	SIP SIP `yaml:"sip"`
	// Media configures the RTP relay.
	Media Media `yaml:"media"`
	// Sessions configures masking-session lifetimes.
	Sessions Sessions `yaml:"sessions"`
	// Shutdown configures how SIGTERM drains the daemon.
	Shutdown Shutdown `yaml:"shutdown"`
	// SMS configures masked messages over the carriers' SMPP binds.
	SMS SMS `yaml:"sms"`
	// FallbackNumber is an E.164 number ("+" then 8 to 15 digits, the first
	// not 0) that receives calls and SMS arriving on a masked number that has
	// no live session. Empty (the default) means such traffic is rejected.
	FallbackNumber string `yaml:"fallback_number"`
	// Carriers are the upstream SIP trunks and SMPP binds. Names are unique.
	// Default: none.
	Carriers []Carrier `yaml:"carriers"`
}

// Log configures the process logger (log/slog).
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error.
	// Default "info".
	Level string `yaml:"level"`
	// Format is the handler: text (slog.TextHandler) or json
	// (slog.JSONHandler). Default "text".
	Format string `yaml:"format"`
}

// Admin configures the admin HTTP API.
type Admin struct {
	// Listen is the host:port the admin API listens on. An empty host means
	// all interfaces; port 0 picks a free port (tests). Default
	// "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// TokenEnv is the NAME of the environment variable holding the bootstrap
	// admin token; the token itself is never in the file. See Token.
	// Default "VEIL_ADMIN_TOKEN".
	TokenEnv string `yaml:"token_env"`
	// ReadTimeout is http.Server.ReadTimeout. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout is http.Server.WriteTimeout. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is http.Server.IdleTimeout. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxBodyBytes caps a request body, in bytes. Default 1048576 (1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Token returns the bootstrap admin token: the value of the environment
// variable named by TokenEnv, or "" if it is unset.
func (a *Admin) Token() string { return os.Getenv(a.TokenEnv) }

// SIP configures the SIP listeners.
type SIP struct {
	// Listen lists the sockets veild accepts SIP on, each
	// "transport://host:port" with transport udp, tcp or tls (see
	// SplitListen). No duplicates. Default
	// ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"].
	Listen []string `yaml:"listen"`
	// RingTimeout is how long an outbound call attempt may ring
	// unanswered before Veil cancels it and tries the route's next
	// carrier. Default 60s.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// MaxCallDuration ends an answered call (BYE to both sides) after
	// this long. Default 4h.
	MaxCallDuration time.Duration `yaml:"max_call_duration"`
	// SocketBuffer is the receive and send buffer size, in bytes, of each
	// UDP listener. At hundreds of calls per second the kernel's default
	// buffer overflows and drops SIP datagrams. Default 4194304 (the
	// kernel caps it at net.core.rmem_max / wmem_max).
	SocketBuffer int `yaml:"socket_buffer"`
	// MaxCalls caps the calls in progress; an INVITE beyond it is
	// answered 503 at once. 0 (the default) derives it from the open-file
	// limit, since each call holds four media sockets.
	MaxCalls int `yaml:"max_calls"`
	// MaxTCPConns caps the SIP TCP connections open at once on each TCP
	// listener; past it a new connection is accepted and closed at once,
	// so that idle connections cannot exhaust the open-file limit. 0 (the
	// default) derives it from the open-file limit.
	MaxTCPConns int `yaml:"max_tcp_connections"`
	// TCPIdleTimeout closes a SIP TCP connection on which nothing arrived
	// for this long. Carriers keep TCP trunks open with keepalives, which
	// count as traffic. Default 5m.
	TCPIdleTimeout time.Duration `yaml:"tcp_idle_timeout"`
}

// Media configures the RTP relay.
type Media struct {
	// Address is the IP address RTP sockets bind to and that is written into
	// rewritten SDP. Must be an IP literal, not a host name.
	// Default "127.0.0.1".
	Address string `yaml:"address"`
	// PortMin is the lowest UDP port used for RTP. Must be even (RTP takes
	// the even port, RTCP the odd one above it) and at least 1024.
	// Default 20000.
	PortMin int `yaml:"port_min"`
	// PortMax is the highest UDP port used for RTP, at most 65535 and
	// greater than PortMin. Default 29999.
	PortMax int `yaml:"port_max"`
	// MediaTimeout ends an answered call (BYE to both sides) when no RTP
	// or RTCP arrived from either side for this long. Default 30s.
	MediaTimeout time.Duration `yaml:"media_timeout"`
}

// Sessions configures masking-session lifetimes.
type Sessions struct {
	// DefaultTTL is the lifetime of a session whose create request gives
	// neither ttl nor expires_at. Default 24h.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL is the longest lifetime a create request may ask for. Must be
	// at least DefaultTTL. Default 8760h (365 days).
	MaxTTL time.Duration `yaml:"max_ttl"`
	// SweepInterval is how often expired sessions are closed.
	// Default 1s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// SMS configures masked messages (the carriers' smpp sections configure
// the binds themselves).
type SMS struct {
	// SenderIDs are alphanumeric senders (1 to 11 characters of [A-Za-z0-9
	// ], not all digits) that POST /v1/messages may use as "from" besides
	// the proxy numbers. Default: none.
	SenderIDs []string `yaml:"sender_ids"`
	// ReassemblyTimeout is how long the parts of a concatenated inbound
	// message wait for the rest; then what arrived is relayed, marked
	// incomplete. Default 60s.
	ReassemblyTimeout time.Duration `yaml:"reassembly_timeout"`
	// AutoReply is the text sent back (from the proxy number) to someone
	// who texts a proxy number without an open session. Default "" (no
	// reply).
	AutoReply string `yaml:"auto_reply"`
	// SubmitTimeout is how long a submit_sm may wait for its response
	// before it is sent again. Default 30s.
	SubmitTimeout time.Duration `yaml:"submit_timeout"`
	// RetryMax is the longest backoff between submits of a part refused
	// with a transient error (throttled, queue full); backoff starts at
	// 100 ms and doubles. Default 30s.
	RetryMax time.Duration `yaml:"retry_max"`
	// Validity is how long an outbound message may wait for the carrier
	// to accept every part (throttled, refused with a transient error,
	// bind down), counted from when it was queued; then its unaccepted
	// parts are given up and the message ends expired. Default 24h.
	Validity time.Duration `yaml:"validity"`
	// ReceiptWait is how long an accepted part waits for its delivery
	// receipt: after it, the receipt index row of the part is deleted (a
	// later receipt is not matched). Default 72h.
	ReceiptWait time.Duration `yaml:"receipt_wait"`
}

var senderIDRE = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)

func (m *SMS) validate(p *problems) {
	seen := map[string]bool{}
	for i, id := range m.SenderIDs {
		path := fmt.Sprintf("sms.sender_ids[%d]", i)
		switch {
		case !senderIDRE.MatchString(id) || strings.Trim(id, "0123456789") == "":
			p.addf(path, "%q is not an alphanumeric sender id (1 to 11 of A-Z a-z 0-9 and space, not all digits)", id)
		case seen[id]:
			p.addf(path, "%q is listed twice", id)
		}
		seen[id] = true
	}
	checkPositive(p, "sms.reassembly_timeout", m.ReassemblyTimeout)
	checkPositive(p, "sms.submit_timeout", m.SubmitTimeout)
	checkPositive(p, "sms.retry_max", m.RetryMax)
	checkPositive(p, "sms.validity", m.Validity)
	checkPositive(p, "sms.receipt_wait", m.ReceiptWait)
	if len(m.AutoReply) > 1000 {
		p.addf("sms.auto_reply", "longer than 1000 bytes")
	}
}

// Shutdown configures SIGTERM handling: first the health check turns 503
// while everything still works (so load balancers move traffic away), then
// listeners close and in-flight work gets a deadline to finish.
type Shutdown struct {
	// DrainDelay is how long /healthz answers 503 before listeners close.
	// Default 2s.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// DrainTimeout bounds how long in-flight work may take to finish after
	// the listeners close. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Carrier is one upstream provider: a SIP trunk for voice, an SMPP bind for
// SMS, or both.
type Carrier struct {
	// Name identifies the carrier in the admin API, in logs and in the
	// store: 1 to 32 characters from [a-z0-9_-], unique. Required.
	Name string `yaml:"name"`
	// SIP is the voice trunk; nil means this carrier carries no calls.
	SIP *CarrierSIP `yaml:"sip"`
	// SMPP is the SMS bind; nil means this carrier carries no SMS.
	SMPP *CarrierSMPP `yaml:"smpp"`
}

// CarrierSIP is a carrier's SIP trunk.
type CarrierSIP struct {
	// Address is the carrier's SIP host:port that outbound INVITEs are sent
	// to. Required; the port is required too (no SRV lookup).
	Address string `yaml:"address"`
	// Transport is udp, tcp or tls. Default "udp".
	Transport string `yaml:"transport"`
	// InboundCIDRs are the source prefixes (e.g. "192.0.2.0/24") this
	// carrier's INVITEs may come from. Empty (the default) means no inbound
	// calls are accepted from this carrier: it is used outbound only.
	InboundCIDRs []string `yaml:"inbound_cidrs"`
	// NumberFormat is how numbers are written in Request-URI, To and From
	// toward this carrier: e164 ("+15551234567") or e164_noplus
	// ("15551234567"). Default "e164".
	NumberFormat string `yaml:"number_format"`
}

// CarrierSMPP is a carrier's SMPP 3.4 bind. It holds the name of the
// environment variable with the password, never the password, so it is safe
// to print and log; String and LogValue say so explicitly.
type CarrierSMPP struct {
	// Address is the SMSC's host:port. Required.
	Address string `yaml:"address"`
	// SystemID is the bind system_id: 1 to 15 printable ASCII characters
	// (SMPP 3.4 §4.1.1). Required.
	SystemID string `yaml:"system_id"`
	// PasswordEnv is the NAME of the environment variable holding the bind
	// password (SMPP 3.4 allows at most 8 characters). Empty means bind with
	// an empty password. See Password.
	PasswordEnv string `yaml:"password_env"`
	// Window is the maximum number of submit_sm awaiting a response, 1 to
	// 1000. Default 10.
	Window int `yaml:"window"`
	// TPS is the maximum number of submit_sm per second; 0 (the default)
	// means unlimited.
	TPS int `yaml:"tps"`
	// BindType is transceiver (one bind_transceiver session) or
	// transmitter_receiver (a bind_transmitter and a bind_receiver session).
	// Default "transceiver".
	BindType string `yaml:"bind_type"`
	// TLS connects to the SMSC over TLS (certificates checked against the
	// system roots, or TLSCA, and the address's host name or IP address).
	// Default false.
	TLS bool `yaml:"tls"`
	// TLSCA is the path of a PEM file of CA certificates that the SMSC's
	// certificate must chain to, instead of the system roots (a carrier's
	// private CA). Only with tls: true. Read when veild starts. Default ""
	// (the system roots).
	TLSCA string `yaml:"tls_ca"`
	// MessagePayload sends long messages whole in the message_payload TLV
	// (SMPP 3.4 §5.3.2.32) instead of concatenated short messages.
	// Default false.
	MessagePayload bool `yaml:"message_payload"`
	// EnquireLink is how often an idle bind is checked with enquire_link;
	// a bind silent for three times this long is dropped and made again.
	// Default 30s.
	EnquireLink time.Duration `yaml:"enquire_link"`
}

// Password returns the bind password: the value of the environment variable
// named by PasswordEnv, or "" if PasswordEnv is empty or the variable is
// unset.
func (c *CarrierSMPP) Password() string {
	if c.PasswordEnv == "" {
		return ""
	}
	return os.Getenv(c.PasswordEnv)
}

var (
	_ fmt.Stringer   = (*CarrierSMPP)(nil)
	_ slog.LogValuer = (*CarrierSMPP)(nil)
)

// String describes the bind without the password (only the name of its
// environment variable).
func (c *CarrierSMPP) String() string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("smpp{address=%s system_id=%s password_env=%s window=%d tps=%d bind_type=%s}",
		c.Address, c.SystemID, c.PasswordEnv, c.Window, c.TPS, c.BindType)
}

// LogValue logs the bind as a group without the password (only the name of
// its environment variable).
func (c *CarrierSMPP) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("address", c.Address),
		slog.String("system_id", c.SystemID),
		slog.String("password_env", c.PasswordEnv),
		slog.Int("window", c.Window),
		slog.Int("tps", c.TPS),
		slog.String("bind_type", c.BindType),
	)
}

// Carrier returns the carrier called name. The pointer points into
// c.Carriers.
func (c *Config) Carrier(name string) (*Carrier, bool) {
	for i := range c.Carriers {
		if c.Carriers[i].Name == name {
			return &c.Carriers[i], true
		}
	}
	return nil, false
}

// Load reads the YAML file at path and returns Parse's result. Errors name
// the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes one YAML document strictly (an unknown key, a duplicate key
// or a value of the wrong type is an error wrapping ErrDecode, with its line
// number), replaces zero values with defaults, and validates. Empty input, or
// a document with no content, yields Default(). Validation errors are the
// joined FieldErrors from Validate.
func Parse(data []byte) (*Config, error) {
	c := new(Config)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s", ErrDecode, operatorText(err))
	}
	// Decode reads only the first document; a second one would be silently
	// ignored, which is worse than refusing it. Empty ones (a trailing
	// "---") are harmless.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDecode, err)
		}
		if !isEmptyDocument(&extra) {
			return nil, fmt.Errorf("%w: line %d: more than one YAML document", ErrDecode, extra.Line)
		}
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// yaml.v3 names Go types in its messages ("field x not found in type
// configs.Admin", "cannot unmarshal !!str `1m` into int"); an operator
// thinks in keys and values.
var (
	unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type configs\.(\w+)`)
	intoTypeRE     = regexp.MustCompile(`into (time\.Duration|\[\]string|\[\]configs\.Carrier|configs\.\w+|\*configs\.\w+|int64|int|bool|string)`)
	sectionNames   = map[string]string{
		"Config": "", "CarrierSIP": "carrier's sip", "CarrierSMPP": "carrier's smpp", "Carrier": "carrier",
	}
	typeWords = map[string]string{
		"time.Duration": "a duration like 10s", "[]string": "a list of strings",
		"[]configs.Carrier": "a list of carriers", "int64": "an integer", "int": "an integer",
		"bool": "true or false", "string": "a string",
	}
)

func operatorText(err error) string {
	msg := unknownFieldRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := unknownFieldRE.FindStringSubmatch(m)
		section, ok := sectionNames[sub[2]]
		if !ok {
			section = strings.ToLower(sub[2])
		}
		if section == "" {
			return fmt.Sprintf("unknown key %q", sub[1])
		}
		return fmt.Sprintf("unknown key %q in the %s section", sub[1], section)
	})
	return intoTypeRE.ReplaceAllStringFunc(msg, func(m string) string {
		t := intoTypeRE.FindStringSubmatch(m)[1]
		if w, ok := typeWords[t]; ok {
			return "where " + w + " is expected"
		}
		return "where a mapping is expected"
	})
}

// isEmptyDocument reports whether n is a document with no content (or only
// null).
func isEmptyDocument(n *yaml.Node) bool {
	if n.Kind != yaml.DocumentNode {
		return false
	}
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!null" {
			return false
		}
	}
	return true
}

// Default returns the configuration an empty file yields.
func Default() *Config {
	c := new(Config)
	c.setDefaults()
	return c
}

// setDefaults replaces every zero value that has a default with that
// default. It is the only place defaults live: Default is setDefaults on a
// zero Config, and Parse calls it after decoding, so a carrier's nested
// defaults are applied to each carrier the file lists.
func (c *Config) setDefaults() {
	setZero(&c.DataDir, "./data")
	setZero(&c.Log.Level, "info")
	setZero(&c.Log.Format, "text")
	setZero(&c.Admin.Listen, "127.0.0.1:8080")
	setZero(&c.Admin.TokenEnv, "VEIL_ADMIN_TOKEN")
	setZero(&c.Admin.ReadTimeout, 10*time.Second)
	setZero(&c.Admin.WriteTimeout, 30*time.Second)
	setZero(&c.Admin.IdleTimeout, 120*time.Second)
	setZero(&c.Admin.MaxBodyBytes, 1<<20)
	if len(c.SIP.Listen) == 0 {
		c.SIP.Listen = []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}
	}
	setZero(&c.SIP.RingTimeout, 60*time.Second)
	setZero(&c.SIP.MaxCallDuration, 4*time.Hour)
	setZero(&c.SIP.SocketBuffer, 4<<20)
	setZero(&c.SIP.TCPIdleTimeout, 5*time.Minute)
	setZero(&c.Media.MediaTimeout, 30*time.Second)
	setZero(&c.Media.Address, "127.0.0.1")
	setZero(&c.Media.PortMin, 20000)
	setZero(&c.Media.PortMax, 29999)
	setZero(&c.Sessions.DefaultTTL, 24*time.Hour)
	setZero(&c.Sessions.MaxTTL, 8760*time.Hour)
	setZero(&c.Sessions.SweepInterval, time.Second)
	setZero(&c.Shutdown.DrainDelay, 2*time.Second)
	setZero(&c.Shutdown.DrainTimeout, 30*time.Second)
	setZero(&c.SMS.ReassemblyTimeout, 60*time.Second)
	setZero(&c.SMS.SubmitTimeout, 30*time.Second)
	setZero(&c.SMS.RetryMax, 30*time.Second)
	setZero(&c.SMS.Validity, 24*time.Hour)
	setZero(&c.SMS.ReceiptWait, 72*time.Hour)
	if len(c.SMS.SenderIDs) == 0 {
		c.SMS.SenderIDs = nil
	}
	if len(c.Carriers) == 0 {
		c.Carriers = nil // "carriers: []" is the same as no carriers key
	}
	for i := range c.Carriers {
		if s := c.Carriers[i].SIP; s != nil {
			setZero(&s.Transport, "udp")
			setZero(&s.NumberFormat, "e164")
		}
		if s := c.Carriers[i].SMPP; s != nil {
			setZero(&s.Window, 10)
			setZero(&s.BindType, "transceiver")
			setZero(&s.EnquireLink, 30*time.Second)
		}
	}
}

func setZero[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

var (
	carrierNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	e164RE        = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
)

// problems collects FieldErrors for Validate.
type problems []error

func (p *problems) addf(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks c as it is, without applying defaults, and reports every
// problem at once: the result is errors.Join of one *FieldError per problem,
// each naming its key path, or nil. Every problem wraps ErrInvalid.
func (c *Config) Validate() error {
	var p problems
	if c.DataDir == "" {
		p.addf("data_dir", "required")
	}
	checkEnum(&p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	checkEnum(&p, "log.format", c.Log.Format, "text", "json")
	c.Admin.validate(&p)
	c.SIP.validate(&p)
	c.Media.validate(&p)
	c.Sessions.validate(&p)
	checkPositive(&p, "shutdown.drain_delay", c.Shutdown.DrainDelay)
	checkPositive(&p, "shutdown.drain_timeout", c.Shutdown.DrainTimeout)
	c.SMS.validate(&p)
	if c.FallbackNumber != "" && !e164RE.MatchString(c.FallbackNumber) {
		p.addf("fallback_number", "%q is not E.164 (\"+\" then 8 to 15 digits, the first not 0)", c.FallbackNumber)
	}
	first := make(map[string]int, len(c.Carriers))
	for i := range c.Carriers {
		cr := &c.Carriers[i]
		path := fmt.Sprintf("carriers[%d]", i)
		cr.validate(&p, path)
		if cr.Name == "" {
			continue
		}
		if j, dup := first[cr.Name]; dup {
			p.addf(path+".name", "duplicate name %q (also carriers[%d])", cr.Name, j)
		} else {
			first[cr.Name] = i
		}
	}
	return errors.Join(p...)
}

func (a *Admin) validate(p *problems) {
	if msg := checkHostPort(a.Listen, true); msg != "" {
		p.addf("admin.listen", "%s", msg)
	}
	checkEnvName(p, "admin.token_env", a.TokenEnv, true)
	checkPositive(p, "admin.read_timeout", a.ReadTimeout)
	checkPositive(p, "admin.write_timeout", a.WriteTimeout)
	checkPositive(p, "admin.idle_timeout", a.IdleTimeout)
	if a.MaxBodyBytes <= 0 {
		p.addf("admin.max_body_bytes", "must be positive, got %d", a.MaxBodyBytes)
	}
}

func (s *SIP) validate(p *problems) {
	if len(s.Listen) == 0 {
		p.addf("sip.listen", "at least one listener required")
	}
	first := make(map[string]int, len(s.Listen))
	for i, uri := range s.Listen {
		path := fmt.Sprintf("sip.listen[%d]", i)
		transport, _, err := SplitListen(uri)
		if err != nil {
			p.addf(path, "%v", err)
			continue
		}
		if transport == "tls" {
			p.addf(path, "tls listeners are not supported yet (certificates come with secure calls): use udp:// or tcp://")
		}
		if j, dup := first[uri]; dup {
			p.addf(path, "duplicate of sip.listen[%d]", j)
		} else {
			first[uri] = i
		}
	}
	checkPositive(p, "sip.ring_timeout", s.RingTimeout)
	checkPositive(p, "sip.max_call_duration", s.MaxCallDuration)
	if s.MaxCalls < 0 {
		p.addf("sip.max_calls", "must not be negative, got %d", s.MaxCalls)
	}
	if s.SocketBuffer < 0 {
		p.addf("sip.socket_buffer", "must not be negative, got %d", s.SocketBuffer)
	}
	if s.MaxTCPConns < 0 {
		p.addf("sip.max_tcp_connections", "must not be negative, got %d", s.MaxTCPConns)
	}
	checkPositive(p, "sip.tcp_idle_timeout", s.TCPIdleTimeout)
}

func (m *Media) validate(p *problems) {
	if _, err := netip.ParseAddr(m.Address); err != nil {
		p.addf("media.address", "%q is not an IP address", m.Address)
	}
	checkPositive(p, "media.media_timeout", m.MediaTimeout)
	minOK := m.PortMin >= 1024 && m.PortMin <= 65535
	maxOK := m.PortMax >= 1024 && m.PortMax <= 65535
	if !minOK {
		p.addf("media.port_min", "must be between 1024 and 65535, got %d", m.PortMin)
	} else if m.PortMin%2 != 0 {
		p.addf("media.port_min", "must be even (RTP on even ports, RTCP on odd), got %d", m.PortMin)
	}
	if !maxOK {
		p.addf("media.port_max", "must be between 1024 and 65535, got %d", m.PortMax)
	}
	if minOK && maxOK && m.PortMax <= m.PortMin {
		p.addf("media.port_max", "must be greater than media.port_min (%d), got %d", m.PortMin, m.PortMax)
	}
}

func (s *Sessions) validate(p *problems) {
	checkPositive(p, "sessions.default_ttl", s.DefaultTTL)
	checkPositive(p, "sessions.max_ttl", s.MaxTTL)
	checkPositive(p, "sessions.sweep_interval", s.SweepInterval)
	if s.DefaultTTL > 0 && s.MaxTTL > 0 && s.MaxTTL < s.DefaultTTL {
		p.addf("sessions.max_ttl", "%v is less than sessions.default_ttl (%v)", s.MaxTTL, s.DefaultTTL)
	}
}

func (cr *Carrier) validate(p *problems, path string) {
	switch {
	case cr.Name == "":
		p.addf(path+".name", "required")
	case !carrierNameRE.MatchString(cr.Name):
		p.addf(path+".name", "%q must be 1 to 32 characters from [a-z0-9_-]", cr.Name)
	}
	if cr.SIP == nil && cr.SMPP == nil {
		p.addf(path, "needs a sip or an smpp section (or both)")
	}
	if s := cr.SIP; s != nil {
		path := path + ".sip"
		if msg := checkHostPort(s.Address, false); msg != "" {
			p.addf(path+".address", "%s", msg)
		}
		checkEnum(p, path+".transport", s.Transport, "udp", "tcp", "tls")
		if s.Transport == "tls" {
			p.addf(path+".transport", "tls is not supported yet (it comes with secure calls): use udp or tcp")
		}
		for i, cidr := range s.InboundCIDRs {
			if _, err := netip.ParsePrefix(cidr); err != nil {
				p.addf(fmt.Sprintf("%s.inbound_cidrs[%d]", path, i), "%q is not a CIDR prefix like 192.0.2.0/24", cidr)
			}
		}
		checkEnum(p, path+".number_format", s.NumberFormat, "e164", "e164_noplus")
	}
	if s := cr.SMPP; s != nil {
		path := path + ".smpp"
		if msg := checkHostPort(s.Address, false); msg != "" {
			p.addf(path+".address", "%s", msg)
		}
		switch {
		case s.SystemID == "":
			p.addf(path+".system_id", "required")
		case len(s.SystemID) > 15:
			p.addf(path+".system_id", "longer than 15 characters (SMPP 3.4 §4.1.1)")
		case !printableASCII(s.SystemID):
			p.addf(path+".system_id", "must be printable ASCII (SMPP 3.4 §4.1.1)")
		}
		checkEnvName(p, path+".password_env", s.PasswordEnv, false)
		if s.Window < 1 || s.Window > 1000 {
			p.addf(path+".window", "must be between 1 and 1000, got %d", s.Window)
		}
		if s.TPS < 0 {
			p.addf(path+".tps", "must not be negative (0 means unlimited), got %d", s.TPS)
		}
		checkEnum(p, path+".bind_type", s.BindType, "transceiver", "transmitter_receiver")
		if s.TLSCA != "" && !s.TLS {
			p.addf(path+".tls_ca", "set but tls is false")
		}
		if s.EnquireLink < time.Second {
			p.addf(path+".enquire_link", "must be at least 1s, got %s", s.EnquireLink)
		}
	}
}

// SplitListen splits a sip.listen entry "transport://host:port" into its
// transport ("udp", "tcp" or "tls") and its "host:port" address, ready for
// net.Listen or net.ListenPacket. The host may be empty (all interfaces) and
// the port may be 0 (a free port).
func SplitListen(uri string) (transport, addr string, err error) {
	transport, addr, ok := strings.Cut(uri, "://")
	if !ok {
		return "", "", fmt.Errorf("%q has no transport, want udp://, tcp:// or tls:// then host:port", uri)
	}
	switch transport {
	case "udp", "tcp", "tls":
	default:
		return "", "", fmt.Errorf("%q has transport %q, want udp, tcp or tls", uri, transport)
	}
	if msg := checkHostPort(addr, true); msg != "" {
		return "", "", fmt.Errorf("%q: %s", uri, msg)
	}
	return transport, addr, nil
}

// checkHostPort returns "" if s is a usable host:port and otherwise what is
// wrong with it. A listen address may have an empty host and port 0; a
// remote address needs both.
func checkHostPort(s string, listen bool) string {
	if s == "" {
		return "required"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return strings.TrimSuffix(ae.Err, " in address")
		}
		return err.Error()
	}
	n, err := strconv.ParseUint(port, 10, 16)
	switch {
	case port == "":
		return "missing port"
	case err != nil:
		return fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	case n == 0 && !listen:
		return "port 0 is not a destination port"
	}
	switch {
	case host == "" && !listen:
		return "missing host"
	case host == "":
	case isIP(host):
	case !validHostname(host):
		return fmt.Sprintf("%q is neither an IP address nor a host name", host)
	}
	return ""
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validHostname reports whether s is a DNS name made of letter-digit-hyphen
// labels (RFC 1123 §2.1), optionally ending in a dot.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkEnum(p *problems, path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.addf(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func checkPositive(p *problems, path string, d time.Duration) {
	if d <= 0 {
		p.addf(path, "must be positive, got %v", d)
	}
}

func checkEnvName(p *problems, path, name string, required bool) {
	switch {
	case name == "" && required:
		p.addf(path, "required")
	case name != "" && !envNameRE.MatchString(name):
		p.addf(path, "%q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
	}
}
