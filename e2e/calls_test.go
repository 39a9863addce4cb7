package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Masked calls end to end: the real veild between SIPp carriers. The
// caller's carrier ("origin") calls in from 127.0.0.3; carrier1 and
// carrier2 are SIPp UASes on 127.0.0.1 that play the callee's side.

const (
	callerA  = "+15550100101"
	calleeB  = "+15550100102"
	proxyP   = "+15550100001"
	originIP = "127.0.0.3"
	sippWait = 40 * time.Second
)

// callRecord is the part of GET /v1/calls/{id} the tests read.
type callRecord struct {
	ID        string `json:"id"`
	SessionID string `json:"session_id"`
	Proxy     string `json:"proxy"`
	From      string `json:"from"`
	To        string `json:"to"`
	Attempts  []struct {
		Carrier string `json:"carrier"`
		Status  int    `json:"status"`
		Reason  string `json:"reason"`
	} `json:"attempts"`
	Status          int    `json:"status"`
	DurationMS      int64  `json:"duration_ms"`
	PostDialDelayMS int64  `json:"post_dial_delay_ms"`
	EndReason       string `json:"end_reason"`
	Media           *struct {
		CallerToCallee struct {
			Packets uint64 `json:"packets"`
		} `json:"caller_to_callee"`
		CalleeToCaller struct {
			Packets uint64 `json:"packets"`
		} `json:"callee_to_caller"`
	} `json:"media"`
}

// callOpts shape a call test's veild.
type callOpts struct {
	carrier1, carrier2 string // SIP address of each callee-side carrier
	extraSIP           string // more keys of the sip section
	extraMedia         string // more keys of the media section
	carrier2Keys       string // more keys of carrier2's sip section
}

var mediaRangeNext atomic.Int32

// startCallDaemon starts veild with the call carriers, a proxy number on
// carrier1 and, unless noSession, a session A <-> B on it.
func startCallDaemon(t *testing.T, o callOpts, noSession bool) (*daemon, string) {
	t.Helper()
	if o.carrier2 == "" {
		o.carrier2 = "127.0.0.1:9" // discard: never answers
	}
	if !strings.Contains(o.extraSIP, "ring_timeout") {
		o.extraSIP += ", ring_timeout: 5s"
	}
	// Each daemon gets media ports of its own, below SIPp's range.
	base := 20000 + 400*int(mediaRangeNext.Add(1)%24)
	cfg := fmt.Sprintf(`data_dir: %q
admin: {listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"]%s}
media: {port_min: %d, port_max: %d%s}
sessions: {sweep_interval: 100ms}
shutdown: {drain_delay: 100ms, drain_timeout: 5s}
carriers:
  - name: origin
    sip: {address: "%s:5060", transport: udp, inbound_cidrs: ["%s/32"]}
  - name: carrier1
    sip: {address: %q, transport: udp}
  - name: carrier2
    sip: {address: %q, transport: udp%s}
`, t.TempDir(), o.extraSIP, base, base+399, o.extraMedia, originIP, originIP, o.carrier1, o.carrier2, o.carrier2Keys)
	path := filepath.Join(t.TempDir(), "veil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, path)
	d.mustCall("POST", "/v1/numbers", map[string]any{"number": proxyP, "carrier": "carrier1"}, nil, http.StatusCreated)
	sid := ""
	if !noSession {
		var s session
		d.mustCall("POST", "/v1/sessions", createSession(callerA, calleeB, map[string]any{"proxy_number": proxyP}), &s, http.StatusCreated)
		sid = s.ID
	}
	return d, sid
}

// startCaller starts the caller's carrier: a SIPp UAC scenario calling
// the proxy number from A, on originIP, toward veild.
func startCaller(t *testing.T, d *daemon, scenario string, extra ...string) *sipp {
	t.Helper()
	args := append([]string{"-s", proxyP, "-set", "caller", callerA}, extra...)
	args = append(args, "-i", originIP, "-mi", originIP, "-timeout", "35s", "-timeout_error", d.sipAddr("udp"))
	return startSIPp(t, scenario, args...)
}

// startCallee starts a callee-side carrier: a SIPp UAS scenario.
func startCallee(t *testing.T, scenario string, extra ...string) *sipp {
	t.Helper()
	return startSIPp(t, scenario, append(extra, "-timeout", "35s", "-timeout_error")...)
}

// waitAll waits for every SIPp and fails the test on any failure.
func waitAll(t *testing.T, ps ...*sipp) {
	t.Helper()
	for _, p := range ps {
		if err := p.Wait(t, sippWait); err != nil {
			t.Fatal(err)
		}
	}
}

// onlyCall polls the session's interactions until one call is recorded
// and returns it (records are written when the call has ended).
func onlyCall(t *testing.T, d *daemon, sid string) callRecord {
	t.Helper()
	var out struct {
		Interactions []struct {
			Kind string      `json:"kind"`
			Call *callRecord `json:"call"`
		} `json:"interactions"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		d.mustCall("GET", "/v1/sessions/"+sid+"/interactions", nil, &out, http.StatusOK)
		if len(out.Interactions) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the API, not synchronising
	}
	if len(out.Interactions) != 1 || out.Interactions[0].Call == nil {
		t.Fatalf("interactions = %+v, want one call", out.Interactions)
	}
	return *out.Interactions[0].Call
}

// firstInvite returns the first INVITE SIPp received.
func firstInvite(t *testing.T, p *sipp) string {
	t.Helper()
	for _, m := range p.Received(t) {
		if strings.HasPrefix(m, "INVITE ") {
			return m
		}
	}
	t.Fatalf("%s received no INVITE:\n%s", p.scenario, p.Messages(t))
	return ""
}

// header returns the value of the first header called name in a SIP
// message (case-insensitive name, no compact forms).
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func digits(num string) string { return strings.TrimPrefix(num, "+") }

// TestCallMaskedWithAudio: A calls P, B's carrier gets a call from P, the
// audio goes both ways through Veil, A hangs up, the call is recorded.
func TestCallMaskedWithAudio(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_answer.xml", "-rtp_echo")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_call.xml")
	waitAll(t, uac, uas)

	inv := firstInvite(t, uas)
	// What B's carrier saw: P as the caller, B as the callee, nothing of A.
	for _, h := range []string{"From", "P-Asserted-Identity"} {
		if v := header(inv, h); !strings.Contains(v, proxyP) {
			t.Errorf("callee's INVITE %s = %q, want the proxy number %s", h, v, proxyP)
		}
	}
	if !strings.HasPrefix(inv, "INVITE sip:"+calleeB+"@") {
		t.Errorf("callee's INVITE Request-URI: %q", firstLines([]string{inv}))
	}
	for _, leak := range []string{digits(callerA), originIP, header(firstSent(t, uac, "INVITE"), "Call-ID")} {
		if strings.Contains(strings.Join(uas.Received(t), ""), leak) {
			t.Errorf("the callee's carrier received %q (caller's number, address or Call-ID):\n%s", leak, inv)
		}
	}

	rec := onlyCall(t, d, sid)
	if rec.Status != 200 || rec.EndReason != "caller_hangup" || rec.SessionID != sid || rec.Proxy != proxyP {
		t.Errorf("call record = %+v", rec)
	}
	if len(rec.Attempts) != 1 || rec.Attempts[0].Carrier != "carrier1" || rec.Attempts[0].Status != 200 {
		t.Errorf("attempts = %+v", rec.Attempts)
	}
	if rec.Media == nil {
		t.Fatalf("no media stats: %+v", rec)
	}
	// SIPp sent the whole pcap; the callee's carrier echoed every packet.
	if got := rec.Media.CallerToCallee.Packets; got != sippPcapPackets {
		t.Errorf("caller->callee packets = %d, want %d (the pcap SIPp played)", got, sippPcapPackets)
	}
	if got := rec.Media.CalleeToCaller.Packets; got != sippPcapPackets {
		t.Errorf("callee->caller packets = %d, want %d (echoed)", got, sippPcapPackets)
	}
	if rec.DurationMS < 7000 || rec.PostDialDelayMS <= 0 {
		t.Errorf("duration %d ms (want >= 7 s of audio), post-dial delay %d ms", rec.DurationMS, rec.PostDialDelayMS)
	}
	if strings.Contains(rec.From, digits(callerA)) || strings.Contains(rec.To, digits(calleeB)) {
		t.Errorf("record holds full numbers: from %q to %q", rec.From, rec.To)
	}
	var byID callRecord
	d.mustCall("GET", "/v1/calls/"+rec.ID, nil, &byID, http.StatusOK)
	if byID.ID != rec.ID || byID.EndReason != rec.EndReason {
		t.Errorf("GET /v1/calls/%s = %+v", rec.ID, byID)
	}
}

// firstSent returns the first message SIPp sent whose start line begins
// with prefix.
func firstSent(t *testing.T, p *sipp, prefix string) string {
	t.Helper()
	for _, m := range p.Sent(t) {
		if strings.HasPrefix(m, prefix) {
			return m
		}
	}
	t.Fatalf("%s sent no %s", p.scenario, prefix)
	return ""
}

// TestCallHeaderHygiene: a marker in every header and SDP field of the
// caller's INVITE, and of the callee's 180 and 200, crosses to neither
// other side.
func TestCallHeaderHygiene(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_markers.xml", "-rtp_echo")
	d, _ := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_markers.xml")
	waitAll(t, uac, uas)

	// Each side's markers, minus any both sides happen to share: a side's
	// own markers legitimately come back to it (its Call-ID, tags, Via,
	// Contact and Record-Route in the dialog Veil keeps with it).
	markersA := markerSet(uac.Sent(t))
	markersB := markerSet(uas.Sent(t))
	if len(markersA) < 10 || len(markersB) < 10 {
		t.Fatalf("the scenarios sent too few markers (%d, %d): the test would prove nothing", len(markersA), len(markersB))
	}
	for m := range markersA {
		if markersB[m] {
			delete(markersA, m)
			delete(markersB, m)
		}
	}
	crossed := func(who string, received []string, others map[string]bool, extra ...string) {
		for _, msg := range received {
			for m := range markerSet([]string{msg}) {
				if others[m] {
					t.Errorf("the %s received the other side's %q:\n%s", who, m, msg)
				}
			}
			for _, leak := range extra {
				if strings.Contains(msg, leak) {
					t.Errorf("the %s received %q:\n%s", who, leak, msg)
				}
			}
		}
	}
	crossed("callee's carrier", uas.Received(t), markersA, digits(callerA), originIP)
	crossed("caller's carrier", uac.Received(t), markersB, digits(calleeB))
}

var markerRE = regexp.MustCompile(sippMarker + `[-A-Za-z0-9_.]*`)

// markerSet returns the marker tokens in msgs.
func markerSet(msgs []string) map[string]bool {
	set := make(map[string]bool)
	for _, m := range msgs {
		for _, tok := range markerRE.FindAllString(m, -1) {
			set[tok] = true
		}
	}
	return set
}

// TestCallCalleeHangsUp: BYE from the callee's side ends both legs.
func TestCallCalleeHangsUp(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_bye.xml", "-d", "500")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_wait_bye.xml")
	waitAll(t, uac, uas)
	if rec := onlyCall(t, d, sid); rec.EndReason != "callee_hangup" || rec.Status != 200 {
		t.Errorf("call record = %+v, want callee_hangup", rec)
	}
}

// TestCallCancelBeforeAnswer: the caller gives up while B rings: the
// outbound leg is cancelled and the caller gets 487.
func TestCallCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_ring.xml")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_cancel.xml")
	waitAll(t, uac, uas)
	rec := onlyCall(t, d, sid)
	if rec.EndReason != "caller_cancel" || rec.Status != 487 {
		t.Errorf("call record = %+v, want caller_cancel 487", rec)
	}
	cancelled := false
	for _, m := range uas.Received(t) {
		cancelled = cancelled || strings.HasPrefix(m, "CANCEL ")
	}
	if !cancelled {
		t.Error("the callee's carrier received no CANCEL")
	}
}

// TestCallRejections: the callee side's busy is propagated; no session is
// 404; a source outside every carrier's inbound_cidrs is 403.
func TestCallRejections(t *testing.T) {
	t.Parallel()
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		uas := startCallee(t, "uas_status_486.xml")
		d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
		uac := startCaller(t, d, "uac_expect.xml", "-set", "expect", "486")
		waitAll(t, uac, uas)
		if rec := onlyCall(t, d, sid); rec.Status != 486 || rec.EndReason != "rejected" {
			t.Errorf("call record = %+v, want 486 rejected", rec)
		}
	})
	t.Run("out_of_session", func(t *testing.T) {
		t.Parallel()
		d, _ := startCallDaemon(t, callOpts{carrier1: "127.0.0.1:9"}, true)
		uac := startCaller(t, d, "uac_expect.xml", "-set", "expect", "404")
		waitAll(t, uac)
	})
	t.Run("unknown_source", func(t *testing.T) {
		t.Parallel()
		d, _ := startCallDaemon(t, callOpts{carrier1: "127.0.0.1:9"}, false)
		uac := startSIPp(t, "uac_expect.xml", "-s", proxyP, "-set", "caller", callerA, "-set", "expect", "403",
			"-i", "127.0.0.9", "-mi", "127.0.0.9", "-timeout", "35s", "-timeout_error", d.sipAddr("udp"))
		waitAll(t, uac)
	})
}

// TestCallFailover: carrier 1 answers 503, carrier 2 takes the call.
func TestCallFailover(t *testing.T) {
	t.Parallel()
	down := startCallee(t, "uas_status_503.xml")
	up := startCallee(t, "uas_bye.xml", "-d", "300")
	d, sid := startCallDaemon(t, callOpts{carrier1: down.Addr(), carrier2: up.Addr()}, false)
	d.mustCall("POST", "/v1/routes", map[string]any{"prefix": "+1555", "carriers": []string{"carrier1", "carrier2"}}, nil, http.StatusCreated)
	uac := startCaller(t, d, "uac_wait_bye.xml")
	waitAll(t, uac, down, up)
	rec := onlyCall(t, d, sid)
	if len(rec.Attempts) != 2 || rec.Attempts[0].Carrier != "carrier1" || rec.Attempts[0].Status != 503 ||
		rec.Attempts[1].Carrier != "carrier2" || rec.Attempts[1].Status != 200 {
		t.Errorf("attempts = %+v, want carrier1 503 then carrier2 200", rec.Attempts)
	}
	if rec.Status != 200 || rec.EndReason != "callee_hangup" {
		t.Errorf("call record = %+v", rec)
	}
}

// TestCallReinviteHoldResume: the caller's hold and resume re-INVITEs
// reach the callee's carrier with their direction, and its answers come
// back.
func TestCallReinviteHoldResume(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_answer.xml", "-rtp_echo")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_reinvite.xml")
	waitAll(t, uac, uas)
	var dirs []string
	for _, m := range uas.Received(t) {
		if strings.HasPrefix(m, "INVITE ") {
			dirs = append(dirs, sdpDirection(m))
		}
	}
	if strings.Join(dirs, ",") != "sendrecv,sendonly,sendrecv" {
		t.Errorf("directions of the INVITEs the callee's carrier received = %q, want initial, hold, resume", dirs)
	}
	if rec := onlyCall(t, d, sid); rec.EndReason != "caller_hangup" || rec.Status != 200 {
		t.Errorf("call record = %+v", rec)
	}
}

// sdpDirection returns the direction attribute of a message's SDP.
func sdpDirection(msg string) string {
	for _, dir := range []string{"sendonly", "recvonly", "inactive", "sendrecv"} {
		if strings.Contains(msg, "a="+dir+"\r\n") {
			return dir
		}
	}
	return "sendrecv"
}

// TestCallLimits: silence on both sides ends the call after
// media_timeout; max_call_duration ends a call too. Veil sends BYE to both
// sides, which the scenarios require.
func TestCallLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sipKeys, mediaKeys, reason string
	}{
		{"media_timeout", "", ", media_timeout: 1500ms", "media_timeout"},
		{"max_duration", ", max_call_duration: 1500ms", ", media_timeout: 30s", "max_duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			uas := startCallee(t, "uas_answer.xml") // no echo: no RTP at all
			d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr(), extraSIP: tc.sipKeys, extraMedia: tc.mediaKeys}, false)
			uac := startCaller(t, d, "uac_wait_bye.xml")
			waitAll(t, uac, uas)
			if rec := onlyCall(t, d, sid); rec.EndReason != tc.reason {
				t.Errorf("call record = %+v, want %s", rec, tc.reason)
			}
		})
	}
}

// TestCallFallback: a call with no session on P goes to P's fallback
// number, still showing P, when the number has one.
func TestCallFallback(t *testing.T) {
	t.Parallel()
	const fallback = "+15550199999"
	uas := startCallee(t, "uas_bye.xml", "-d", "200")
	d, _ := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, true)
	d.mustCall("PATCH", "/v1/numbers/"+proxyP, map[string]any{"fallback_number": fallback}, nil, http.StatusOK)
	uac := startCaller(t, d, "uac_wait_bye.xml")
	waitAll(t, uac, uas)
	inv := firstInvite(t, uas)
	if !strings.HasPrefix(inv, "INVITE sip:"+fallback+"@") || !strings.Contains(header(inv, "From"), proxyP) {
		t.Errorf("the fallback's carrier got:\n%s", inv)
	}
	if strings.Contains(inv, digits(callerA)) {
		t.Errorf("the fallback's carrier saw the caller's number:\n%s", inv)
	}
	if got := metricValue(t, d, `veil_calls_total{reason="callee_hangup"}`); got != 1 {
		t.Errorf("veil_calls_total{reason=callee_hangup} = %v, want 1", got)
	}
}

// TestCallOverTCP: the caller's carrier uses TCP; Veil's BYE (the callee
// hangs up) goes back over the caller's connection.
func TestCallOverTCP(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_bye.xml", "-d", "300")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startSIPp(t, "uac_wait_bye.xml", "-s", proxyP, "-set", "caller", callerA, "-t", "t1",
		"-i", originIP, "-mi", originIP, "-timeout", "35s", "-timeout_error", d.sipAddr("tcp"))
	waitAll(t, uac, uas)
	if rec := onlyCall(t, d, sid); rec.EndReason != "callee_hangup" || rec.Status != 200 {
		t.Errorf("call record = %+v", rec)
	}
}

// metricValue reads one sample of veild's /metrics, 0 when absent.
func metricValue(t *testing.T, d *daemon, sample string) float64 {
	t.Helper()
	resp, err := client.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// TestCallAnswerCrossesCancel: the callee's carrier answers 200 just as
// the caller's CANCEL reaches it; Veil ACKs that 200 and hangs it up with
// BYE (the scenario requires both), and the caller still gets 487.
func TestCallAnswerCrossesCancel(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_cross.xml")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	uac := startCaller(t, d, "uac_cancel.xml")
	waitAll(t, uac, uas)
	if rec := onlyCall(t, d, sid); rec.EndReason != "caller_cancel" || rec.Status != 487 {
		t.Errorf("call record = %+v, want caller_cancel 487", rec)
	}
}

// TestCallRingTimeoutFailover: carrier 1 rings past sip.ring_timeout and
// is cancelled; carrier 2 answers. Numbers go to carrier 2 without "+"
// (number_format e164_noplus).
func TestCallRingTimeoutFailover(t *testing.T) {
	t.Parallel()
	ringing := startCallee(t, "uas_ring.xml")
	up := startCallee(t, "uas_bye.xml", "-d", "300")
	d, sid := startCallDaemon(t, callOpts{carrier1: ringing.Addr(), carrier2: up.Addr(),
		extraSIP: ", ring_timeout: 1s", carrier2Keys: ", number_format: e164_noplus"}, false)
	d.mustCall("POST", "/v1/routes", map[string]any{"prefix": "+1555", "carriers": []string{"carrier1", "carrier2"}}, nil, http.StatusCreated)
	uac := startCaller(t, d, "uac_wait_bye.xml")
	waitAll(t, uac, ringing, up)
	rec := onlyCall(t, d, sid)
	if len(rec.Attempts) != 2 || rec.Attempts[0].Reason != "ring_timeout" || rec.Attempts[1].Status != 200 {
		t.Errorf("attempts = %+v, want carrier1 ring_timeout then carrier2 200", rec.Attempts)
	}
	inv := firstInvite(t, up)
	if !strings.HasPrefix(inv, "INVITE sip:"+digits(calleeB)+"@") || !strings.Contains(header(inv, "From"), "sip:"+digits(proxyP)+"@") {
		t.Errorf("carrier2 (e164_noplus) got:\n%s", inv)
	}
}

// TestCallMalformedSDP: an INVITE whose SDP Veil cannot relay is answered
// 488, and nothing is sent to the callee's side.
func TestCallMalformedSDP(t *testing.T) {
	t.Parallel()
	uas := startCallee(t, "uas_answer.xml")
	d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
	pc, err := net.ListenPacket("udp", originIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst, err := net.ResolveUDPAddr("udp", d.sipAddr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{
		"v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 not-an-address\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n",
		"v=0\r\nthis is not SDP\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 99999 RTP/AVP 8\r\n",
	} {
		msg := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bKbadsdp%d\r\n"+
			"From: <sip:%s@%s>;tag=bad%d\r\nTo: <sip:%s@%s>\r\nCall-ID: badsdp-%d\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			proxyP, d.sipAddr("udp"), pc.LocalAddr(), i, callerA, originIP, i, proxyP, d.sipAddr("udp"), i,
			callerA, pc.LocalAddr(), len(body), body)
		if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		final := ""
		buf := make([]byte, 4096)
		for final == "" {
			_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("SDP %d: no final response: %v", i, err)
			}
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			if !strings.HasPrefix(line, "SIP/2.0 1") {
				final = line
			}
		}
		if !strings.HasPrefix(final, "SIP/2.0 488 ") {
			t.Errorf("SDP %d: final response %q, want 488", i, final)
		}
	}
	var out struct {
		Interactions []struct {
			Call callRecord `json:"call"`
		} `json:"interactions"`
	}
	// Records are written as each call ends, just after its 488.
	for deadline := time.Now().Add(10 * time.Second); ; {
		d.mustCall("GET", "/v1/sessions/"+sid+"/interactions", nil, &out, http.StatusOK)
		if len(out.Interactions) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the API, not synchronising
	}
	for _, in := range out.Interactions {
		if in.Call.Status != 488 || in.Call.EndReason != "bad_sdp" || len(in.Call.Attempts) != 0 {
			t.Errorf("call record = %+v, want 488 bad_sdp without attempts", in.Call)
		}
	}
	if len(out.Interactions) != 3 {
		t.Errorf("%d calls recorded, want 3", len(out.Interactions))
	}
}

// TestCallAnswerWithoutUsableSDP: the callee's carrier answers 200 with
// no SDP, or with fewer m= lines than offered. Veil cannot bridge it: the
// callee's leg is acknowledged and hung up (ACK then BYE, never left
// connected and billed), and the caller gets 502 Bad Gateway: the caller's
// offer was fine (488 would blame it); the downstream answer was unusable.
func TestCallAnswerWithoutUsableSDP(t *testing.T) {
	t.Parallel()
	for _, scenario := range []string{"uas_answer_nosdp.xml", "uas_answer_nomedia.xml"} {
		t.Run(strings.TrimSuffix(scenario, ".xml"), func(t *testing.T) {
			t.Parallel()
			uas := startCallee(t, scenario)
			d, sid := startCallDaemon(t, callOpts{carrier1: uas.Addr()}, false)
			uac := startCaller(t, d, "uac_expect.xml", "-set", "expect", "502")
			waitAll(t, uac, uas)
			var got []string
			for _, m := range firstLines(uas.Received(t)) {
				// Retransmissions (an INVITE, an ACK re-sent for a
				// retransmitted 200) count once.
				if method := strings.Fields(m)[0]; method != "SIP/2.0" && (len(got) == 0 || got[len(got)-1] != method) {
					got = append(got, method)
				}
			}
			if strings.Join(got, " ") != "INVITE ACK BYE" {
				t.Errorf("the callee's carrier received %v, want INVITE ACK BYE", got)
			}
			if rec := onlyCall(t, d, sid); rec.Status != 502 || rec.EndReason != "bad_sdp" {
				t.Errorf("call record = %+v, want 502 bad_sdp", rec)
			}
		})
	}
}
