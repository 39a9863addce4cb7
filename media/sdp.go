package media

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Limits on the SDP bodies Veil accepts. A carrier's audio offer is well
// under 1 KiB with one or two media sections; anything past these is refused
// with [ErrBadSDP] rather than parsed.
const (
	// MaxSDPSize is the largest SDP body accepted, in bytes.
	MaxSDPSize = 16 << 10
	// MaxMediaSections is the largest number of m= lines accepted.
	MaxMediaSections = 8
)

// originUsername is the o= username on every SDP Veil sends (RFC 4566 §5.2).
const originUsername = "veil"

// LegAddr is where Veil receives media on one leg: the address and, per
// media section of the SDP being rewritten (in m= line order), the RTP port
// Veil allocated for it. RTCP goes to the next port up, or to the same port
// when the section negotiates rtcp-mux (RFC 5761).
type LegAddr struct {
	// IP is Veil's media address on this leg; it becomes the o= and c=
	// address of the rewritten SDP. It must be valid and not unspecified.
	IP netip.Addr
	// Ports has exactly one entry per m= line. The entry is ignored for a
	// section that is rejected (see [MediaInfo].Rejected); a zero entry
	// for any other section rejects it in the rewritten SDP.
	Ports []int
}

// RewriteOptions tunes [RewriteSDP]. The zero value drops SRTP keys and
// uses session id and version 0.
type RewriteOptions struct {
	// SessionID is the o= sess-id of the rewritten SDP: Veil's own, chosen
	// once per leg, never the peer's (RFC 4566 §5.2).
	SessionID uint64
	// SessionVersion is the o= sess-version; the caller increments it for
	// every new offer or answer it sends on the leg (RFC 3264 §8).
	SessionVersion uint64
	// KeepCrypto passes the peer's a=crypto lines (RFC 4568) through
	// unchanged (SRTP pass-through). By default they are dropped: keys are
	// per leg, and re-keying comes with the SRTP relay.
	KeepCrypto bool
}

// Direction is a media section's direction attribute (RFC 3264 §5.1). The
// zero value is sendrecv, the default when none is given.
type Direction uint8

// Directions, as the attribute names of RFC 4566 §6.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the SDP attribute name of d.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	default:
		return "sendrecv"
	}
}

func parseDirection(key string) (Direction, bool) {
	switch key {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return 0, false
}

// SDPInfo describes the peer's SDP, for the relay and the SIP layer.
type SDPInfo struct {
	// Media has one entry per m= line, in order.
	Media []MediaInfo
}

// MediaInfo describes one media section of the peer's SDP.
type MediaInfo struct {
	// Type is the media type: "audio", "video", ...
	Type string
	// Proto is the transport protocol, e.g. "RTP/AVP" or "RTP/SAVP".
	Proto string
	// Peer is where the peer expects to receive RTP: its connection
	// address and port. It is where the relay sends until latching learns
	// the real source. An unspecified address (0.0.0.0) is the old-style
	// hold of RFC 3264 §8.4; Direction then already accounts for it.
	Peer netip.AddrPort
	// Rejected is true when the section carries no media through Veil:
	// the peer's port is 0, its transport is not RTP, or (after
	// [RewriteSDP]) the caller gave it port 0. It is sent with port 0 and
	// needs no relay port.
	Rejected bool
	// PayloadTypes are the RTP payload types of the m= line, in order of
	// preference. Empty when the transport is not RTP.
	PayloadTypes []uint8
	// TelephoneEvent is the payload type of RFC 4733 telephone-event
	// (DTMF), valid when HasTelephoneEvent.
	TelephoneEvent    uint8
	HasTelephoneEvent bool
	// Direction is the section's effective direction as Veil forwards it:
	// the media attribute, else the session attribute, else sendrecv,
	// turned into sendonly (or inactive) for an old-style hold.
	Direction Direction
	// RTCPMux is true when the peer offers or accepts rtcp-mux (RFC 5761).
	RTCPMux bool
	// SRTP is true for the RTP/SAVP and RTP/SAVPF transports (RFC 3711).
	SRTP bool
}

// ParseSDP validates an SDP body the way [RewriteSDP] does and describes it
// without rewriting it. The SIP layer calls it on an offer to learn how many
// relay ports to allocate before calling [RewriteSDP]. Errors wrap
// [ErrBadSDP].
func ParseSDP(in []byte) (*SDPInfo, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	return p.info(), nil
}

// RewriteSDP turns the peer's SDP from one leg into the SDP Veil sends on
// the other leg, whose media address is leg. The result is a new session
// description (RFC 4566), not an edited copy:
//
//	v=0
//	o=veil <opts.SessionID> <opts.SessionVersion> IN IP4|IP6 <leg.IP>
//	s=-
//	c=IN IP4|IP6 <leg.IP>
//	t=0 0
//	m=<same media> <leg.Ports[i], or 0 if rejected> <same proto> <same formats>
//	a=<allow-listed attributes only> ...
//	a=<effective direction>
//
// Per media section it keeps the formats (codecs stay as the peers
// negotiate them) and only these attributes: rtpmap and fmtp of those
// formats, ptime, maxptime, silenceSupp, rtcp-mux, the direction (so
// hold and resume pass through), and crypto when opts.KeepCrypto. Everything
// else is dropped: the peer's origin, session name, i=, u=, e=, p=, b=, k=,
// ICE, DTLS, ssrc, msid, mid and group, a=rtcp with the peer's address,
// extmap, tool and any custom attribute. A rejected section keeps its
// formats, with port 0 and no attributes (RFC 3264 §6).
//
// The returned info describes the peer's SDP; its Rejected fields also
// reflect the ports the caller gave. Errors wrap [ErrBadSDP] (the peer's
// SDP) or [ErrBadLeg] (the caller's leg).
func RewriteSDP(in []byte, leg LegAddr, opts RewriteOptions) ([]byte, *SDPInfo, error) {
	p, err := parse(in)
	if err != nil {
		return nil, nil, err
	}
	out, err := p.rewrite(leg, opts)
	if err != nil {
		return nil, nil, err
	}
	info := p.info()
	for i := range info.Media {
		if leg.Ports[i] == 0 {
			info.Media[i].Rejected = true
		}
	}
	return out, info, nil
}

// rewrite builds the SDP of RewriteSDP from a parsed description; p is
// not modified, so one parse serves several rewrites (the Bridge parses a
// peer's SDP once per offer or answer).
func (p *parsed) rewrite(leg LegAddr, opts RewriteOptions) ([]byte, error) {
	ip := leg.IP.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("address %v: %w", leg.IP, ErrBadLeg)
	}
	if len(leg.Ports) != len(p.media) {
		return nil, fmt.Errorf("%d ports for %d media sections: %w", len(leg.Ports), len(p.media), ErrBadLeg)
	}
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	for i := range p.media {
		if port := leg.Ports[i]; !p.media[i].info.Rejected && (port < 0 || port > 65535) {
			return nil, fmt.Errorf("media section %d: port %d: %w", i, port, ErrBadLeg)
		}
	}
	// The description is appended line by line (RFC 4566 §5, in its
	// order) rather than built as a pion SessionDescription and
	// marshalled: that took a tenth of veild's CPU under load (two
	// passes, a sizing one and a writing one, over many small values).
	// The output is byte for byte what pion's Marshal gave (the golden
	// files in testdata hold it).
	b := make([]byte, 0, 256)
	b = append(b, "v=0\r\no="...)
	b = append(b, originUsername...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, opts.SessionID, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, opts.SessionVersion, 10)
	b = append(b, " IN "...)
	b = append(b, addrType...)
	b = append(b, ' ')
	b = ip.AppendTo(b)
	b = append(b, "\r\ns=-\r\nc=IN "...)
	b = append(b, addrType...)
	b = append(b, ' ')
	b = ip.AppendTo(b)
	b = append(b, "\r\nt=0 0\r\n"...)
	for i := range p.media {
		m := &p.media[i]
		port := leg.Ports[i]
		rejected := m.info.Rejected || port == 0
		if rejected {
			port = 0
		}
		b = append(b, "m="...)
		b = append(b, m.info.Type...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(port), 10)
		b = append(b, ' ')
		b = append(b, m.info.Proto...)
		for _, f := range m.formats {
			b = append(b, ' ')
			b = append(b, f...)
		}
		b = append(b, "\r\n"...)
		if !rejected {
			b = m.appendAttributes(b, opts)
		}
	}
	return b, nil
}

// parsed is a validated peer SDP, reduced to what Veil may forward.
type parsed struct {
	media []parsedMedia
}

type parsedMedia struct {
	info    MediaInfo
	formats []string
	// formatAttrs are the rtpmap and fmtp attributes of offered formats,
	// in input order. A slice, not maps by payload type: a section has a
	// handful, and the maps were a tenth of the allocations of a parse.
	formatAttrs []formatAttr
	single      []sdp.Attribute // ptime, maxptime, silenceSupp: first of each
	crypto      []string
}

func (p *parsed) info() *SDPInfo {
	info := &SDPInfo{Media: make([]MediaInfo, len(p.media))}
	for i, m := range p.media {
		info.Media[i] = m.info
		info.Media[i].PayloadTypes = append([]uint8(nil), m.info.PayloadTypes...)
	}
	return info
}

// appendAttributes appends the allow-listed attributes of m, one a= line
// each, in a canonical order: rtpmap and fmtp per format in m= order, then
// ptime, maxptime and silenceSupp, crypto, rtcp-mux and the direction.
func (m *parsedMedia) appendAttributes(b []byte, opts RewriteOptions) []byte {
	for i, pt := range m.info.PayloadTypes {
		// A payload type listed twice in m= gets its lines once; m is
		// not modified, so that it can be rewritten again.
		if slices.Contains(m.info.PayloadTypes[:i], pt) {
			continue
		}
		for _, key := range [...]string{"rtpmap", "fmtp"} {
			for _, fa := range m.formatAttrs {
				if fa.pt == pt && fa.key == key {
					b = appendAttr(b, key, fa.value)
				}
			}
		}
	}
	for _, a := range m.single {
		b = appendAttr(b, a.Key, a.Value)
	}
	if opts.KeepCrypto {
		for _, v := range m.crypto {
			b = appendAttr(b, "crypto", v)
		}
	}
	if m.info.RTCPMux {
		b = appendAttr(b, "rtcp-mux", "")
	}
	return appendAttr(b, m.info.Direction.String(), "")
}

// appendAttr appends the line a=key, or a=key:value when value is not
// empty (RFC 4566 §5.13).
func appendAttr(b []byte, key, value string) []byte {
	b = append(b, "a="...)
	b = append(b, key...)
	if value != "" {
		b = append(b, ':')
		b = append(b, value...)
	}
	return append(b, "\r\n"...)
}

// formatAttr is an rtpmap or fmtp attribute (key) of payload type pt.
type formatAttr struct {
	pt    uint8
	key   string
	value string
}

func badSDP(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrBadSDP)...)
}

// clip shortens peer-supplied text quoted in an error.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func parse(in []byte) (*parsed, error) {
	if len(in) > MaxSDPSize {
		return nil, badSDP("%d bytes, over the %d byte limit", len(in), MaxSDPSize)
	}
	if len(strings.TrimSpace(string(in))) == 0 {
		return nil, badSDP("empty body")
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(in); err != nil {
		return nil, badSDP("parsing: %v", err)
	}
	if sd.Version != 0 {
		return nil, badSDP("version %d", sd.Version)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, badSDP("no media section")
	}
	if len(sd.MediaDescriptions) > MaxMediaSections {
		return nil, badSDP("%d media sections, over the limit of %d", len(sd.MediaDescriptions), MaxMediaSections)
	}
	var sessAddr netip.Addr
	if sd.ConnectionInformation != nil {
		a, err := connAddr(sd.ConnectionInformation)
		if err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
		sessAddr = a
	}
	sessDir, _, err := direction(sd.Attributes)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	p := &parsed{media: make([]parsedMedia, 0, len(sd.MediaDescriptions))}
	for i, md := range sd.MediaDescriptions {
		m, err := parseMedia(md, sessAddr, sessDir)
		if err != nil {
			return nil, fmt.Errorf("media section %d: %w", i, err)
		}
		p.media = append(p.media, m)
	}
	return p, nil
}

// connAddr validates a c= line: IN, IP4 or IP6, and a unicast literal
// address of that family. Multicast (RFC 4566 §5.7 TTL and range suffixes)
// and host names are refused: carriers send literals, and Veil relays
// unicast only.
func connAddr(c *sdp.ConnectionInformation) (netip.Addr, error) {
	if c.NetworkType != "IN" || (c.AddressType != "IP4" && c.AddressType != "IP6") {
		return netip.Addr{}, badSDP("c=%s %s: not IN IP4/IP6", clip(c.NetworkType), clip(c.AddressType))
	}
	if c.Address == nil {
		return netip.Addr{}, badSDP("c= without an address")
	}
	a, err := netip.ParseAddr(c.Address.Address)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, badSDP("c= address %q is not an IP literal", clip(c.Address.Address))
	}
	if (c.AddressType == "IP4") != a.Is4() {
		return netip.Addr{}, badSDP("c= address %q is not %s", clip(c.Address.Address), c.AddressType)
	}
	if a.IsMulticast() {
		return netip.Addr{}, badSDP("c= address %q is multicast", clip(c.Address.Address))
	}
	return a, nil
}

// direction finds the one direction attribute among attrs (RFC 3264 §5.1).
func direction(attrs []sdp.Attribute) (Direction, bool, error) {
	var d Direction
	found := false
	for _, a := range attrs {
		nd, ok := parseDirection(a.Key)
		if !ok {
			continue
		}
		if found && nd != d {
			return 0, false, badSDP("conflicting directions %s and %s", d, nd)
		}
		d, found = nd, true
	}
	return d, found, nil
}

// isRTP reports whether proto is one of the RTP profiles Veil relays:
// RTP/AVP (RFC 3551), RTP/AVPF (RFC 4585), RTP/SAVP (RFC 3711) and
// RTP/SAVPF (RFC 5124).
func isRTP(proto string) (rtp, srtp bool) {
	switch proto {
	case "RTP/AVP", "RTP/AVPF":
		return true, false
	case "RTP/SAVP", "RTP/SAVPF":
		return true, true
	}
	return false, false
}

func parseMedia(md *sdp.MediaDescription, sessAddr netip.Addr, sessDir Direction) (parsedMedia, error) {
	mn := md.MediaName
	m := parsedMedia{
		info: MediaInfo{
			Type:  mn.Media,
			Proto: strings.Join(mn.Protos, "/"),
		},
	}
	port := mn.Port.Value
	if port < 0 || port > 65535 {
		return m, badSDP("port %d out of range", port)
	}
	if mn.Port.Range != nil && *mn.Port.Range != 1 {
		// Layered encodings over several ports (RFC 4566 §5.14) are
		// not relayed.
		return m, badSDP("port range %d/%d", port, *mn.Port.Range)
	}
	if len(mn.Formats) == 0 {
		return m, badSDP("m= line without formats")
	}
	rtp, srtp := isRTP(m.info.Proto)
	m.info.SRTP = srtp
	for _, f := range mn.Formats {
		if !printable(f) {
			return m, badSDP("format %q", clip(f))
		}
		if rtp {
			pt, err := strconv.ParseUint(f, 10, 8)
			if err != nil || pt > 127 {
				return m, badSDP("RTP payload type %q", clip(f))
			}
			m.info.PayloadTypes = append(m.info.PayloadTypes, uint8(pt))
		}
	}
	m.formats = append([]string(nil), mn.Formats...)
	// Anything other than RTP (T.38 over UDPTL, MSRP, DTLS data channels)
	// is declined with port 0, as an answerer declines a stream it does
	// not support (RFC 3264 §6).
	m.info.Rejected = port == 0 || !rtp

	addr := sessAddr
	if md.ConnectionInformation != nil {
		a, err := connAddr(md.ConnectionInformation)
		if err != nil {
			return m, err
		}
		addr = a
	}
	if !addr.IsValid() && !m.info.Rejected {
		// RFC 4566 §5.7: c= at session level or in every media section.
		// A rejected section may omit it: nothing will be sent to it.
		return m, badSDP("no c= line for the section or the session")
	}
	if addr.IsValid() {
		m.info.Peer = netip.AddrPortFrom(addr, uint16(port))
	}

	dir, found, err := direction(md.Attributes)
	if err != nil {
		return m, err
	}
	if !found {
		dir = sessDir
	}
	if addr.IsValid() && addr.IsUnspecified() {
		// Old-style hold (RFC 3264 §8.4): c=0.0.0.0 means "do not send
		// to me". Veil's c= is always its own address, so the same
		// meaning travels as the direction instead.
		switch dir {
		case SendRecv:
			dir = SendOnly
		case RecvOnly:
			dir = Inactive
		}
	}
	m.info.Direction = dir

	if m.info.Rejected {
		return m, nil
	}
	var seenPtime, seenMaxptime, seenSilence bool
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap", "fmtp":
			pt, rest, err := ptValue(a)
			if err != nil {
				return m, err
			}
			if !hasPT(m.info.PayloadTypes, pt) {
				continue // describes a format not offered: drop
			}
			if a.Key == "rtpmap" {
				if err := checkRTPMap(rest); err != nil {
					return m, err
				}
				m.formatAttrs = append(m.formatAttrs, formatAttr{pt: pt, key: "rtpmap", value: a.Value})
				if strings.EqualFold(encodingName(rest), "telephone-event") && !m.info.HasTelephoneEvent {
					m.info.TelephoneEvent, m.info.HasTelephoneEvent = pt, true
				}
			} else {
				m.formatAttrs = append(m.formatAttrs, formatAttr{pt: pt, key: "fmtp", value: a.Value})
			}
		case "ptime", "maxptime":
			if !isNumber(a.Value) {
				return m, badSDP("a=%s:%q", a.Key, clip(a.Value))
			}
			seen := &seenPtime
			if a.Key == "maxptime" {
				seen = &seenMaxptime
			}
			if !*seen {
				*seen = true
				m.single = append(m.single, a)
			}
		case "silenceSupp":
			if !printable(a.Value) {
				return m, badSDP("a=silenceSupp:%q", clip(a.Value))
			}
			if !seenSilence {
				seenSilence = true
				m.single = append(m.single, a)
			}
		case "crypto":
			if !printable(a.Value) {
				return m, badSDP("a=crypto value")
			}
			m.crypto = append(m.crypto, a.Value)
		case "rtcp-mux":
			m.info.RTCPMux = true
		}
	}
	return m, nil
}

// ptValue splits an rtpmap or fmtp value "<payload type> <rest>"
// (RFC 4566 §6) and checks that rest is printable text.
func ptValue(a sdp.Attribute) (uint8, string, error) {
	ptText, rest, ok := strings.Cut(a.Value, " ")
	pt, err := strconv.ParseUint(ptText, 10, 8)
	if !ok || err != nil || pt > 127 || !printable(rest) {
		return 0, "", badSDP("a=%s:%q", a.Key, clip(a.Value))
	}
	return uint8(pt), rest, nil
}

// checkRTPMap checks "<encoding name>/<clock rate>[/<parameters>]".
func checkRTPMap(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) < 2 || len(parts) > 3 || !isToken(parts[0]) || !isDigits(parts[1]) ||
		(len(parts) == 3 && !isDigits(parts[2])) {
		return badSDP("a=rtpmap encoding %q", clip(v))
	}
	return nil
}

func encodingName(v string) string {
	name, _, _ := strings.Cut(v, "/")
	return name
}

func hasPT(pts []uint8, pt uint8) bool {
	for _, p := range pts {
		if p == pt {
			return true
		}
	}
	return false
}

// printable reports whether s is non-empty visible US-ASCII, spaces allowed
// inside: what Veil is willing to copy from a peer's attribute value.
func printable(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNumber accepts an integer or a decimal such as "20" or "22.5".
func isNumber(s string) bool {
	whole, frac, ok := strings.Cut(s, ".")
	return isDigits(whole) && (!ok || isDigits(frac))
}

// isToken accepts an RTP encoding name: letters, digits, '-', '_' and '.'.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
