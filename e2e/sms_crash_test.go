package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// The crash test's numbers and sizes.
const (
	crashMessages = 2000 // the burst
	crashKillAt   = 500  // kill -9 once this many POSTs were answered 202
	crashWorkers  = 8    // concurrent API clients
	crashWindow   = 20   // carriers[0].smpp.window
)

// TestSMSKillDuringBurst is the at-least-once proof: veild is killed
// with SIGKILL during a burst of 2,000 POST /v1/messages (after 500 were
// answered 202), the database is checked, veild restarts on the same
// data_dir and the rest of the burst is sent. Every message answered 202
// reaches the SMSC, from P to B with its text, and the duplicates stay
// within the bound the README states: a crash resubmits at most `window`
// parts per carrier (the parts submitted whose submit_sm_resp outcome was
// not yet synced; smpp/bind.go keeps them, in flight or pending, inside
// the window).
//
// The SMSC answers each submit_sm after 10 ms, so the window is mostly full when
// the kill comes and the bound is tested near its edge (runs show 1 to 20,
// mostly 12 to 20 duplicates), not in an idle moment.
func TestSMSKillDuringBurst(t *testing.T) {
	// window_check: the SMSC refuses (and counts) a submit that arrives
	// while window are unanswered on its connection, which would break the
	// premise of the bound.
	sim := startSMSC(t, smscConfig{Config: map[string]any{"resp_delay_ms": 10, "window_check": crashWindow}})
	dataDir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %q
admin: {listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0"]}
sessions: {sweep_interval: 100ms}
shutdown: {drain_delay: 100ms, drain_timeout: 5s}
sms: {submit_timeout: 60s, retry_max: 1s}
carriers:
  - name: smsc1
    smpp: {address: %q, system_id: veil, password_env: E2E_SMPP_PASSWORD, enquire_link: 2s, window: %d}
`, dataDir, sim.Addr(), crashWindow)
	config := filepath.Join(t.TempDir(), "veil.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_SMPP_PASSWORD", "secret")

	d1 := startDaemon(t, config)
	d1.mustCall("POST", "/v1/numbers", map[string]any{"number": proxyP, "carrier": "smsc1"}, nil, http.StatusCreated)
	sim.WaitStats(t, 10*time.Second, "veild bound", func(s smscStats) bool { return s.BindsActive >= 1 })

	body := func(i int) string { return fmt.Sprintf("veil crash burst message %04d", i) }
	b := &crashBurst{ids: make(map[int]string), uncertain: make(map[int]bool), reached: make(chan struct{})}
	todo := make(chan int, crashMessages)
	for i := range crashMessages {
		todo <- i
	}
	close(todo)

	// Phase 1: the burst, until the kill.
	done := b.run(t, d1.url, todo, body)
	select {
	case <-b.reached:
	case <-done:
		t.Fatalf("the burst ended with %d of %d answered 202, before the kill", b.ackCount(), crashKillAt)
	case <-time.After(60 * time.Second):
		t.Fatalf("%d POST /v1/messages answered 202 in 60s, want %d", b.ackCount(), crashKillAt)
	}
	if err := d1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d1.exited
	<-done
	killedAt := b.ackCount()
	var rest []int
	for i := range todo {
		rest = append(rest, i)
	}
	t.Logf("killed veild with %d messages answered 202, %d POSTs cut off by the kill, %d not sent yet",
		killedAt, len(b.uncertain), len(rest))
	if b.failed != "" {
		t.Fatal(b.failed)
	}

	// The store is consistent after the kill (message records, their
	// interaction rows, sessions).
	if code, out := runVeild(t, "check", "-config", config); code != 0 {
		t.Fatalf("veild check after kill -9 = %d:\n%s", code, out)
	}

	// Phase 2: restart on the same data_dir; the queue resumes; the rest
	// of the burst goes to the new process.
	d2 := startDaemon(t, config)
	sim.WaitStats(t, 10*time.Second, "veild bound again", func(s smscStats) bool { return s.BindsActive >= 1 })
	todo2 := make(chan int, len(rest))
	for _, i := range rest {
		todo2 <- i
	}
	close(todo2)
	b.reached = nil
	<-b.run(t, d2.url, todo2, body)
	if b.failed != "" {
		t.Fatal(b.failed)
	}
	if n := b.ackCount(); n+len(b.uncertain) != crashMessages {
		t.Fatalf("%d answered 202 and %d uncertain, want %d in all", n, len(b.uncertain), crashMessages)
	}

	// Every acknowledged message reaches the SMSC. Poll until each has
	// arrived at least once, then until the queue is empty.
	byBody := make(map[string]int, crashMessages)
	for i := range crashMessages {
		byBody[body(i)] = i
	}
	deadline := time.Now().Add(90 * time.Second)
	var seen map[int][]smscSubmit
	for {
		seen = make(map[int][]smscSubmit)
		for _, s := range sim.Submits(t, 0) {
			if s.Status != 0 {
				continue // refused: not delivered, so neither a delivery nor a duplicate
			}
			i, ok := byBody[string(s.ShortMessage)] // these bodies are the same in ASCII and unpacked GSM 03.38
			if !ok {
				t.Fatalf("the SMSC received a text that was never sent: %q", s.ShortMessage)
			}
			seen[i] = append(seen[i], s)
		}
		missing := 0
		for i := range b.ids {
			if len(seen[i]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never reached the SMSC", missing, len(b.ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
	crashWaitDrained(t, d2, 30*time.Second)
	// Whatever arrived late (an uncertain message still in the queue)
	// counts too.
	seen = make(map[int][]smscSubmit)
	for _, s := range sim.Submits(t, 0) {
		if s.Status == 0 {
			seen[byBody[string(s.ShortMessage)]] = append(seen[byBody[string(s.ShortMessage)]], s)
		}
	}

	duplicates, dupMessages := 0, 0
	for i, subs := range seen {
		if len(subs) > 1 {
			duplicates += len(subs) - 1
			dupMessages++
			if !b.uncertain[i] && b.ids[i] == "" {
				t.Errorf("message %d was never sent, yet the SMSC has it %d times", i, len(subs))
			}
		}
		for _, s := range subs {
			if s.SourceAddr != digits(proxyP) || s.DestinationAddr != digits(calleeB) {
				t.Errorf("message %d went from %q to %q, want from P %q to B %q", i, s.SourceAddr, s.DestinationAddr, digits(proxyP), digits(calleeB))
			}
		}
	}
	uncertainArrived := 0
	for i := range b.uncertain {
		if len(seen[i]) > 0 {
			uncertainArrived++
		}
	}
	t.Logf("SMSC: %d distinct messages, %d duplicate submits (%d messages twice or more); %d of %d uncertain messages arrived; bound %d",
		len(seen), duplicates, dupMessages, uncertainArrived, len(b.uncertain), crashWindow)
	if v := sim.Stats(t).WindowViolations; v != 0 {
		t.Errorf("veild had more than window=%d submits unanswered %d times", crashWindow, v)
	}
	// One crash, one carrier, one part per message: at most window
	// duplicates.
	if duplicates > crashWindow {
		t.Errorf("%d duplicate submits after one crash, more than the window (%d): the README's bound does not hold", duplicates, crashWindow)
	}

	// The records agree with the SMSC: each acknowledged message is sent
	// (or delivered), its part carrying an id the SMSC gave one of its
	// copies.
	notDone := 0
	for i, id := range b.ids {
		var m struct {
			Status string `json:"status"`
			Body   string `json:"body"`
			Parts  []struct {
				CarrierID string `json:"carrier_id"`
			} `json:"parts"`
		}
		d2.mustCall("GET", "/v1/messages/"+id, nil, &m, http.StatusOK)
		if m.Status != "sent" && m.Status != "delivered" {
			notDone++
			if notDone <= 5 {
				t.Errorf("message %d (%s): status %q, want sent or delivered", i, id, m.Status)
			}
			continue
		}
		if m.Body != body(i) || len(m.Parts) != 1 {
			t.Errorf("message %d (%s): body %q parts %d", i, id, m.Body, len(m.Parts))
			continue
		}
		var ids []string
		for _, s := range seen[i] {
			if s.MessageID != nil {
				ids = append(ids, *s.MessageID)
			}
		}
		if !slices.Contains(ids, m.Parts[0].CarrierID) {
			t.Errorf("message %d (%s): carrier_id %q is none of the SMSC's ids for it %v", i, id, m.Parts[0].CarrierID, ids)
		}
	}
	if notDone > 0 {
		t.Errorf("%d acknowledged messages are not sent or delivered", notDone)
	}
}

// crashBurst sends POST /v1/messages from several goroutines and keeps score.
type crashBurst struct {
	mu        sync.Mutex
	ids       map[int]string // answered 202: message index -> id
	uncertain map[int]bool   // the request failed without an answer (the kill)
	failed    string         // an unexpected answer
	reached   chan struct{}  // closed once crashKillAt are acknowledged; nil: no kill
	once      sync.Once
}

func (b *crashBurst) ackCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids)
}

// run starts crashWorkers goroutines taking indexes from todo until it is
// empty or a request fails; the channel it returns is closed when they
// are all done.
func (b *crashBurst) run(t *testing.T, url string, todo <-chan int, body func(int) string) <-chan struct{} {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: crashWorkers}}
	t.Cleanup(hc.CloseIdleConnections)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Go(func() {
			for i := range todo {
				id, status, err := crashPost(hc, url, proxyP, calleeB, body(i))
				b.mu.Lock()
				switch {
				case err != nil && !errors.Is(err, errCrashBadAccept):
					b.uncertain[i] = true
				case err != nil:
					if b.failed == "" {
						b.failed = fmt.Sprintf("POST /v1/messages #%d: %v", i, err)
					}
				case status != http.StatusAccepted:
					if b.failed == "" {
						b.failed = fmt.Sprintf("POST /v1/messages #%d = %d %s, want 202", i, status, id)
					}
				default:
					b.ids[i] = id
				}
				n := len(b.ids)
				b.mu.Unlock()
				if b.reached != nil && n >= crashKillAt {
					b.once.Do(func() { close(b.reached) })
				}
				if err != nil || status != http.StatusAccepted {
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// errCrashBadAccept is a 202 whose body is not {"id","status":"queued","parts":1}.
var errCrashBadAccept = errors.New("202 answer without an id, status queued and 1 part")

// crashPost sends one POST /v1/messages and returns the id of a 202
// (or the answer's body otherwise).
func crashPost(hc *http.Client, url, from, to, text string) (string, int, error) {
	data, _ := json.Marshal(map[string]string{"from": from, "to": to, "body": text})
	req, err := http.NewRequest("POST", url+"/v1/messages", bytes.NewReader(data))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err // cut off: as uncertain as no answer at all
	}
	if resp.StatusCode != http.StatusAccepted {
		return string(raw), resp.StatusCode, nil
	}
	var out struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Parts  int    `json:"parts"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" || out.Parts != 1 || out.Status != "queued" {
		return "", resp.StatusCode, fmt.Errorf("%w: %s", errCrashBadAccept, raw)
	}
	return out.ID, resp.StatusCode, nil
}

// crashWaitDrained polls GET /v1/carriers until no part is queued or in
// flight.
func crashWaitDrained(t *testing.T, d *daemon, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var l struct {
			Carriers []struct {
				Carrier  string `json:"carrier"`
				State    string `json:"state"`
				Queued   int    `json:"queued"`
				InFlight int    `json:"in_flight"`
			} `json:"carriers"`
		}
		d.mustCall("GET", "/v1/carriers", nil, &l, http.StatusOK)
		busy := len(l.Carriers) == 0
		for _, c := range l.Carriers {
			busy = busy || c.Queued > 0 || c.InFlight > 0
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SMS queue did not drain in %s: %+v", timeout, l.Carriers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
