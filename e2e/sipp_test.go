package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SIPp plays the carriers in the call tests. The scenarios live in
// testdata/sipp (see each file's comment for what it expects and which
// -set variables it needs):
//
//	uac_call      caller's carrier: call, play g711a.pcap, BYE
//	uac_wait_bye  caller's carrier: call, stay silent, answer the far BYE
//	uac_cancel    caller's carrier: call, CANCEL after 180/183
//	uac_expect    caller's carrier: call refused, code checked against -set expect CODE
//	uac_reinvite  caller's carrier: call, hold, resume, BYE
//	uac_markers   uac_call with VEILMARKER in every header and SDP line
//	uas_answer    callee's carrier: answer, re-INVITEs, wait for BYE
//	uas_bye       callee's carrier: answer, BYE after -d ms
//	uas_status_N  callee's carrier: refuse with N (403 404 480 486 488 500 503 603)
//	uas_ring      callee's carrier: ring for ever, handle CANCEL
//	uas_markers   uas_answer with VEILMARKER in its 180/200 and SDP
//
// Every UAC takes -s PROXY_NUMBER and -set caller CALLER_NUMBER (plus the
// target host:port as the last argument). No scenario answers out-of-dialog
// OPTIONS; pass -aa if veild pings its carriers.

const (
	// sippPcap is the audio uac_call and uac_markers play.
	sippPcap = "/usr/share/sip-tester/g711a.pcap"
	// sippPcapPackets is how many RTP packets sippPcap holds (PCMA,
	// 240-byte payloads of 30 ms, 7.05 s in all); TestSIPpPcapCount
	// checks it.
	sippPcapPackets = 236
	// sippMarker is the token uac_markers and uas_markers put everywhere.
	sippMarker = "VEILMARKER"

	// SIPp ports come from a range below the kernel's ephemeral ports
	// (32768-60999) and above veild's default media range (20000-29999),
	// in blocks of four: media (RTP) on base, SIP on base+1, the video
	// port SIPp also binds on base+2, its remote-control port on base+3
	// (SIPp binds 0.0.0.0:8888, 8889, ... by default; -cp moves it).
	sippPortMin = 30100
	sippPortMax = 32700
)

// scenarioArgs are added for a scenario unless the test sets the flag.
var scenarioArgs = map[string][]string{
	// SIPp only matches answers to a call whose Call-ID it generated.
	"uac_markers.xml": {"-cid_str", sippMarker + "-callid-%u-%p@%s"},
}

var (
	sippPortMu   sync.Mutex
	sippPortNext = sippPortMin
)

// sippPorts returns a free SIP port, media port (whose +2 is free too)
// and control port from the SIPp range.
func sippPorts(t testing.TB) (sipPort, mediaPort, ctrlPort int) {
	t.Helper()
	sippPortMu.Lock()
	defer sippPortMu.Unlock()
	for range (sippPortMax - sippPortMin) / 4 {
		base := sippPortNext
		sippPortNext += 4
		if sippPortNext+4 > sippPortMax {
			sippPortNext = sippPortMin
		}
		if udpFree(base) && udpFree(base+1) && udpFree(base+2) && udpFree(base+3) {
			return base + 1, base, base + 3
		}
	}
	t.Fatalf("no free UDP ports left in %d-%d for SIPp", sippPortMin, sippPortMax)
	return 0, 0, 0
}

func udpFree(port int) bool {
	c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// sipp is a running SIPp process with its own working directory.
type sipp struct {
	scenario string
	dir      string
	ip       string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
	err      error // exit status, valid after exited is closed
}

// startSIPp runs testdata/sipp/<scenario> with -m 1 and returns once SIPp
// listens on its SIP and media ports. args go last, so they may end with
// the remote host:port (UAC) and override the defaults: -i (default
// 127.0.0.1; another loopback address such as 127.0.0.2 lets a carrier's
// inbound_cidrs tell the two sides apart), -mi (default: -i),
// -p (SIP port), -mp (media port), -cp (control port), all free ones from
// the SIPp range by default, and -timeout (default 60s, with
// -timeout_error). Every message SIPp sends and receives is traced to a
// per-test file, as are unexpected messages and <log> actions. The
// process is killed in cleanup; a missing sipp binary fails the test
// (scripts/deps.sh installs it).
func startSIPp(t testing.TB, scenario string, args ...string) *sipp {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatalf("sipp is not installed (run scripts/deps.sh): %v", err)
	}
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sf); err != nil {
		t.Fatalf("scenario %s: %v", scenario, err)
	}
	s := &sipp{scenario: scenario, dir: t.TempDir(), exited: make(chan struct{})}

	has := func(flag string) bool {
		for _, a := range args {
			if a == flag {
				return true
			}
		}
		return false
	}
	s.ip = "127.0.0.1"
	for i, a := range args {
		if a == "-i" && i+1 < len(args) {
			s.ip = args[i+1]
		}
	}
	argv := []string{"-sf", sf, "-m", "1", "-nostdin",
		"-trace_msg", "-message_file", s.path("messages.log"),
		"-trace_err", "-error_file", s.path("errors.log"),
		"-trace_logs", "-log_file", s.path("logs.log"),
	}
	sipPort, mediaPort, ctrlPort := sippPorts(t)
	s.port = sipPort
	for i, a := range args {
		switch a {
		case "-p":
			s.port = flagInt(t, args, i)
		case "-mp":
			mediaPort = flagInt(t, args, i)
		}
	}
	if !has("-i") {
		argv = append(argv, "-i", s.ip)
	}
	if !has("-mi") {
		argv = append(argv, "-mi", s.ip)
	}
	if !has("-p") {
		argv = append(argv, "-p", strconv.Itoa(s.port))
	}
	if !has("-mp") {
		argv = append(argv, "-mp", strconv.Itoa(mediaPort))
	}
	if !has("-cp") {
		argv = append(argv, "-cp", strconv.Itoa(ctrlPort))
	}
	if !has("-timeout") {
		argv = append(argv, "-timeout", "60s", "-timeout_error")
	}
	for i := 0; i+1 < len(scenarioArgs[scenario]); i += 2 {
		if !has(scenarioArgs[scenario][i]) {
			argv = append(argv, scenarioArgs[scenario][i:i+2]...)
		}
	}
	argv = append(argv, args...)

	out, err := os.Create(s.path("stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, argv...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("starting sipp: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		out.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("sipp %s (%s) messages:\n%s", scenario, strings.Join(argv, " "), s.read("messages.log"))
			t.Logf("sipp %s errors:\n%s", scenario, s.read("errors.log"))
		}
	})

	// Ready once the SIP and media sockets are bound.
	ports := []int{s.port, mediaPort}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if bound, err := udpBound(ports...); err != nil {
			t.Fatal(err)
		} else if bound {
			break
		}
		select {
		case <-s.exited:
			// A UAC can be done before this poll sees its sockets (a
			// quick call over TCP binds no UDP SIP port); Wait reports
			// how it ended.
			return s
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp %s did not bind %v within 10s\n%s", scenario, ports, s.read("stdout.log"))
		}
	}
	return s
}

func flagInt(t testing.TB, args []string, i int) int {
	t.Helper()
	if i+1 >= len(args) {
		t.Fatalf("sipp flag %s needs a value", args[i])
	}
	n, err := strconv.Atoi(args[i+1])
	if err != nil {
		t.Fatalf("sipp flag %s %q: %v", args[i], args[i+1], err)
	}
	return n
}

// udpBound reports whether every port is bound to a UDP socket in this
// network namespace, reading /proc/net/udp so as not to disturb the
// process binding it.
func udpBound(ports ...int) (bool, error) {
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false, err
	}
	bound := map[int]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			bound[int(p)] = true
		}
	}
	for _, p := range ports {
		if p != 0 && !bound[p] {
			return false, nil
		}
	}
	return true, nil
}

func (s *sipp) path(name string) string { return filepath.Join(s.dir, name) }

func (s *sipp) read(name string) string {
	b, err := os.ReadFile(s.path(name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(b)
}

// Addr is the "ip:port" SIPp listens on for SIP (127.0.0.1 unless -i).
func (s *sipp) Addr() string { return net.JoinHostPort(s.ip, strconv.Itoa(s.port)) }

// Port is the SIP port SIPp listens on.
func (s *sipp) Port() int { return s.port }

// Wait waits up to d for SIPp to exit. It returns nil when SIPp exited 0
// (its call succeeded), otherwise an error with the exit status and the
// tails of SIPp's error, <log> and screen output. On timeout SIPp is
// killed.
func (s *sipp) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(d):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("sipp %s still running after %s (killed)%s", s.scenario, d, s.diagnostics())
	}
	if s.err == nil {
		return nil
	}
	return fmt.Errorf("sipp %s: %v%s", s.scenario, s.err, s.diagnostics())
}

// Done is closed when SIPp has exited.
func (s *sipp) Done() <-chan struct{} { return s.exited }

func (s *sipp) diagnostics() string {
	var b strings.Builder
	for _, f := range []string{"errors.log", "logs.log", "stdout.log"} {
		if text := strings.TrimSpace(s.read(f)); text != "" {
			fmt.Fprintf(&b, "\n--- %s (tail) ---\n%s", f, tail(text, 2000))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Messages is SIPp's message trace: every message it sent and received,
// each after a "-----... timestamp" line and a "UDP message sent/received"
// line. Read it after Wait; SIPp buffers it while running.
func (s *sipp) Messages(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.path("messages.log"))
	if err != nil {
		t.Fatalf("sipp %s message trace: %v", s.scenario, err)
	}
	return string(b)
}

// Logs is what the scenario's <log> actions wrote.
func (s *sipp) Logs() string { return s.read("logs.log") }

// Received is every SIP message SIPp received, in order, as it arrived.
func (s *sipp) Received(t testing.TB) []string {
	t.Helper()
	return s.traced(t, "received")
}

// Sent is every SIP message SIPp sent, in order (retransmissions too).
func (s *sipp) Sent(t testing.TB) []string {
	t.Helper()
	return s.traced(t, "sent")
}

func (s *sipp) traced(t testing.TB, direction string) []string {
	t.Helper()
	var msgs []string
	for _, block := range strings.Split(s.Messages(t), "\n-----------------------------------------------") {
		// block: " timestamp\nUDP message received [n] bytes :\n\nMESSAGE"
		_, rest, ok := strings.Cut(block, "\n")
		if !ok {
			continue
		}
		head, msg, ok := strings.Cut(rest, "\n")
		// SIPp also repeats unexpected messages under "Unexpected UDP
		// message received:"; they are already in the trace once.
		if !ok || !strings.Contains(head, " message "+direction) || strings.HasPrefix(head, "Unexpected") {
			continue
		}
		msgs = append(msgs, strings.TrimRight(strings.TrimLeft(msg, "\r\n"), "\r\n")+"\r\n")
	}
	return msgs
}

// firstLines returns the start line of each message: "INVITE sip:..." or
// "SIP/2.0 200 OK".
func firstLines(msgs []string) []string {
	lines := make([]string, len(msgs))
	for i, m := range msgs {
		lines[i], _, _ = strings.Cut(m, "\n")
		lines[i] = strings.TrimRight(lines[i], "\r")
	}
	return lines
}

// pcapRTPCount counts the UDP datagrams carrying RTP (version 2) in a
// classic pcap file of Ethernet/IPv4 frames, such as sippPcap.
func pcapRTPCount(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(data) < 24 {
		return 0, fmt.Errorf("%s: too short for a pcap", path)
	}
	var order binary.ByteOrder
	switch {
	case bytes.Equal(data[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}), bytes.Equal(data[:4], []byte{0x4d, 0x3c, 0xb2, 0xa1}):
		order = binary.LittleEndian
	case bytes.Equal(data[:4], []byte{0xa1, 0xb2, 0xc3, 0xd4}), bytes.Equal(data[:4], []byte{0xa1, 0xb2, 0x3c, 0x4d}):
		order = binary.BigEndian
	default:
		return 0, fmt.Errorf("%s: not a classic pcap file", path)
	}
	if lt := order.Uint32(data[20:24]); lt != 1 {
		return 0, fmt.Errorf("%s: link type %d, want Ethernet", path, lt)
	}
	n := 0
	for off := 24; off < len(data); {
		if off+16 > len(data) {
			return 0, fmt.Errorf("%s: truncated record header at %d", path, off)
		}
		incl := int(order.Uint32(data[off+8 : off+12]))
		off += 16
		if off+incl > len(data) {
			return 0, fmt.Errorf("%s: truncated record at %d", path, off)
		}
		frame := data[off : off+incl]
		off += incl
		if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 17 || len(ip) < ihl+8+12 {
			continue
		}
		if rtp := ip[ihl+8:]; rtp[0]>>6 == 2 {
			n++
		}
	}
	return n, nil
}

func TestSIPpPcapCount(t *testing.T) {
	n, err := pcapRTPCount(sippPcap)
	if err != nil {
		t.Fatal(err)
	}
	if n != sippPcapPackets {
		t.Fatalf("%s holds %d RTP packets, want %d", sippPcap, n, sippPcapPackets)
	}
}

// TestSIPpScenariosPair runs each UAC scenario straight against the UAS
// scenario it will meet through veild, proving the scenarios themselves
// are sound.
func TestSIPpScenariosPair(t *testing.T) {
	const (
		proxy  = "15550100001"
		caller = "15550100002"
	)
	ua := func(extra ...string) []string {
		return append([]string{"-s", proxy, "-set", "caller", caller}, extra...)
	}
	pairs := []sippPair{
		{name: "call", uac: "uac_call.xml", uacArgs: ua(), uas: "uas_answer.xml", uasArgs: []string{"-rtp_echo"},
			check: func(t *testing.T, uac, uas *sipp) {
				wantStarts(t, "uas received", firstLines(uas.Received(t)), "INVITE sip:"+proxy+"@", "ACK ", "BYE ")
				wantStarts(t, "uac received", firstLines(uac.Received(t)), "SIP/2.0 100", "SIP/2.0 180", "SIP/2.0 200", "SIP/2.0 200")
				if inv := uas.Received(t)[0]; !strings.Contains(inv, "From: <sip:"+caller+"@") || !strings.Contains(inv, "RTP/AVP 8 101") {
					t.Errorf("INVITE lacks the caller or PCMA/telephone-event:\n%s", inv)
				}
			}},
		{name: "wait_bye", uac: "uac_wait_bye.xml", uacArgs: ua(), uas: "uas_bye.xml", uasArgs: []string{"-d", "200"},
			check: func(t *testing.T, uac, uas *sipp) {
				wantStarts(t, "uac received", firstLines(uac.Received(t)), "SIP/2.0 100", "SIP/2.0 180", "SIP/2.0 200", "BYE sip:"+caller+"@")
			}},
		{name: "wait_bye_127.0.0.2", uac: "uac_wait_bye.xml", uacArgs: ua(), uas: "uas_bye.xml", uasArgs: []string{"-i", "127.0.0.2"},
			check: func(t *testing.T, uac, uas *sipp) {
				if !strings.HasPrefix(uas.Addr(), "127.0.0.2:") || !strings.Contains(uas.Received(t)[0], "INVITE sip:"+proxy+"@127.0.0.2:") {
					t.Errorf("UAS at %s received:\n%s", uas.Addr(), uas.Received(t)[0])
				}
			}},
		{name: "cancel", uac: "uac_cancel.xml", uacArgs: ua(), uas: "uas_ring.xml",
			check: func(t *testing.T, uac, uas *sipp) {
				wantStarts(t, "uas received", firstLines(uas.Received(t)), "INVITE ", "CANCEL ", "ACK ")
			}},
		{name: "reinvite", uac: "uac_reinvite.xml", uacArgs: ua(), uas: "uas_answer.xml",
			check: func(t *testing.T, uac, uas *sipp) {
				wantStarts(t, "uas received", firstLines(uas.Received(t)), "INVITE ", "ACK ", "INVITE ", "ACK ", "INVITE ", "ACK ", "BYE ")
			}},
		{name: "markers", uac: "uac_markers.xml", uacArgs: ua(), uas: "uas_markers.xml", uasArgs: []string{"-rtp_echo"},
			check: func(t *testing.T, uac, uas *sipp) {
				inv := uas.Received(t)[0]
				for _, m := range []string{"-callid-", "-branch-", "-fromtag-", "-fromname", "-contact@", "-subject", "-diversion",
					"-historyinfo", "-pai", "-ppi", "-pcv", "-xcustom", "-rr@", "-ouser", "-session", "-tool", "-xattr", "ufrag"} {
					if !strings.Contains(inv, sippMarker+m) {
						t.Errorf("INVITE lacks %s%s", sippMarker, m)
					}
				}
				if !strings.Contains(inv, "From: \""+sippMarker+"-fromname\" <sip:"+caller+"@") {
					t.Errorf("From user is not the caller:\n%s", inv)
				}
				for _, r := range uac.Received(t) {
					if strings.HasPrefix(r, "SIP/2.0 180") || (strings.HasPrefix(r, "SIP/2.0 200") && strings.Contains(r, "INVITE")) {
						if strings.Count(r, sippMarker) < 20 {
							t.Errorf("answer carries few markers:\n%s", r)
						}
					}
				}
			}},
	}
	for _, st := range []struct{ code, reason string }{
		{"403", "Forbidden"}, {"404", "Not Found"}, {"480", "Temporarily Unavailable"}, {"486", "Busy Here"},
		{"488", "Not Acceptable Here"}, {"500", "Server Internal Error"}, {"503", "Service Unavailable"}, {"603", "Decline"},
	} {
		pairs = append(pairs, sippPair{name: "status_" + st.code, uac: "uac_expect.xml", uacArgs: ua("-set", "expect", st.code),
			uas: "uas_status_" + st.code + ".xml",
			check: func(t *testing.T, uac, uas *sipp) {
				wantStarts(t, "uac received", firstLines(uac.Received(t)), "SIP/2.0 100", "SIP/2.0 "+st.code+" "+st.reason)
			}})
	}
	// uac_expect must fail when the code differs.
	pairs = append(pairs, sippPair{name: "status_mismatch", uac: "uac_expect.xml", uacArgs: ua("-set", "expect", "486"),
		uas: "uas_status_503.xml", wantFail: true,
		check: func(t *testing.T, uac, uas *sipp) {
			if !strings.Contains(uac.Logs(), "expected 486 got 503") {
				t.Errorf("uac_expect log = %q", uac.Logs())
			}
		}})

	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			uas := startSIPp(t, p.uas, append(p.uasArgs, "-timeout", "25s", "-timeout_error")...)
			uac := startSIPp(t, p.uac, append(p.uacArgs, "-timeout", "25s", "-timeout_error", uas.Addr())...)
			uacErr := uac.Wait(t, 30*time.Second)
			switch {
			case p.wantFail && uacErr == nil:
				t.Errorf("uac %s succeeded, want failure", p.uac)
			case !p.wantFail && uacErr != nil:
				t.Errorf("uac: %v", uacErr)
			}
			if err := uas.Wait(t, 30*time.Second); err != nil {
				t.Errorf("uas: %v", err)
			}
			if p.check != nil {
				p.check(t, uac, uas)
			}
		})
	}
}

// sippPair is a UAC scenario run against a UAS scenario.
type sippPair struct {
	name     string
	uac      string
	uacArgs  []string // the UAS address is appended
	uas      string
	uasArgs  []string
	wantFail bool // the UAC must fail
	check    func(t *testing.T, uac, uas *sipp)
}

// wantStarts checks that got has as many lines as prefixes, each starting
// with its prefix.
func wantStarts(t *testing.T, what string, got []string, prefixes ...string) {
	t.Helper()
	ok := len(got) == len(prefixes)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], prefixes[i])
	}
	if !ok {
		t.Errorf("%s:\n  %s\nwant prefixes:\n  %s", what, strings.Join(got, "\n  "), strings.Join(prefixes, "\n  "))
	}
}
