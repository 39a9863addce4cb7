package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type participant struct {
	Number string `json:"number"`
}

type session struct {
	ID           string        `json:"id"`
	ProxyNumber  string        `json:"proxy_number"`
	Participants []participant `json:"participants"`
	State        string        `json:"state"`
	UniqueName   string        `json:"unique_name"`
	ExpiresAt    time.Time     `json:"expires_at"`
}

type sessionList struct {
	Sessions   []session `json:"sessions"`
	NextCursor string    `json:"next_cursor"`
}

type numberList struct {
	Numbers []struct {
		Number       string `json:"number"`
		OpenSessions int    `json:"open_sessions"`
	} `json:"numbers"`
}

type apiError struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func createSession(a, b string, extra map[string]any) map[string]any {
	body := map[string]any{
		"participants": []participant{{a}, {b}},
		"mode":         "voice+sms",
		"ttl_seconds":  3600,
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// allOpen pages through every open session.
func allOpen(t *testing.T, d *daemon) map[string]session {
	t.Helper()
	out := make(map[string]session)
	cursor := ""
	for {
		var page sessionList
		d.mustCall("GET", "/v1/sessions?state=open&limit=100&cursor="+url.QueryEscape(cursor), nil, &page, http.StatusOK)
		for _, s := range page.Sessions {
			out[s.ID] = s
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// assertCoreRule fails if a participant holds two open sessions on one
// proxy number.
func assertCoreRule(t *testing.T, open map[string]session) {
	t.Helper()
	seen := make(map[string]string)
	for _, s := range open {
		for _, p := range s.Participants {
			k := p.Number + "|" + s.ProxyNumber
			if other, dup := seen[k]; dup {
				t.Errorf("core rule broken: sessions %s and %s share a participant on %s", other, s.ID, s.ProxyNumber)
			}
			seen[k] = s.ID
		}
	}
}

// TestCrashRecovery: everything acknowledged before kill -9 is there after
// a restart, and the indexes agree with the records.
func TestCrashRecovery(t *testing.T) {
	dataDir := t.TempDir()
	config := writeConfig(t, dataDir)
	d := startDaemon(t, config)

	numbers := []string{"+15550100001", "+15550100002", "+15550100003", "+442071838750"}
	for _, n := range numbers {
		d.mustCall("POST", "/v1/numbers", map[string]any{"number": n, "carrier": "carrier1"}, nil, http.StatusCreated)
	}
	d.mustCall("POST", "/v1/routes", map[string]any{"prefix": "+44", "carriers": []string{"carrier2", "carrier1"}}, nil, http.StatusCreated)

	// A saturated pair: A and B hold every number.
	const a, b = "+15550100101", "+15550100102"
	for range numbers {
		d.mustCall("POST", "/v1/sessions", createSession(a, b, nil), nil, http.StatusCreated)
	}
	var e apiError
	if status, _ := d.call("POST", "/v1/sessions", createSession(a, b, nil), &e); status != http.StatusConflict || e.Error.Code != "pool_exhausted" {
		t.Fatalf("fifth create for a saturated pair = %d %q, want 409 pool_exhausted", status, e.Error.Code)
	}
	var named session
	d.mustCall("POST", "/v1/sessions", createSession("+15550100201", "+15550100202", map[string]any{"unique_name": "booking-42"}), &named, http.StatusCreated)
	var toClose session
	d.mustCall("POST", "/v1/sessions", createSession("+15550100301", "+15550100302", nil), &toClose, http.StatusCreated)
	d.mustCall("POST", "/v1/sessions/"+toClose.ID+"/close", nil, nil, http.StatusOK)

	// A concurrent burst, killed in the middle: every 201 must survive.
	var (
		mu    sync.Mutex
		acked []session
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	firstAcks := make(chan struct{})
	var once sync.Once
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pa := fmt.Sprintf("+1666%03d%04d", w, i)
				pb := fmt.Sprintf("+1777%03d%04d", w, rng.IntN(10000))
				var s session
				status, err := d.call("POST", "/v1/sessions", createSession(pa, pb, nil), &s)
				if err != nil {
					return // the daemon died under us
				}
				if status == http.StatusCreated {
					mu.Lock()
					acked = append(acked, s)
					if len(acked) >= 200 {
						once.Do(func() { close(firstAcks) })
					}
					mu.Unlock()
				}
			}
		})
	}
	select {
	case <-firstAcks:
	case <-time.After(60 * time.Second):
		t.Fatal("burst made no progress")
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.wait(10 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("killed veild with -9 after %d acknowledged burst creates", len(acked))

	// The offline checker agrees with itself.
	if code, out := runVeild(t, "check", "-config", config); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("veild check after kill -9 = %d:\n%s", code, out)
	}

	d2 := startDaemon(t, config)
	for _, s := range acked {
		var got session
		d2.mustCall("GET", "/v1/sessions/"+s.ID, nil, &got, http.StatusOK)
		if got.State != "open" || got.ProxyNumber != s.ProxyNumber {
			t.Errorf("session %s after restart: state %q proxy %s, want open on %s", s.ID, got.State, got.ProxyNumber, s.ProxyNumber)
		}
	}
	var got session
	d2.mustCall("GET", "/v1/sessions/"+toClose.ID, nil, &got, http.StatusOK)
	if got.State != "closed" {
		t.Errorf("closed session came back %q", got.State)
	}
	var byName sessionList
	d2.mustCall("GET", "/v1/sessions?state=open&unique_name=booking-42", nil, &byName, http.StatusOK)
	if len(byName.Sessions) != 1 || byName.Sessions[0].ID != named.ID {
		t.Errorf("unique_name lookup after restart = %+v, want %s", byName.Sessions, named.ID)
	}
	if status, _ := d2.call("POST", "/v1/sessions", createSession("+15550100901", "+15550100902", map[string]any{"unique_name": "booking-42"}), &e); status != http.StatusConflict || e.Error.Code != "unique_name_in_use" {
		t.Errorf("reusing an open unique_name after restart = %d %q, want 409 unique_name_in_use", status, e.Error.Code)
	}
	// The allocation index came back: the saturated pair is still full.
	if status, _ := d2.call("POST", "/v1/sessions", createSession(a, b, nil), &e); status != http.StatusConflict || e.Error.Code != "pool_exhausted" {
		t.Errorf("saturated pair after restart = %d %q, want 409 pool_exhausted", status, e.Error.Code)
	}
	var pair sessionList
	d2.mustCall("GET", "/v1/sessions?state=open&participant="+url.QueryEscape(a), nil, &pair, http.StatusOK)
	if len(pair.Sessions) != len(numbers) {
		t.Errorf("participant %s has %d open sessions after restart, want %d", a, len(pair.Sessions), len(numbers))
	}
	open := allOpen(t, d2)
	assertCoreRule(t, open)
	var nums numberList
	d2.mustCall("GET", "/v1/numbers", nil, &nums, http.StatusOK)
	perNumber := make(map[string]int)
	for _, s := range open {
		perNumber[s.ProxyNumber]++
	}
	if len(nums.Numbers) != len(numbers) {
		t.Errorf("numbers after restart = %d, want %d", len(nums.Numbers), len(numbers))
	}
	for _, n := range nums.Numbers {
		if n.OpenSessions != perNumber[n.Number] {
			t.Errorf("number %s reports %d open sessions, the session list has %d", n.Number, n.OpenSessions, perNumber[n.Number])
		}
	}
	var routes struct {
		Routes []struct{ Prefix string } `json:"routes"`
	}
	d2.mustCall("GET", "/v1/routes", nil, &routes, http.StatusOK)
	if len(routes.Routes) != 1 || routes.Routes[0].Prefix != "+44" {
		t.Errorf("routes after restart = %+v", routes.Routes)
	}
}

// TestSIGTERMDrainsAndExitsZero: SIGTERM ends the daemon cleanly.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	d := startDaemon(t, writeConfig(t, t.TempDir()))
	d.mustCall("GET", "/healthz", nil, nil, http.StatusOK)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(40 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, d.logs())
	}
	if !strings.Contains(d.logs(), "veild stopped") {
		t.Fatalf("no clean stop logged:\n%s", d.logs())
	}
}

// TestSIGINTStops: SIGINT stops the daemon.
func TestSIGINTStops(t *testing.T) {
	d := startDaemon(t, writeConfig(t, t.TempDir()))
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGINT = %d, want 0", code)
	}
}

// TestBadConfigReportsEveryProblem: the daemon refuses a bad file, names
// every problem, and exits 2.
func TestBadConfigReportsEveryProblem(t *testing.T) {
	path := t.TempDir() + "/bad.yaml"
	bad := "media: {port_min: 30000, port_max: 20000}\nfallback_number: \"12345\"\n"
	if err := writeFile(path, bad); err != nil {
		t.Fatal(err)
	}
	code, out := runVeild(t, "-config", path)
	if code != 2 {
		t.Fatalf("exit code = %d, want 2:\n%s", code, out)
	}
	for _, want := range []string{"media", "fallback_number"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
	if err := writeFile(path, "bogus_key: 1\n"); err != nil {
		t.Fatal(err)
	}
	if code, out := runVeild(t, "-config", path); code != 2 || !strings.Contains(out, "bogus_key") {
		t.Fatalf("unknown key: exit %d, output:\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out := runVeild(t, "version")
	if code != 0 || !strings.HasPrefix(out, "veild ") {
		t.Fatalf("veild version = %d %q", code, out)
	}
}

// TestSecretsNotLogged: neither the admin token nor full participant
// numbers reach the log at the default level.
func TestSecretsNotLogged(t *testing.T) {
	d := startDaemon(t, writeConfig(t, t.TempDir()))
	d.mustCall("POST", "/v1/numbers", map[string]any{"number": "+15550100001", "carrier": "carrier1"}, nil, http.StatusCreated)
	d.mustCall("POST", "/v1/sessions", createSession("+15550100101", "+15550100102", nil), nil, http.StatusCreated)
	var tok struct {
		Token string `json:"token"`
	}
	d.mustCall("POST", "/v1/tokens", map[string]any{"role": "reviewer"}, &tok, http.StatusCreated)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.wait(40 * time.Second)
	logs := d.logs()
	for _, secret := range []string{adminToken, tok.Token, "+15550100001", "+15550100101", "+15550100102"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
}
