package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSMSCleanStopNoDuplicates: SIGTERM while submits are in flight (the
// SMSC answers each after 300 ms) waits for their responses before
// unbinding, so the restarted veild resumes only what was never
// submitted: every message reaches the SMSC exactly once. (Duplicates are
// the price of a crash, not of a clean stop.)
func TestSMSCleanStopNoDuplicates(t *testing.T) {
	const n, window = 30, 10
	sim := startSMSC(t, smscConfig{Config: map[string]any{"resp_delay_ms": 300}})
	cfg := fmt.Sprintf(`data_dir: %q
admin: {listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0"]}
shutdown: {drain_delay: 100ms, drain_timeout: 10s}
carriers:
  - name: smsc1
    smpp: {address: %q, system_id: veil, password_env: E2E_SMPP_PASSWORD, enquire_link: 2s, window: %d}
`, t.TempDir(), sim.Addr(), window)
	config := filepath.Join(t.TempDir(), "veil.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_SMPP_PASSWORD", "secret")
	d1 := startDaemon(t, config)
	d1.mustCall("POST", "/v1/numbers", map[string]any{"number": proxyP, "carrier": "smsc1"}, nil, http.StatusCreated)
	sim.WaitStats(t, 10*time.Second, "veild bound", func(s smscStats) bool { return s.BindsActive >= 1 })
	body := func(i int) string { return fmt.Sprintf("veil clean stop message %02d", i) }
	for i := range n {
		d1.mustCall("POST", "/v1/messages", map[string]any{"from": proxyP, "to": calleeB, "body": body(i)}, nil, http.StatusAccepted)
	}
	// A full window is in flight (the SMSC holds each answer 300 ms).
	sim.WaitSubmits(t, window, 10*time.Second)
	if err := d1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d1.wait(15 * time.Second); code != 0 {
		t.Fatalf("veild exited %d after SIGTERM", code)
	}
	if got := sim.SubmitCount(t); got >= n {
		t.Fatalf("all %d submits went out before the stop; the test needs some left for the restart", got)
	}

	d2 := startDaemon(t, config)
	sim.WaitStats(t, 10*time.Second, "veild bound again", func(s smscStats) bool { return s.BindsActive >= 1 })
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := make(map[string]int)
		for _, s := range sim.Submits(t, 0) {
			if s.Status == 0 {
				seen[string(s.ShortMessage)]++
			}
		}
		missing := 0
		for i := range n {
			if seen[body(i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			crashWaitDrained(t, d2, 10*time.Second)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages never reached the SMSC", missing, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := make(map[string]int)
	for _, s := range sim.Submits(t, 0) {
		if s.Status == 0 {
			seen[string(s.ShortMessage)]++
		}
	}
	for i := range n {
		if c := seen[body(i)]; c != 1 {
			t.Errorf("message %d reached the SMSC %d times, want exactly once after a clean stop", i, c)
		}
	}
}
