package bench

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The SMSC simulator of the end-to-end tests (e2e/smsc/smsc.js, on the npm
// package smpp, independent of the gosmpp library Veil uses) plays the
// carrier in the SMS benchmarks. scripts/deps.sh smsc installs Node.js and
// the package. This is a minimal launcher: e2e's harness lives in test
// files of another package and cannot be imported.

// smscScript is the simulator, relative to this package's directory (where
// go test runs the benchmarks); VEIL_BENCH_SMSC_SCRIPT names another copy
// (to measure a change to the simulator itself).
const smscScript = "../e2e/smsc/smsc.js"

// simulator is a running SMSC simulator, shared by every SMS benchmark of
// the process: started on first use, it exits with the benchmark binary
// (its stdin, a pipe from this process, closes).
type simulator struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it makes the simulator exit
	addr   string         // SMPP host:port
	url    string         // control API base URL
	exited chan struct{}

	logMu sync.Mutex
	log   bytes.Buffer // its stderr
}

var sim struct {
	mu  sync.Mutex
	s   *simulator
	err error
}

// getSimulator returns the process's simulator, starting it on first use.
func getSimulator(b *testing.B) *simulator {
	b.Helper()
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if sim.s == nil && sim.err == nil {
		sim.s, sim.err = startSimulator()
	}
	if sim.err != nil {
		b.Fatalf("SMSC simulator: %v", sim.err)
	}
	return sim.s
}

func startSimulator() (*simulator, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node (Node.js) is not installed; run scripts/deps.sh smsc: %w", err)
	}
	path := smscScript
	if v := os.Getenv("VEIL_BENCH_SMSC_SCRIPT"); v != "" {
		path = v
	}
	script, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	lib := filepath.Join(filepath.Dir(script), "node_modules", "smpp", "package.json")
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("the npm package smpp is not installed; run scripts/deps.sh smsc: %w", err)
	}
	s := &simulator{exited: make(chan struct{})}
	s.cmd = exec.Command(node, script, "--smpp-port", "0", "--control-port", "0",
		"--host", "127.0.0.1", "--exit-on-stdin-eof")
	s.cmd.Stderr = s
	// It exits when its stdin closes, so a killed benchmark binary leaves
	// no simulator behind.
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", script, err)
	}
	type ports struct {
		SMPP    int `json:"smpp"`
		Control int `json:"control"`
	}
	ready := make(chan ports, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var p ports
			if json.Unmarshal(sc.Bytes(), &p) == nil && p.SMPP > 0 && p.Control > 0 {
				select {
				case ready <- p:
				default:
				}
				continue
			}
			_, _ = s.Write([]byte("stdout: " + sc.Text() + "\n"))
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case p := <-ready:
		s.addr = "127.0.0.1:" + strconv.Itoa(p.SMPP)
		s.url = "http://127.0.0.1:" + strconv.Itoa(p.Control)
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("exited before ready:\n%s", s.logs())
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("not ready after 15s:\n%s", s.logs())
	}
}

// Write appends to the simulator's log (its stderr).
func (s *simulator) Write(p []byte) (int, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log.Len() < 1<<20 {
		s.log.Write(p)
	}
	return len(p), nil
}

func (s *simulator) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// stop closes its stdin, then SIGTERMs and finally kills it, by PID.
func (s *simulator) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.exited:
		return
	case <-time.After(2 * time.Second):
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// pid is the simulator's process id (for its CPU time).
func (s *simulator) pid() int { return s.cmd.Process.Pid }

// call sends a control API request with a JSON body (nil: none) and
// decodes the JSON answer into out (nil: discarded).
func (s *simulator) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// simStats is the part of GET /stats the benchmarks read.
type simStats struct {
	BindsActive     int `json:"binds_active"`
	Submits         int `json:"submits"`
	SubmitsOK       int `json:"submits_ok"`
	Throttled       int `json:"throttled"`
	MaxInflight     int `json:"max_inflight"`
	ReceiptsSent    int `json:"receipts_sent"`
	ReceiptsAcked   int `json:"receipts_acked"`
	ReceiptsNacked  int `json:"receipts_nacked"`
	ReceiptsTimeout int `json:"receipts_timeouts"`
	ReceiptsQueued  int `json:"receipts_queued"`
}

// prepare sets the configuration of a run and clears the recorded submits
// and counters of the previous one (the simulator keeps every submit in
// memory).
func (s *simulator) prepare(config map[string]any) error {
	if err := s.call(http.MethodPut, "/config", config, nil); err != nil {
		return err
	}
	return s.call(http.MethodPost, "/reset", map[string]any{}, nil)
}

func (s *simulator) stats() (simStats, error) {
	var st simStats
	err := s.call(http.MethodGet, "/stats", nil, &st)
	return st, err
}

// cpuTicks is the user+system CPU time of process pid (0: this process)
// in clock ticks, from /proc.
func cpuTicks(pid int) int64 {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parens.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// clockTicks is USER_HZ: 100 on Linux on every architecture Go supports.
const clockTicks = 100

// cpuMeter measures the CPU used by this process and the simulator over
// a run, in percent of one core.
type cpuMeter struct {
	pid        int
	self, node int64
	start      time.Time
}

func startCPU(pid int) cpuMeter {
	return cpuMeter{pid: pid, self: cpuTicks(0), node: cpuTicks(pid), start: time.Now()}
}

// report adds, for a run of n messages, go-cpu-% and go-cpu-us/msg (this
// process: Veil or the Go client, Pebble and the benchmark's own
// goroutines) and smsc-cpu-% and smsc-cpu-us/msg (the node simulator).
// CPU per message moves less than msg/s when other jobs load the machine.
func (m cpuMeter) report(b *testing.B, n int) {
	b.Helper()
	wall := time.Since(m.start).Seconds()
	self, node := cpuTicks(0)-m.self, cpuTicks(m.pid)-m.node
	sec := func(ticks int64) float64 { return float64(ticks) / clockTicks }
	b.ReportMetric(100*sec(self)/wall, "go-cpu-%")
	b.ReportMetric(1e6*sec(self)/float64(n), "go-cpu-us/msg")
	if m.pid > 0 {
		b.ReportMetric(100*sec(node)/wall, "smsc-cpu-%")
		b.ReportMetric(1e6*sec(node)/float64(n), "smsc-cpu-us/msg")
	}
}
