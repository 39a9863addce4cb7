package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// veildBin is the binary under test, built once by TestMain.
var veildBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "veil-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	veildBin = filepath.Join(dir, "veild")
	build := exec.Command("go", "build", "-o", veildBin, "../cmd/veild")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building veild:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminToken = "e2e-admin-token"

// daemon is a running veild process.
type daemon struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	sip    []string // SIP listeners as "udp://host:port", from the ready line
	config string
	logMu  sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error // exit status, valid after exited is closed
}

// writeConfig writes a config using dataDir and returns its path.
func writeConfig(t testing.TB, dataDir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %q
admin: {listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"]}
sessions: {sweep_interval: 100ms}
shutdown: {drain_delay: 200ms, drain_timeout: 10s}
carriers:
  - name: carrier1
    sip: {address: "127.0.0.1:5070", transport: udp, inbound_cidrs: ["127.0.0.1/32"]}
  - name: carrier2
    sip: {address: "127.0.0.1:5080", transport: udp, inbound_cidrs: ["127.0.0.2/32"]}
`, dataDir)
	path := filepath.Join(t.TempDir(), "veil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var readyRE = regexp.MustCompile(`msg="veild ready" admin=(\S+) sip=("[^"]*"|\S+)`)

// startDaemon starts veild with config and waits until it is ready.
func startDaemon(t testing.TB, config string) *daemon {
	t.Helper()
	d := &daemon{t: t, config: config, exited: make(chan struct{})}
	d.cmd = exec.Command(veildBin, "-config", config)
	d.cmd.Env = append(os.Environ(), "VEIL_ADMIN_TOKEN="+adminToken)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting veild: %v", err)
	}
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.logMu.Lock()
			d.log.WriteString(line + "\n")
			d.logMu.Unlock()
			if m := readyRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- []string{m[1], strings.Trim(m[2], `"`)}:
				default:
				}
			}
		}
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("veild log:\n%s", d.logs())
		}
	})
	select {
	case addrs := <-ready:
		d.url = "http://" + addrs[0]
		d.sip = strings.Fields(addrs[1])
	case <-d.exited:
		t.Fatalf("veild exited before ready: %v\n%s", d.err, d.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("veild not ready after 30s\n%s", d.logs())
	}
	return d
}

func (d *daemon) logs() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

// wait waits for the process to exit and returns its exit code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("veild did not exit within %s", timeout)
	}
	if d.err == nil {
		return 0
	}
	if ee, ok := d.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	d.t.Fatalf("veild wait: %v", d.err)
	return -1
}

var client = &http.Client{Timeout: 10 * time.Second}

// call sends a JSON request with the admin token and decodes the answer
// into out (if not nil). It returns the status.
func (d *daemon) call(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.url+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s %s answer %q: %w", method, path, data, err)
		}
	}
	return resp.StatusCode, nil
}

// mustCall is call that fails the test unless the status is want.
func (d *daemon) mustCall(method, path string, body, out any, want int) {
	d.t.Helper()
	var raw json.RawMessage
	status, err := d.call(method, path, body, &raw)
	if err != nil || status != want {
		d.t.Fatalf("%s %s = %d %v (%s), want %d", method, path, status, err, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			d.t.Fatalf("decoding %s: %v", raw, err)
		}
	}
}

// runVeild runs veild with args and returns its exit code and output.
func runVeild(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(veildBin, args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running veild %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// sipAddr returns veild's SIP listener of a transport ("udp", "tcp") as
// host:port.
func (d *daemon) sipAddr(transport string) string {
	d.t.Helper()
	for _, a := range d.sip {
		if rest, ok := strings.CutPrefix(a, transport+"://"); ok {
			return rest
		}
	}
	d.t.Fatalf("veild has no %s SIP listener (%q)", transport, d.sip)
	return ""
}
