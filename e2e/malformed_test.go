package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Malformed SIP during a call: while a real call is up between the SIPp
// carriers, bad input is thrown at veild's UDP and TCP listeners. Each
// input must be dropped (over TCP the connection may be closed) or
// answered 400; a well-formed request for a dialog or transaction that
// does not exist must get 481; input sipgo tolerates (a long header, many
// headers) may be processed as the INVITE it is, which is refused 404 as
// it dials no proxy number. Never a 5xx (but 513 for the oversized
// datagram). veild must answer OPTIONS over UDP and a fresh TCP
// connection after each input, and the call must end normally. The
// outcome of each input is logged as a table.

const (
	// malformedCallHold is how long the callee keeps the call up before
	// its BYE: the whole battery runs inside it.
	malformedCallHold = "6000"
	// malformedWait is how long a bad input's answer is awaited before it
	// counts as dropped.
	malformedWait = 200 * time.Millisecond
	// mfNoProxy is a number that is no proxy number: a malformed INVITE
	// veild accepted goes no further than a 404 (and places no call that
	// could disturb the SIPp carriers).
	mfNoProxy = "+15550199999"
)

// Outcomes of one bad input.
const (
	mfDropped = "dropped" // no answer within malformedWait
	mfClosed  = "closed"  // TCP: veild closed (or reset) the connection
)

// malformedInput is one bad input. build returns the bytes to send over
// transport ("UDP" or "TCP") from local ("ip:port").
type malformedInput struct {
	name  string
	build func(transport, local string) []byte
	// allow lists the acceptable outcomes: mfDropped, mfClosed or a
	// status code as a string.
	allow []string
	udp   bool // send over UDP
	tcp   bool // send over TCP
}

var (
	mfDropOr400 = []string{mfDropped, mfClosed, "400"}
	// mfLenient: syntactically tolerable input (a long header, many
	// headers, odd bytes in a header veild never reads) that sipgo may
	// parse; the INVITE is then refused 404 like any INVITE to a number
	// that is no proxy number.
	mfLenient      = []string{mfDropped, mfClosed, "400", "404"}
	mfOnly481      = []string{"481"}
	mfDropOrClosed = []string{mfDropped, mfClosed}
)

// mfLines joins lines into a message: CRLF after each line, then the
// blank line and body. A "Via:" line of "{via}" is filled in.
func mfLines(transport, local string, body string, lines ...string) []byte {
	var b strings.Builder
	for _, l := range lines {
		if l == "{via}" {
			l = fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK-%s;rport", transport, local, mfToken())
		}
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

func mfToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

const malformedSDP = "v=0\r\no=x 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"

// invite builds an initial INVITE from callerA's number to mfNoProxy, with
// headers left out (by name prefix) and extra ones added, and an SDP body
// whose Content-Length is contentLength (-1: the body's real length).
func mfInvite(transport, local string, omit []string, extra []string, body string, contentLength int) []byte {
	if contentLength < 0 {
		contentLength = len(body)
	}
	lines := []string{
		"INVITE sip:" + mfNoProxy + "@127.0.0.1 SIP/2.0",
		"{via}",
		"From: <sip:" + callerA + "@" + originIP + ">;tag=" + mfToken(),
		"To: <sip:" + mfNoProxy + "@127.0.0.1>",
		"Call-ID: malformed-" + mfToken(),
		"CSeq: 1 INVITE",
		"Contact: <sip:" + callerA + "@" + local + ">",
		"Max-Forwards: 70",
	}
	lines = append(lines, extra...)
	if body != "" {
		lines = append(lines, "Content-Type: application/sdp")
	}
	lines = append(lines, "Content-Length: "+strconv.Itoa(contentLength))
	var kept []string
	for _, l := range lines {
		drop := false
		for _, o := range omit {
			drop = drop || strings.HasPrefix(l, o+":") || (o == "Via" && l == "{via}")
		}
		if !drop {
			kept = append(kept, l)
		}
	}
	return mfLines(transport, local, body, kept...)
}

// mfInDialog builds a request (BYE, INVITE, CANCEL) with the given Call-ID
// and tags ("" leaves the tag out).
func mfInDialog(transport, local, method, callID, fromTag, toTag string) []byte {
	tag := func(t string) string {
		if t == "" {
			return ""
		}
		return ";tag=" + t
	}
	body, ctype := "", []string{}
	if method == "INVITE" {
		body, ctype = malformedSDP, []string{"Content-Type: application/sdp"}
	}
	lines := []string{
		method + " sip:" + proxyP + "@127.0.0.1 SIP/2.0",
		"{via}",
		"From: <sip:" + callerA + "@" + originIP + ">" + tag(fromTag),
		"To: <sip:" + proxyP + "@127.0.0.1>" + tag(toTag),
		"Call-ID: " + callID,
		"CSeq: 2 " + method,
		"Contact: <sip:" + callerA + "@" + local + ">",
		"Max-Forwards: 70",
	}
	lines = append(lines, ctype...)
	lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)))
	return mfLines(transport, local, body, lines...)
}

// options builds an OPTIONS with extra headers and a body.
func mfOptions(transport, local string, extra []string, body string) []byte {
	lines := []string{
		"OPTIONS sip:" + mfNoProxy + "@127.0.0.1 SIP/2.0",
		"{via}",
		"From: <sip:probe@" + originIP + ">;tag=" + mfToken(),
		"To: <sip:" + mfNoProxy + "@127.0.0.1>",
		"Call-ID: probe-" + mfToken(),
		"CSeq: 1 OPTIONS",
		"Max-Forwards: 70",
	}
	lines = append(lines, extra...)
	lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)))
	return mfLines(transport, local, body, lines...)
}

// malformedInputs is the battery. realCallID and callerTag are the live
// call's Call-ID and the caller's From tag on it.
func malformedInputs(realCallID, callerTag string) []malformedInput {
	garbage := make([]byte, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.UintN(256))
	}
	manyHeaders := make([]string, 1000)
	for i := range manyHeaders {
		manyHeaders[i] = fmt.Sprintf("X-Many-%d: %d", i, i)
	}
	both := func(in malformedInput) malformedInput { in.udp, in.tcp = true, true; return in }
	return []malformedInput{
		both(malformedInput{name: "garbage", allow: mfDropOr400,
			build: func(string, string) []byte { return garbage }}),
		both(malformedInput{name: "nuls", allow: mfDropOr400,
			build: func(string, string) []byte { return make([]byte, 1024) }}),
		both(malformedInput{name: "truncated_mid_header", allow: mfDropOr400,
			build: func(tr, local string) []byte {
				m := mfInvite(tr, local, nil, nil, malformedSDP, -1)
				return m[:bytes.Index(m, []byte("CSeq:"))+4]
			}}),
		both(malformedInput{name: "truncated_mid_body", allow: mfDropOr400,
			build: func(tr, local string) []byte {
				m := mfInvite(tr, local, nil, nil, malformedSDP, -1)
				return m[:len(m)-len(malformedSDP)/2]
			}}),
		both(malformedInput{name: "content_length_exceeds_body", allow: mfDropOr400,
			build: func(tr, local string) []byte { return mfInvite(tr, local, nil, nil, malformedSDP, 5000) }}),
		both(malformedInput{name: "no_via", allow: mfDropOr400,
			build: func(tr, local string) []byte { return mfInvite(tr, local, []string{"Via"}, nil, malformedSDP, -1) }}),
		both(malformedInput{name: "no_cseq", allow: mfDropOr400,
			build: func(tr, local string) []byte { return mfInvite(tr, local, []string{"CSeq"}, nil, malformedSDP, -1) }}),
		// RFC 3261 §8.1.1 makes Call-ID mandatory: 400 (it once reached
		// the call flow and crashed its handler on a number in session).
		both(malformedInput{name: "no_call_id", allow: mfDropOr400,
			build: func(tr, local string) []byte { return mfInvite(tr, local, []string{"Call-ID"}, nil, malformedSDP, -1) }}),
		both(malformedInput{name: "no_from", allow: mfDropOr400,
			build: func(tr, local string) []byte { return mfInvite(tr, local, []string{"From"}, nil, malformedSDP, -1) }}),
		both(malformedInput{name: "header_60KiB", allow: mfLenient,
			build: func(tr, local string) []byte {
				return mfInvite(tr, local, nil, []string{"X-Huge: " + strings.Repeat("a", 60<<10)}, malformedSDP, -1)
			}}),
		both(malformedInput{name: "1000_headers", allow: mfLenient,
			build: func(tr, local string) []byte { return mfInvite(tr, local, nil, manyHeaders, malformedSDP, -1) }}),
		both(malformedInput{name: "bad_utf8_and_controls", allow: mfLenient,
			build: func(tr, local string) []byte {
				return mfInvite(tr, local, nil, []string{"Subject: \xff\xfe\xc3\x28 \x01\x02\x1b[31m\x7f\x00end"}, malformedSDP, -1)
			}}),
		both(malformedInput{name: "request_line_no_uri", allow: mfDropOr400,
			build: func(tr, local string) []byte {
				m := mfInvite(tr, local, nil, nil, malformedSDP, -1)
				_, rest, _ := bytes.Cut(m, []byte("\r\n"))
				return append([]byte("INVITE  SIP/2.0\r\n"), rest...)
			}}),
		both(malformedInput{name: "request_line_foo", allow: mfDropOr400,
			build: func(tr, local string) []byte {
				m := mfInvite(tr, local, nil, nil, malformedSDP, -1)
				_, rest, _ := bytes.Cut(m, []byte("\r\n"))
				return append([]byte("FOO bar baz\r\n"), rest...)
			}}),
		both(malformedInput{name: "stray_response", allow: mfDropOrClosed,
			build: func(tr, local string) []byte {
				return mfLines(tr, local, "",
					"SIP/2.0 200 OK", "{via}",
					"From: <sip:"+callerA+"@"+originIP+">;tag="+mfToken(),
					"To: <sip:"+mfNoProxy+"@127.0.0.1>;tag="+mfToken(),
					"Call-ID: stray-"+mfToken(), "CSeq: 1 INVITE", "Content-Length: 0")
			}}),
		both(malformedInput{name: "bye_no_dialog", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "BYE", "nodialog-"+mfToken(), mfToken(), mfToken())
			}}),
		both(malformedInput{name: "reinvite_no_dialog", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "INVITE", "nodialog-"+mfToken(), mfToken(), mfToken())
			}}),
		both(malformedInput{name: "cancel_nothing", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "CANCEL", "nodialog-"+mfToken(), mfToken(), "")
			}}),
		both(malformedInput{name: "bye_real_call_wrong_to_tag", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "BYE", realCallID, callerTag, "wrong"+mfToken())
			}}),
		both(malformedInput{name: "bye_real_call_swapped_tags", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "BYE", realCallID, "wrong"+mfToken(), callerTag)
			}}),
		both(malformedInput{name: "bye_real_call_no_to_tag", allow: mfOnly481,
			build: func(tr, local string) []byte {
				return mfInDialog(tr, local, "BYE", realCallID, callerTag, "")
			}}),
		// Well-formed but larger than veild reads: dropped, or 513
		// Message Too Large (RFC 3261 §21.5.7), the one 5xx allowed.
		{name: "datagram_65000", udp: true, allow: []string{mfDropped, "400", "513"},
			build: func(tr, local string) []byte {
				m := mfOptions(tr, local, nil, "")
				pad := strings.Repeat("p", 65000-len(m)-len("X-Pad: \r\n"))
				m = mfOptions(tr, local, []string{"X-Pad: " + pad}, "")
				return m
			}},
	}
}

// malformedResult is what one input got.
type malformedResult struct {
	transport, name, got string
	ok                   bool
	took, alive          time.Duration // the input's answer; the liveness check
}

var mfStatusRE = regexp.MustCompile(`^SIP/2\.0 (\d{3}) `)

// TestMalformedSIPDuringCall: a call is up; garbage, truncated, oversized
// and out-of-dialog input over UDP and TCP is dropped or answered 400/481,
// veild answers OPTIONS after each, and the call ends normally.
func TestMalformedSIPDuringCall(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_bye.xml", "-d", malformedCallHold)
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_wait_bye.xml")
	mfWaitCallUp(t, d)

	// SIPp's default Call-ID is "%u-%p@%s" and uac_wait_bye's From tag
	// "[pid]SIPpTag00[call_number]"; checked against its trace below.
	pid := uac.cmd.Process.Pid
	realCallID := fmt.Sprintf("1-%d@%s", pid, originIP)
	callerTag := fmt.Sprintf("%dSIPpTag001", pid)
	inputs := malformedInputs(realCallID, callerTag)

	var (
		mu      sync.Mutex
		results []malformedResult
	)
	start := time.Now()
	t.Run("battery", func(t *testing.T) {
		// Both transports at once, but not as parallel subtests: those
		// would wait for a -parallel slot behind the other call tests
		// while the call's time runs out.
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, transport := range []string{"UDP", "TCP"} {
			wg.Go(func() {
				t.Run(transport, func(t *testing.T) {
					for _, in := range inputs {
						if (transport == "UDP" && !in.udp) || (transport == "TCP" && !in.tcp) {
							continue
						}
						t0 := time.Now()
						got := sendMalformed(t, d, transport, in)
						took := time.Since(t0)
						ok := false
						for _, a := range in.allow {
							ok = ok || a == got
						}
						if !ok {
							t.Errorf("%s %s: got %s, want one of %v", transport, in.name, got, in.allow)
						}
						t0 = time.Now()
						mfCheckAlive(t, d, in.name)
						mu.Lock()
						results = append(results, malformedResult{transport, in.name, got, ok, took, time.Since(t0)})
						mu.Unlock()
					}
				})
			})
		}
	})
	elapsed := time.Since(start)

	sort.Slice(results, func(i, j int) bool {
		if results[i].name != results[j].name {
			return results[i].name < results[j].name
		}
		return results[i].transport > results[j].transport
	})
	var table strings.Builder
	fmt.Fprintf(&table, "%-30s %-4s %-8s %-8s %s\n", "input", "tr", "took", "alive", "outcome")
	for _, r := range results {
		mark := ""
		if !r.ok {
			mark = "  <-- unexpected"
		}
		fmt.Fprintf(&table, "%-30s %-4s %-8s %-8s %s%s\n", r.name, r.transport,
			r.took.Round(time.Millisecond), r.alive.Round(time.Millisecond), r.got, mark)
	}
	t.Logf("battery took %s:\n%s", elapsed.Round(time.Millisecond), table.String())

	// The call was still up when the battery ended (else the battery
	// proved nothing about a call in progress).
	if n := mfMetric(t, d, "veil_calls_active"); n != 1 {
		t.Errorf("veil_calls_active = %v after the battery (%s), want 1: the call ended early or the battery overran it", n, elapsed)
	}

	waitAll(t, uac, uas)
	if got := header(firstSent(t, uac, "INVITE"), "Call-ID"); got != realCallID {
		t.Errorf("the caller's Call-ID is %q, the battery used %q", got, realCallID)
	}
	if rec := onlyCall(t, d, sid); rec.EndReason != "callee_hangup" || rec.Status != 200 {
		t.Errorf("call record = %+v, want callee_hangup 200", rec)
	}
	logs := d.logs()
	for _, bad := range []string{"panic", "goroutine ", "fatal error", digits(callerA), digits(calleeB)} {
		if strings.Contains(logs, bad) {
			t.Errorf("veild's log contains %q", bad)
		}
	}
}

// mfWaitCallUp polls veild's metrics until the call is in progress and the
// callee side has answered (veil_calls_active 1 and a post-dial delay
// observed: uas_bye sends its 180 and 200 back to back).
func mfWaitCallUp(t *testing.T, d *daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if mfMetric(t, d, "veil_calls_active") == 1 && mfMetric(t, d, "veil_call_post_dial_delay_seconds_count") == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call was not up within 10s:\n%s", d.logs())
		}
		time.Sleep(20 * time.Millisecond) // polling the metrics, not synchronising
	}
}

// mfMetric reads one unlabelled sample from veild's /metrics (-1 if
// absent).
func mfMetric(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	resp, err := client.Get(d.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// sendMalformed sends one bad input over transport from originIP and
// returns the outcome: the first final status, mfDropped or mfClosed.
func sendMalformed(t *testing.T, d *daemon, transport string, in malformedInput) string {
	t.Helper()
	if transport == "UDP" {
		c := mfUDP(t, d)
		defer c.Close()
		msg := in.build("UDP", c.LocalAddr().String())
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("%s: sending %d bytes: %v", in.name, len(msg), err)
		}
		return mfReadUDP(c, malformedWait)
	}
	c := mfTCP(t, d)
	defer c.Close()
	msg := in.build("TCP", c.LocalAddr().String())
	if _, err := c.Write(msg); err != nil {
		return mfClosed
	}
	return mfReadTCP(c, malformedWait)
}

func mfUDP(t *testing.T, d *daemon) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp4", d.sipAddr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(originIP)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mfTCP(t *testing.T, d *daemon) *net.TCPConn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(originIP)}, Timeout: 2 * time.Second}
	c, err := dialer.Dial("tcp4", d.sipAddr("tcp"))
	if err != nil {
		t.Fatalf("connecting to veild over TCP: %v", err)
	}
	return c.(*net.TCPConn)
}

// mfStatus returns a response's status code, or "" for anything else.
func mfStatus(msg []byte) string {
	if m := mfStatusRE.FindSubmatch(msg); m != nil {
		return string(m[1])
	}
	return ""
}

// mfReadUDP reads datagrams until a final response or the deadline.
func mfReadUDP(c *net.UDPConn, wait time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return mfDropped
		}
		code := mfStatus(buf[:n])
		if code == "" {
			return fmt.Sprintf("non-response %q", firstLines([]string{string(buf[:n])})[0])
		}
		if code[0] != '1' {
			return code
		}
	}
}

// mfReadTCP reads messages off the stream until a final response, the
// deadline (mfDropped) or the end of the connection (mfClosed).
func mfReadTCP(c *net.TCPConn, wait time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	rd := bufio.NewReader(c)
	for {
		var head bytes.Buffer
		for {
			line, err := rd.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return mfDropped
				}
				return mfClosed
			}
			if line == "\r\n" && head.Len() > 2 {
				break
			}
		}
		cl, _ := strconv.Atoi(header(head.String(), "Content-Length"))
		if _, err := io.CopyN(io.Discard, rd, int64(cl)); err != nil {
			return mfClosed
		}
		code := mfStatus(head.Bytes())
		if code == "" {
			return fmt.Sprintf("non-response %q", firstLines([]string{head.String()})[0])
		}
		if code[0] != '1' {
			return code
		}
	}
}

// mfCheckAlive: veild answers OPTIONS 200 over UDP and over a fresh TCP
// connection.
func mfCheckAlive(t *testing.T, d *daemon, after string) {
	t.Helper()
	select {
	case <-d.exited:
		t.Fatalf("veild exited after %s: %v", after, d.err)
	default:
	}
	u := mfUDP(t, d)
	defer u.Close()
	if _, err := u.Write(mfOptions("UDP", u.LocalAddr().String(), nil, "")); err != nil {
		t.Fatal(err)
	}
	if got := mfReadUDP(u, 2*time.Second); got != "200" {
		t.Fatalf("after %s: OPTIONS over UDP got %s, want 200", after, got)
	}
	c := mfTCP(t, d)
	defer c.Close()
	if _, err := c.Write(mfOptions("TCP", c.LocalAddr().String(), nil, "")); err != nil {
		t.Fatalf("after %s: OPTIONS over a fresh TCP connection: %v", after, err)
	}
	if got := mfReadTCP(c, 2*time.Second); got != "200" {
		t.Fatalf("after %s: OPTIONS over a fresh TCP connection got %s, want 200", after, got)
	}
}
