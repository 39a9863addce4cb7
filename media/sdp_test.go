package media

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testLeg is Veil's side of the leg in golden and fuzz tests.
var testIP = netip.MustParseAddr("203.0.113.10")

const (
	testSessionID      = 4242
	testSessionVersion = 7
)

// legFor gives every media section of in a port, 40000 upwards.
func legFor(tb testing.TB, in []byte) LegAddr {
	tb.Helper()
	info, err := ParseSDP(in)
	if err != nil {
		tb.Fatalf("ParseSDP: %v", err)
	}
	leg := LegAddr{IP: testIP}
	for i := range info.Media {
		leg.Ports = append(leg.Ports, 40000+2*i)
	}
	return leg
}

// optsFor derives the options of a golden case from its file name.
func optsFor(name string) RewriteOptions {
	return RewriteOptions{
		SessionID:      testSessionID,
		SessionVersion: testSessionVersion,
		KeepCrypto:     strings.Contains(name, "srtp-keep"),
	}
}

func inputs(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata/*.sdp: %v", err)
	}
	return files
}

func formatInfo(info *SDPInfo) string {
	var b strings.Builder
	for i, m := range info.Media {
		te := "none"
		if m.HasTelephoneEvent {
			te = fmt.Sprint(m.TelephoneEvent)
		}
		fmt.Fprintf(&b, "media %d: %s %s peer=%v rejected=%v pts=%v telephone-event=%s direction=%v rtcp-mux=%v srtp=%v\n",
			i, m.Type, m.Proto, m.Peer, m.Rejected, m.PayloadTypes, te, m.Direction, m.RTCPMux, m.SRTP)
	}
	return b.String()
}

// TestRewriteSDPGolden rewrites every testdata/*.sdp and compares the SDP
// and its description with testdata/*.golden (go test -update rewrites
// them).
func TestRewriteSDPGolden(t *testing.T) {
	for _, file := range inputs(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".sdp")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, info, err := RewriteSDP(in, legFor(t, in), optsFor(name))
			if err != nil {
				t.Fatalf("RewriteSDP: %v", err)
			}
			if !bytes.HasSuffix(out, []byte("\r\n")) || bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
				t.Errorf("output lines do not all end in CRLF:\n%q", out)
			}
			got := strings.ReplaceAll(string(out), "\r\n", "\n") + "-- info --\n" + formatInfo(info)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestRewriteSDPLeaksNothing checks that no output carries the peer's
// addresses, o= username or session id and version, or a LEAKME marker.
func TestRewriteSDPLeaksNothing(t *testing.T) {
	for _, file := range inputs(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var peer sdp.SessionDescription
			if err := peer.Unmarshal(in); err != nil {
				t.Fatal(err)
			}
			secrets := []string{
				"LEAKME",
				fmt.Sprint(peer.Origin.SessionID),
				fmt.Sprint(peer.Origin.SessionVersion),
				peer.Origin.UnicastAddress,
			}
			if len(peer.Origin.Username) > 2 {
				secrets = append(secrets, peer.Origin.Username)
			}
			if c := peer.ConnectionInformation; c != nil && c.Address != nil {
				secrets = append(secrets, c.Address.Address)
			}
			for _, md := range peer.MediaDescriptions {
				if c := md.ConnectionInformation; c != nil && c.Address != nil {
					secrets = append(secrets, c.Address.Address)
				}
			}
			for _, keep := range []bool{false, true} {
				opts := optsFor("")
				opts.KeepCrypto = keep
				out, _, err := RewriteSDP(in, legFor(t, in), opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range secrets {
					// Shorter strings would match by chance; testdata
					// uses long, distinctive values.
					if len(s) >= 4 && bytes.Contains(out, []byte(s)) {
						t.Errorf("output carries %q:\n%s", s, out)
					}
				}
				if !bytes.Contains(out, []byte(testIP.String())) {
					t.Errorf("output lacks our address:\n%s", out)
				}
			}
		})
	}
}

const validSDP = "v=0\r\n" +
	"o=x 1 1 IN IP4 198.51.100.1\r\n" +
	"s=-\r\n" +
	"c=IN IP4 198.51.100.1\r\n" +
	"t=0 0\r\n" +
	"m=audio 31000 RTP/AVP 0\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n"

func TestParseSDPBad(t *testing.T) {
	head := "v=0\r\no=x 1 1 IN IP4 198.51.100.1\r\ns=-\r\n"
	manyMedia := head + "c=IN IP4 198.51.100.1\r\nt=0 0\r\n" + strings.Repeat("m=audio 31000 RTP/AVP 0\r\n", MaxMediaSections+1)
	huge := validSDP + strings.Repeat("a=X-pad:0123456789012345678901234567890123456789\r\n", MaxSDPSize/50)
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"blank lines", "\r\n\r\n"},
		{"garbage", "hello world"},
		{"binary", "\x00\x01\x02v=0"},
		{"too large", huge},
		{"version 1", strings.Replace(validSDP, "v=0", "v=1", 1)},
		{"no origin", "v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"},
		{"no media", head + "c=IN IP4 198.51.100.1\r\nt=0 0\r\n"},
		{"too many media", manyMedia},
		{"lines out of order", head + "m=audio 31000 RTP/AVP 0\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"},
		{"unknown line type", strings.Replace(validSDP, "t=0 0", "x=foo\r\nt=0 0", 1)},
		{"c= not IN", strings.Replace(validSDP, "c=IN IP4", "c=ATM NSAP", 1)},
		{"c= not IP4/IP6", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IPX 198.51.100.1", 1)},
		{"c= host name", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP4 sbc.carrier.example", 1)},
		{"c= IP4 with IPv6 address", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP4 2001:db8::1", 1)},
		{"c= IP6 with IPv4 address", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP6 198.51.100.1", 1)},
		{"c= multicast with TTL", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP4 224.2.1.1/127", 1)},
		{"c= multicast", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP4 224.2.1.1", 1)},
		{"c= without address", strings.Replace(validSDP, "c=IN IP4 198.51.100.1", "c=IN IP4", 1)},
		{"media c= bad", validSDP + "c=IN IP4 300.1.1.1\r\n"},
		{"missing c= for media", head + "t=0 0\r\nm=audio 31000 RTP/AVP 0\r\n"},
		{"missing c= for second media", head + "t=0 0\r\nm=audio 31000 RTP/AVP 0\r\nc=IN IP4 198.51.100.1\r\nm=audio 31002 RTP/AVP 0\r\n"},
		{"port too large", strings.Replace(validSDP, "31000", "70000", 1)},
		{"port negative", strings.Replace(validSDP, "31000", "-1", 1)},
		{"port not a number", strings.Replace(validSDP, "31000", "rtp", 1)},
		{"port range", strings.Replace(validSDP, "31000", "31000/2", 1)},
		{"unknown media", strings.Replace(validSDP, "m=audio", "m=fax", 1)},
		{"T.38 image", strings.Replace(validSDP, "m=audio 31000 RTP/AVP 0", "m=image 31000 udptl t38", 1)},
		{"unknown proto", strings.Replace(validSDP, "RTP/AVP", "RTP/XYZ", 1)},
		{"no formats", strings.Replace(validSDP, "RTP/AVP 0", "RTP/AVP", 1)},
		{"payload type not a number", strings.Replace(validSDP, "RTP/AVP 0", "RTP/AVP PCMU", 1)},
		{"payload type over 127", strings.Replace(validSDP, "RTP/AVP 0", "RTP/AVP 200", 1)},
		{"rtpmap without clock", strings.Replace(validSDP, "PCMU/8000", "PCMU", 1)},
		{"rtpmap bad clock", strings.Replace(validSDP, "PCMU/8000", "PCMU/fast", 1)},
		{"rtpmap bad name", strings.Replace(validSDP, "PCMU/8000", "PC<MU>/8000", 1)},
		{"rtpmap bad payload type", strings.Replace(validSDP, "rtpmap:0 ", "rtpmap:x ", 1)},
		{"rtpmap no space", strings.Replace(validSDP, "rtpmap:0 ", "rtpmap:0", 1)},
		{"fmtp control byte", validSDP + "a=fmtp:0 mode\x01=1\r\n"},
		{"fmtp high byte", validSDP + "a=fmtp:0 mode=\xff\r\n"},
		{"ptime not a number", validSDP + "a=ptime:twenty\r\n"},
		{"maxptime empty", validSDP + "a=maxptime\r\n"},
		{"conflicting directions", validSDP + "a=sendonly\r\na=recvonly\r\n"},
		{"conflicting session directions", strings.Replace(validSDP, "t=0 0\r\n", "t=0 0\r\na=sendonly\r\na=inactive\r\n", 1)},
		{"bandwidth not a number", strings.Replace(validSDP, "t=0 0", "b=AS:lots\r\nt=0 0", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSDP([]byte(tt.in)); !errors.Is(err, ErrBadSDP) {
				t.Errorf("ParseSDP error = %v, want ErrBadSDP", err)
			}
			_, _, err := RewriteSDP([]byte(tt.in), LegAddr{IP: testIP, Ports: []int{40000}}, RewriteOptions{})
			if !errors.Is(err, ErrBadSDP) {
				t.Errorf("RewriteSDP error = %v, want ErrBadSDP", err)
			}
		})
	}
}

func TestRewriteSDPBadLeg(t *testing.T) {
	tests := []struct {
		name string
		leg  LegAddr
	}{
		{"zero address", LegAddr{Ports: []int{40000}}},
		{"unspecified address", LegAddr{IP: netip.IPv4Unspecified(), Ports: []int{40000}}},
		{"no ports", LegAddr{IP: testIP}},
		{"too many ports", LegAddr{IP: testIP, Ports: []int{40000, 40002}}},
		{"port too large", LegAddr{IP: testIP, Ports: []int{65536}}},
		{"port negative", LegAddr{IP: testIP, Ports: []int{-2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := RewriteSDP([]byte(validSDP), tt.leg, RewriteOptions{})
			if !errors.Is(err, ErrBadLeg) || errors.Is(err, ErrBadSDP) {
				t.Errorf("error = %v, want ErrBadLeg only", err)
			}
		})
	}
}

func TestRewriteSDPEdges(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		leg   LegAddr
		opts  RewriteOptions
		wants []string // substrings of the output
		nots  []string // must not appear
	}{
		{
			name:  "LF line endings accepted",
			in:    strings.ReplaceAll(validSDP, "\r\n", "\n"),
			leg:   LegAddr{IP: testIP, Ports: []int{40000}},
			wants: []string{"m=audio 40000 RTP/AVP 0\r\n", "a=rtpmap:0 PCMU/8000\r\n"},
		},
		{
			name:  "caller rejects a section with port 0",
			in:    validSDP,
			leg:   LegAddr{IP: testIP, Ports: []int{0}},
			wants: []string{"m=audio 0 RTP/AVP 0\r\n"},
			nots:  []string{"a=rtpmap", "a=sendrecv"},
		},
		{
			name:  "port of a rejected section is ignored",
			in:    strings.Replace(validSDP, "31000", "0", 1),
			leg:   LegAddr{IP: testIP, Ports: []int{40000}},
			wants: []string{"m=audio 0 RTP/AVP 0\r\n"},
			nots:  []string{"40000"},
		},
		{
			name:  "IPv6 leg for an IPv4 peer",
			in:    validSDP,
			leg:   LegAddr{IP: netip.MustParseAddr("2001:db8::10"), Ports: []int{40000}},
			wants: []string{"o=veil 0 0 IN IP6 2001:db8::10\r\n", "c=IN IP6 2001:db8::10\r\n"},
		},
		{
			name:  "IPv4-mapped leg address is unmapped",
			in:    validSDP,
			leg:   LegAddr{IP: netip.MustParseAddr("::ffff:203.0.113.10"), Ports: []int{40000}},
			wants: []string{"c=IN IP4 203.0.113.10\r\n"},
		},
		{
			name:  "rtpmap and fmtp of formats not offered are dropped",
			in:    validSDP + "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1\r\n",
			leg:   LegAddr{IP: testIP, Ports: []int{40000}},
			nots:  []string{"opus", "stereo"},
			wants: []string{"a=rtpmap:0 PCMU/8000\r\n"},
		},
		{
			name:  "recvonly old-style hold becomes inactive",
			in:    strings.Replace(validSDP, "198.51.100.1\r\nt=", "0.0.0.0\r\nt=", 1) + "a=recvonly\r\n",
			leg:   LegAddr{IP: testIP, Ports: []int{40000}},
			wants: []string{"a=inactive\r\n"},
			nots:  []string{"0.0.0.0", "recvonly"},
		},
		{
			name:  "session id and version are ours",
			in:    validSDP,
			leg:   LegAddr{IP: testIP, Ports: []int{40000}},
			opts:  RewriteOptions{SessionID: 18446744073709551615, SessionVersion: 3},
			wants: []string{"o=veil 18446744073709551615 3 IN IP4 203.0.113.10\r\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := RewriteSDP([]byte(tt.in), tt.leg, tt.opts)
			if err != nil {
				t.Fatalf("RewriteSDP: %v", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tt.nots {
				if strings.Contains(string(out), n) {
					t.Errorf("output carries %q:\n%s", n, out)
				}
			}
		})
	}
}

func TestDirectionString(t *testing.T) {
	for d, want := range map[Direction]string{SendRecv: "sendrecv", SendOnly: "sendonly", RecvOnly: "recvonly", Inactive: "inactive"} {
		if got := d.String(); got != want {
			t.Errorf("Direction(%d).String() = %q, want %q", d, got, want)
		}
		if back, ok := parseDirection(want); !ok || back != d {
			t.Errorf("parseDirection(%q) = %v, %v", want, back, ok)
		}
	}
}

// FuzzRewriteSDP checks that RewriteSDP never panics, that what it accepts
// it turns into SDP that pion parses back, whose every address is ours, and
// that rewriting its own output again changes nothing.
func FuzzRewriteSDP(f *testing.F) {
	for _, file := range inputs(f) {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in)
	}
	f.Add([]byte(validSDP))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := ParseSDP(in)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ParseSDP error does not wrap ErrBadSDP: %v", err)
			}
			if _, _, err := RewriteSDP(in, LegAddr{IP: testIP, Ports: []int{40000}}, RewriteOptions{}); !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ParseSDP refused but RewriteSDP error = %v", err)
			}
			return
		}
		leg := LegAddr{IP: testIP}
		for i := range info.Media {
			leg.Ports = append(leg.Ports, 40000+2*i)
		}
		opts := RewriteOptions{SessionID: 1, SessionVersion: 2, KeepCrypto: len(in)%2 == 0}
		out, _, err := RewriteSDP(in, leg, opts)
		if err != nil {
			t.Fatalf("ParseSDP accepted but RewriteSDP failed: %v", err)
		}
		var got sdp.SessionDescription
		if err := got.Unmarshal(out); err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		if got.Origin.UnicastAddress != testIP.String() || got.Origin.Username != originUsername {
			t.Fatalf("origin %v is not ours", got.Origin)
		}
		if c := got.ConnectionInformation; c == nil || c.Address == nil || c.Address.Address != testIP.String() {
			t.Fatalf("session c= %v is not ours", c)
		}
		for _, md := range got.MediaDescriptions {
			if md.ConnectionInformation != nil {
				t.Fatalf("media-level c= %v in output", md.ConnectionInformation)
			}
		}
		again, _, err := RewriteSDP(out, leg, opts)
		if err != nil {
			t.Fatalf("rewriting the output: %v\n%q", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("rewrite is not a fixed point:\n%q\n%q", out, again)
		}
	})
}

// BenchmarkRewriteSDP is the SDP work of one offer or answer through the
// Bridge: one parse, one rewrite, of a typical carrier offer.
func BenchmarkRewriteSDP(b *testing.B) {
	in, err := os.ReadFile(filepath.Join("testdata", "carrier-offer.sdp"))
	if err != nil {
		b.Fatal(err)
	}
	leg := legFor(b, in)
	opts := RewriteOptions{SessionID: testSessionID, SessionVersion: testSessionVersion}
	b.ReportAllocs()
	for b.Loop() {
		p, err := parse(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.rewrite(leg, opts); err != nil {
			b.Fatal(err)
		}
	}
}
