package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

// bootToken is the bootstrap admin token of every test server.
const bootToken = "boot-secret"

// testCarriers are the carriers every test routing.Service knows.
var testCarriers = []string{"carrier1", "carrier2"}

// epoch is where every fake clock starts.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is an injected clock that only moves when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lockedBuffer is a log sink that handler goroutines write while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// apiEnv is an admin Server on an in-memory store, served over a real
// loopback listener, with a fake clock shared by routing and admin.
type apiEnv struct {
	db     *store.DB
	rt     *routing.Service
	srv    *Server
	reg    *prometheus.Registry
	clock  *fakeClock
	logs   *lockedBuffer
	ts     *httptest.Server
	client *http.Client
}

// newAPI starts a test server.
func newAPI(tb testing.TB) *apiEnv {
	tb.Helper()
	e := &apiEnv{db: storetest.Open(tb), clock: &fakeClock{now: epoch}, logs: &lockedBuffer{}, reg: prometheus.NewRegistry()}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.rt, err = routing.New(e.db, routing.Options{Carriers: testCarriers, Now: e.clock.Now, Logger: logger})
	if err != nil {
		tb.Fatalf("routing.New: %v", err)
	}
	e.srv, err = New(Options{Routing: e.rt, DB: e.db, BootstrapToken: bootToken, Registry: e.reg, Now: e.clock.Now, Logger: logger})
	if err != nil {
		tb.Fatalf("admin.New: %v", err)
	}
	e.ts = httptest.NewServer(e.srv)
	tb.Cleanup(e.ts.Close)
	e.client = e.ts.Client()
	e.client.Timeout = 30 * time.Second
	return e
}

// request sends a request with the given headers and returns the response
// (body already read and closed) and its body.
func (e *apiEnv) request(tb testing.TB, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// do sends body as JSON (a string or []byte is sent verbatim, anything else
// is marshalled; nil sends no body) with "Authorization: Bearer token"
// unless token is empty.
func (e *apiEnv) do(tb testing.TB, method, path, token string, body any) (int, []byte) {
	tb.Helper()
	resp, b := e.doResp(tb, method, path, token, body)
	return resp.StatusCode, b
}

// doResp is do returning the whole response.
func (e *apiEnv) doResp(tb testing.TB, method, path, token string, body any) (*http.Response, []byte) {
	tb.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	var r io.Reader
	if body != nil {
		h.Set("Content-Type", "application/json")
		switch b := body.(type) {
		case string:
			r = strings.NewReader(b)
		case []byte:
			r = bytes.NewReader(b)
		default:
			data, err := json.Marshal(body)
			if err != nil {
				tb.Fatalf("encoding request body: %v", err)
			}
			r = bytes.NewReader(data)
		}
	}
	return e.request(tb, method, path, h, r)
}

// mustDo is do that fails the test unless the status is want; it decodes
// the response into out when out is not nil.
func (e *apiEnv) mustDo(tb testing.TB, want int, method, path string, body, out any) {
	tb.Helper()
	status, b := e.do(tb, method, path, bootToken, body)
	if status != want {
		tb.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	if out != nil {
		decodeJSON(tb, b, out)
	}
}

// decodeJSON decodes b strictly into out.
func decodeJSON(tb testing.TB, b []byte, out any) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		tb.Fatalf("decoding %T from %s: %v", out, b, err)
	}
}

// wantError checks an error response: its status and its JSON error code.
func wantError(tb testing.TB, status int, body []byte, wantStatus int, wantCode string) ErrorBody {
	tb.Helper()
	if status != wantStatus {
		tb.Fatalf("status %d, want %d; body %s", status, wantStatus, body)
	}
	var eb ErrorBody
	decodeJSON(tb, body, &eb)
	if eb.Error.Code != wantCode {
		tb.Fatalf("error code %q, want %q; body %s", eb.Error.Code, wantCode, body)
	}
	if eb.Error.Message == "" {
		tb.Errorf("error without a message: %s", body)
	}
	return eb
}

// addNumber adds a proxy number on carrier1.
func (e *apiEnv) addNumber(tb testing.TB, number string) Number {
	tb.Helper()
	var n Number
	e.mustDo(tb, http.StatusCreated, "POST", "/v1/numbers", AddNumberRequest{Number: number, Carrier: "carrier1"}, &n)
	return n
}

// createSession opens a session between a and b with the default TTL.
func (e *apiEnv) createSession(tb testing.TB, a, b string) Session {
	tb.Helper()
	var s Session
	e.mustDo(tb, http.StatusCreated, "POST", "/v1/sessions", pair(a, b), &s)
	return s
}

// createToken makes an API token with role and returns it, secret included.
func (e *apiEnv) createToken(tb testing.TB, role Role) Token {
	tb.Helper()
	var tok Token
	e.mustDo(tb, http.StatusCreated, "POST", "/v1/tokens", CreateTokenRequest{Role: role, Name: "test-" + string(role)}, &tok)
	if tok.Token == "" || tok.ID == "" {
		tb.Fatalf("created token has no secret or id: %+v", tok)
	}
	return tok
}

// listSessions returns every session matching query (without limit or
// cursor), following next_cursor.
func (e *apiEnv) listSessions(tb testing.TB, query string) []Session {
	tb.Helper()
	var all []Session
	cursor := ""
	for range 1000 {
		path := "/v1/sessions?" + query
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page SessionList
		e.mustDo(tb, http.StatusOK, "GET", path, nil, &page)
		all = append(all, page.Sessions...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	tb.Fatalf("GET /v1/sessions?%s: pagination does not end", query)
	return nil
}

// scrape returns the /metrics text.
func (e *apiEnv) scrape(tb testing.TB) string {
	tb.Helper()
	status, b := e.do(tb, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		tb.Fatalf("GET /metrics: status %d; body %s", status, b)
	}
	return string(b)
}

// metricValue returns the value of the sample called name (labels
// included, as they appear in the exposition text), or fails the test.
func metricValue(tb testing.TB, text, name string) float64 {
	tb.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			tb.Fatalf("metric %s: %v", name, err)
		}
		return f
	}
	tb.Fatalf("metric %s not in /metrics:\n%s", name, text)
	return 0
}

// pair is a create-session request between a and b.
func pair(a, b string) CreateSessionRequest {
	return CreateSessionRequest{Participants: []Participant{{Number: a}, {Number: b}}}
}
