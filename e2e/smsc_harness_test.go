package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The SMSC simulator (smsc/smsc.js, on the npm package smpp: an SMPP
// implementation independent of the gosmpp library Veil uses) plays the
// carriers in the SMS tests. scripts/deps.sh smsc installs Node.js and the
// package. The control API is described in smsc/README.md.

const smscScript = "smsc/smsc.js"

// smscConfig is how a test starts the simulator.
type smscConfig struct {
	// Config, when not nil, is sent as PUT /config before startSMSC returns.
	Config map[string]any
	// Verbose makes the simulator log every PDU (to its stderr, shown when
	// the test fails).
	Verbose bool
	// TLSCert and TLSKey, PEM file paths, make the SMPP listener speak
	// TLS.
	TLSCert, TLSKey string
}

// smsc is a running simulator.
type smsc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   string // SMPP host:port
	url    string // control API base URL
	logMu  sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error // exit status, valid after exited is closed
}

// hexBytes decodes a JSON hex string (null: nil).
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil {
		*h = nil
		return nil
	}
	d, err := hex.DecodeString(*s)
	*h = d
	return err
}

// smscSubmit is one submit_sm the simulator received (GET /submits).
type smscSubmit struct {
	Seq                  int      `json:"seq"`
	Conn                 int      `json:"conn"` // connection number, 1 for the first
	Bind                 string   `json:"bind"` // system_id of the bind
	ServiceType          string   `json:"service_type"`
	SourceAddr           string   `json:"source_addr"`
	SourceAddrTON        int      `json:"source_addr_ton"`
	SourceAddrNPI        int      `json:"source_addr_npi"`
	DestinationAddr      string   `json:"destination_addr"`
	DestAddrTON          int      `json:"dest_addr_ton"`
	DestAddrNPI          int      `json:"dest_addr_npi"`
	ESMClass             int      `json:"esm_class"`
	ProtocolID           int      `json:"protocol_id"`
	PriorityFlag         int      `json:"priority_flag"`
	ScheduleDeliveryTime string   `json:"schedule_delivery_time"`
	ValidityPeriod       string   `json:"validity_period"`
	RegisteredDelivery   int      `json:"registered_delivery"`
	DataCoding           int      `json:"data_coding"`
	ShortMessage         hexBytes `json:"short_message_hex"`   // with the UDH, if any
	MessagePayload       hexBytes `json:"message_payload_hex"` // TLV 0x0424; nil when absent
	SARRef               *int     `json:"sar_ref"`             // TLVs 0x020C, 0x020E, 0x020F; nil when absent
	SARTotal             *int     `json:"sar_total"`
	SARSeq               *int     `json:"sar_seq"`
	Concat               *struct {
		Type  string `json:"type"` // udh8, udh16 or sar
		Ref   int    `json:"ref"`
		Total int    `json:"total"`
		Seq   int    `json:"seq"`
	} `json:"concat"`
	MessageID *string `json:"message_id"` // nil when refused
	Status    int     `json:"status"`     // command_status of the submit_sm_resp
	At        int64   `json:"at"`         // Unix milliseconds
}

// smscStats is GET /stats.
type smscStats struct {
	BindsActive        int `json:"binds_active"`
	ReceiversActive    int `json:"receivers_active"`
	ConnectionsActive  int `json:"connections_active"`
	ConnectionsTotal   int `json:"connections_total"`
	ConnectionsRefused int `json:"connections_refused"`
	BindsTotal         int `json:"binds_total"`
	BindFailures       int `json:"bind_failures"`
	Unbinds            int `json:"unbinds"`
	EnquireLinks       int `json:"enquire_links"`
	GenericNacks       int `json:"generic_nacks"`
	Submits            int `json:"submits"`
	SubmitsOK          int `json:"submits_ok"`
	Throttled          int `json:"throttled"`
	WindowViolations   int `json:"window_violations"`
	MaxInflight        int `json:"max_inflight"`
	ReceiptsSent       int `json:"receipts_sent"`
	ReceiptsAcked      int `json:"receipts_acked"`
	ReceiptsNacked     int `json:"receipts_nacked"`
	ReceiptsTimeouts   int `json:"receipts_timeouts"`
	ReceiptsRequeued   int `json:"receipts_requeued"`
	ReceiptsQueued     int `json:"receipts_queued"`
	MOSent             int `json:"mo_sent"`
	MOAcked            int `json:"mo_acked"`
	MONacked           int `json:"mo_nacked"`
	MOTimeouts         int `json:"mo_timeouts"`
	Drops              int `json:"drops"`
	TLSClientErrors    int `json:"tls_client_errors"`
}

// smscMO is a POST /mo request: a message from a handset, delivered to the
// bound receiver as deliver_sm. Part numbers are 1-based.
type smscMO struct {
	From       string     `json:"from"`
	To         string     `json:"to"`
	Text       string     `json:"text,omitempty"`
	Coding     string     `json:"coding,omitempty"`      // gsm (default) or ucs2
	Concat     string     `json:"concat,omitempty"`      // none (default), udh8, udh16 or sar
	Payload    bool       `json:"payload,omitempty"`     // concat none: the text in message_payload
	PartsOrder []int      `json:"parts_order,omitempty"` // send the parts in this order
	OmitParts  []int      `json:"omit_parts,omitempty"`  // never send these parts
	Ref        *int       `json:"ref,omitempty"`         // concatenation reference (default: a counter)
	SystemID   string     `json:"system_id,omitempty"`   // deliver to a bind of this system_id
	Raw        *smscRawMO `json:"raw,omitempty"`         // exact bytes instead of text
}

// smscRawMO is one deliver_sm with exact bytes.
type smscRawMO struct {
	ShortMessageHex   string `json:"short_message_hex"`
	MessagePayloadHex string `json:"message_payload_hex,omitempty"`
	ESMClass          int    `json:"esm_class"`
	DataCoding        int    `json:"data_coding"`
}

// startSMSC starts the simulator on ports the kernel chooses and waits for
// its ready line. It is stopped (by PID) when the test ends; its log is
// shown if the test failed.
func startSMSC(t testing.TB, cfg smscConfig) *smsc {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not installed; run scripts/deps.sh smsc: %v", err)
	}
	script, err := filepath.Abs(smscScript)
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(filepath.Dir(script), "node_modules", "smpp", "package.json")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("the npm package smpp is not installed in %s; run scripts/deps.sh smsc: %v", filepath.Dir(script), err)
	}
	args := []string{script, "--smpp-port", "0", "--control-port", "0", "--host", "127.0.0.1", "--exit-on-stdin-eof"}
	if cfg.Verbose {
		args = append(args, "--verbose")
	}
	if cfg.TLSCert != "" {
		args = append(args, "--tls-cert", cfg.TLSCert, "--tls-key", cfg.TLSKey)
	}
	s := &smsc{t: t, exited: make(chan struct{})}
	s.cmd = exec.Command(node, args...)
	s.cmd.Stderr = s
	// The simulator exits when its stdin closes, so it cannot outlive a
	// test binary that dies without running its cleanups.
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting the SMSC simulator: %v", err)
	}
	type ports struct {
		SMPP    int `json:"smpp"`
		Control int `json:"control"`
	}
	ready := make(chan ports, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				var p ports
				if json.Unmarshal([]byte(line), &p) == nil && p.SMPP > 0 && p.Control > 0 {
					ready <- p
					continue
				}
			}
			s.Write([]byte("stdout: " + line + "\n"))
		}
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(3 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
		if t.Failed() {
			t.Logf("SMSC simulator log:\n%s", s.logs())
		}
	})
	select {
	case p := <-ready:
		s.addr = fmt.Sprintf("127.0.0.1:%d", p.SMPP)
		s.url = fmt.Sprintf("http://127.0.0.1:%d", p.Control)
	case <-s.exited:
		t.Fatalf("SMSC simulator exited before ready: %v\n%s", s.err, s.logs())
	case <-time.After(15 * time.Second):
		t.Fatalf("SMSC simulator not ready after 15s\n%s", s.logs())
	}
	if cfg.Config != nil {
		s.Config(t, cfg.Config)
	}
	return s
}

// Write appends to the simulator's log (its stderr).
func (s *smsc) Write(p []byte) (int, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Write(p)
}

func (s *smsc) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Addr is the SMPP listener, host:port.
func (s *smsc) Addr() string { return s.addr }

// call sends a control request and decodes a 2xx answer into out (if not
// nil). It returns the HTTP status and the raw answer.
func (s *smsc) call(method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, data, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("decoding %s %s answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, data, nil
}

func (s *smsc) mustCall(t testing.TB, method, path string, body, out any) {
	t.Helper()
	status, data, err := s.call(method, path, body, out)
	if err != nil || status != http.StatusOK {
		t.Fatalf("SMSC %s %s = %d %v: %s", method, path, status, err, strings.TrimSpace(string(data)))
	}
}

// Config merges cfg into the simulator's configuration (PUT /config; a nil
// value restores a default). An unknown key fails the test.
func (s *smsc) Config(t testing.TB, cfg map[string]any) {
	t.Helper()
	s.mustCall(t, http.MethodPut, "/config", cfg, nil)
}

// Submits returns the submit_sm received after the since-th (0: all).
func (s *smsc) Submits(t testing.TB, since int) []smscSubmit {
	t.Helper()
	var out []smscSubmit
	s.mustCall(t, http.MethodGet, fmt.Sprintf("/submits?since=%d", since), nil, &out)
	return out
}

// SubmitCount returns how many submit_sm were received.
func (s *smsc) SubmitCount(t testing.TB) int {
	t.Helper()
	var out struct {
		Count int `json:"count"`
	}
	s.mustCall(t, http.MethodGet, "/submits/count", nil, &out)
	return out.Count
}

// WaitSubmits waits until at least n submit_sm were received and returns
// them all; it fails the test after timeout.
func (s *smsc) WaitSubmits(t testing.TB, n int, timeout time.Duration) []smscSubmit {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := s.SubmitCount(t)
		if c >= n {
			return s.Submits(t, 0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC received %d submit_sm in %s, want %d", c, timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stats returns the simulator's counters.
func (s *smsc) Stats(t testing.TB) smscStats {
	t.Helper()
	var out smscStats
	s.mustCall(t, http.MethodGet, "/stats", nil, &out)
	return out
}

// WaitStats polls the counters until cond holds, or fails the test after
// timeout.
func (s *smsc) WaitStats(t testing.TB, timeout time.Duration, what string, cond func(smscStats) bool) smscStats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.Stats(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC stats: %s not reached in %s: %+v", what, timeout, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MO delivers a mobile-originated message and returns the command_status
// of each deliver_sm_resp, in the order the parts were sent (-1: no resp
// in time, or the connection closed). It fails the test if no receiver is
// bound (409) or the request is refused.
func (s *smsc) MO(t testing.TB, mo smscMO) []int {
	t.Helper()
	var out struct {
		Statuses []*int `json:"statuses"`
	}
	s.mustCall(t, http.MethodPost, "/mo", mo, &out)
	st := make([]int, len(out.Statuses))
	for i, v := range out.Statuses {
		st[i] = -1
		if v != nil {
			st[i] = *v
		}
	}
	return st
}

// Drop destroys every SMPP connection at once (no unbind) and refuses
// binds for refuseMs milliseconds by closing new connections at once.
func (s *smsc) Drop(t testing.TB, refuseMs int) {
	t.Helper()
	s.mustCall(t, http.MethodPost, "/drop", map[string]any{"refuse_binds_ms": refuseMs}, nil)
}

// Reset clears the recorded submits and the counters; the configuration
// stays.
func (s *smsc) Reset(t testing.TB) {
	t.Helper()
	s.mustCall(t, http.MethodPost, "/reset", nil, nil)
}
