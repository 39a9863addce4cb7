package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilgw/veil/routing"
)

// Numbers used by the tests: proxies of the pool and real participants
// (fictional 555-01xx ranges).
const (
	proxy1 = "+15550100001"
	proxy2 = "+15550100002"
	proxy3 = "+15550100003"
	alice  = "+15550200001"
	bob    = "+15550200002"
	carol  = "+15550200003"
	dave   = "+447700900004"
)

// endpointTests names, for every endpoint of Server.endpoints(), the test
// that covers its behaviour. TestEveryEndpointHasATest fails when an
// endpoint is added without one.
var endpointTests = map[string]string{
	"GET /healthz":                       "TestHealthz",
	"GET /v1/openapi.json":               "TestReviewerRole",
	"POST /v1/tokens":                    "TestTokens",
	"GET /v1/tokens":                     "TestTokens",
	"DELETE /v1/tokens/{id}":             "TestTokens",
	"POST /v1/numbers":                   "TestNumbers",
	"GET /v1/numbers":                    "TestNumbers",
	"GET /v1/numbers/{number}":           "TestNumbers",
	"PATCH /v1/numbers/{number}":         "TestNumberUpdate",
	"DELETE /v1/numbers/{number}":        "TestNumbers",
	"POST /v1/routes":                    "TestRoutes",
	"GET /v1/routes":                     "TestRoutes",
	"DELETE /v1/routes/{prefix}":         "TestRoutes",
	"POST /v1/sessions":                  "TestSessionCreate",
	"GET /v1/sessions":                   "TestSessionList",
	"GET /v1/sessions/{id}":              "TestSessionCreate",
	"POST /v1/sessions/{id}/close":       "TestSessionClose",
	"GET /v1/sessions/{id}/interactions": "TestSessionInteractions",
	"GET /v1/calls/{id}":                 "TestGetCall",
	"POST /v1/messages":                  "TestSendMessage",
	"GET /v1/messages/{id}":              "TestGetMessage",
	"GET /v1/carriers":                   "TestListCarriers",
}

func TestEveryEndpointHasATest(t *testing.T) {
	e := newAPI(t)
	for _, ep := range e.srv.endpoints() {
		if endpointTests[ep.method+" "+ep.pattern] == "" {
			t.Errorf("endpoint %s %s has no entry in endpointTests", ep.method, ep.pattern)
		}
	}
}

// concretePath fills an endpoint pattern's wildcards with plausible values.
func concretePath(pattern string) string {
	return strings.NewReplacer("{id}", "x_unknown", "{number}", "+15559999999", "{prefix}", "+99").Replace(pattern)
}

// --- authentication and roles ---

func TestAuthRejectsBadCredentials(t *testing.T) {
	e := newAPI(t)
	cases := []struct {
		name   string
		header string // Authorization; "" means none
	}{
		{"no header", ""},
		{"basic scheme", "Basic x"},
		{"bearer without token", "Bearer"},
		{"bearer with empty token", "Bearer "},
		{"bearer with blank token", "Bearer    "},
		{"unknown token", "Bearer not-a-token"},
		{"bootstrap token without scheme", bootToken},
		{"bootstrap token with another scheme", "Token " + bootToken},
	}
	for _, ep := range e.srv.endpoints() {
		if ep.roles == nil {
			continue
		}
		for _, c := range cases {
			t.Run(ep.method+" "+ep.pattern+"/"+c.name, func(t *testing.T) {
				h := http.Header{}
				if c.header != "" {
					h.Set("Authorization", c.header)
				}
				var body io.Reader
				if ep.method == "POST" {
					h.Set("Content-Type", "application/json")
					body = strings.NewReader("{}")
				}
				resp, b := e.request(t, ep.method, concretePath(ep.pattern), h, body)
				wantError(t, resp.StatusCode, b, http.StatusUnauthorized, "unauthorized")
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
			})
		}
	}
}

func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	e := newAPI(t)
	h := http.Header{}
	h.Set("Authorization", "bearer "+bootToken)
	resp, b := e.request(t, "GET", "/v1/numbers", h, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lower-case scheme: status %d; body %s", resp.StatusCode, b)
	}
}

func TestReviewerRole(t *testing.T) {
	e := newAPI(t)
	reviewer := e.createToken(t, RoleReviewer)
	for _, ep := range e.srv.endpoints() {
		if ep.roles == nil {
			continue
		}
		t.Run(ep.method+" "+ep.pattern, func(t *testing.T) {
			var body any
			if ep.method == "POST" {
				body = "{}"
			}
			status, b := e.do(t, ep.method, concretePath(ep.pattern), reviewer.Token, body)
			if roleIn(RoleReviewer, ep.roles) {
				// Allowed: the handler runs, so an unknown id is a 404
				// of the resource, never 401 or 403.
				if status == http.StatusUnauthorized || status == http.StatusForbidden ||
					(status != http.StatusOK && !strings.HasPrefix(ep.pattern, "/v1/calls/") && !strings.HasPrefix(ep.pattern, "/v1/messages/")) {
					t.Fatalf("reviewer: status %d, want the handler's answer; body %s", status, b)
				}
				return
			}
			wantError(t, status, b, http.StatusForbidden, "forbidden")
		})
	}

	// The reviewer's openapi endpoint serves a JSON document.
	status, b := e.do(t, "GET", "/v1/openapi.json", reviewer.Token, nil)
	if status != http.StatusOK || !json.Valid(b) {
		t.Fatalf("GET /v1/openapi.json as reviewer: status %d, valid JSON %v", status, json.Valid(b))
	}
	// A reviewer's refusal changed nothing.
	var nl NumberList
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers", nil, &nl)
	if len(nl.Numbers) != 0 {
		t.Errorf("numbers after reviewer requests: %+v", nl.Numbers)
	}
}

func TestTokens(t *testing.T) {
	e := newAPI(t)
	admin := e.createToken(t, RoleAdmin)
	reviewer := e.createToken(t, RoleReviewer)
	if !strings.HasPrefix(admin.ID, "tok_") || admin.Role != RoleAdmin || admin.Name != "test-admin" || !admin.CreatedAt.Equal(epoch) {
		t.Errorf("created admin token: %+v", admin)
	}
	if admin.Token == reviewer.Token || admin.ID == reviewer.ID {
		t.Errorf("two tokens share a secret or id: %+v %+v", admin, reviewer)
	}

	// The created admin token works.
	if status, b := e.do(t, "GET", "/v1/numbers", admin.Token, nil); status != http.StatusOK {
		t.Fatalf("created admin token: status %d; body %s", status, b)
	}

	// The list shows both, never a secret.
	status, b := e.do(t, "GET", "/v1/tokens", bootToken, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/tokens: status %d; body %s", status, b)
	}
	for _, secret := range []string{admin.Token, reviewer.Token, bootToken} {
		if strings.Contains(string(b), secret) {
			t.Errorf("GET /v1/tokens shows a secret: %s", b)
		}
	}
	var list TokenList
	decodeJSON(t, b, &list)
	var ids []string
	for _, tok := range list.Tokens {
		ids = append(ids, tok.ID)
		if tok.Token != "" {
			t.Errorf("listed token %s has a secret", tok.ID)
		}
	}
	slices.Sort(ids)
	want := []string{admin.ID, reviewer.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("listed token ids %v, want %v", ids, want)
	}

	// Bad requests.
	for _, c := range []struct {
		name string
		body string
	}{
		{"bad role", `{"role":"root"}`},
		{"no role", `{}`},
		{"empty role", `{"role":""}`},
		{"name too long", `{"role":"admin","name":"` + strings.Repeat("n", 65) + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, b := e.do(t, "POST", "/v1/tokens", bootToken, c.body)
			wantError(t, status, b, http.StatusBadRequest, "invalid_request")
		})
	}

	// Revocation: 204, then the token is refused, then the id is unknown.
	if status, b := e.do(t, "DELETE", "/v1/tokens/"+admin.ID, bootToken, nil); status != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("DELETE /v1/tokens/%s: status %d, body %q", admin.ID, status, b)
	}
	resp, b := e.doResp(t, "GET", "/v1/numbers", admin.Token, nil)
	wantError(t, resp.StatusCode, b, http.StatusUnauthorized, "unauthorized")
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 for a revoked token has no WWW-Authenticate")
	}
	status, b = e.do(t, "DELETE", "/v1/tokens/"+admin.ID, bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "not_found")

	// Tokens outlive the process: a new Server on the same store knows
	// the reviewer and not the revoked admin token.
	quiet := slog.New(slog.DiscardHandler)
	rt2, err := routing.New(e.db, routing.Options{Carriers: testCarriers, Now: e.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := New(Options{Routing: rt2, DB: e.db, Now: e.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(srv2)
	t.Cleanup(ts2.Close)
	e2 := &apiEnv{ts: ts2, client: ts2.Client()}
	if status, b := e2.do(t, "GET", "/v1/openapi.json", reviewer.Token, nil); status != http.StatusOK {
		t.Errorf("reviewer token after restart: status %d; body %s", status, b)
	}
	status, b = e2.do(t, "GET", "/v1/numbers", admin.Token, nil)
	wantError(t, status, b, http.StatusUnauthorized, "unauthorized")
	// No bootstrap token configured: the old one does not work either.
	status, b = e2.do(t, "GET", "/v1/numbers", bootToken, nil)
	wantError(t, status, b, http.StatusUnauthorized, "unauthorized")
}

// --- generic request handling ---

func TestHealthz(t *testing.T) {
	e := newAPI(t)
	for _, method := range []string{"GET", "HEAD"} {
		resp, b := e.doResp(t, method, "/healthz", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /healthz without a token: status %d; body %s", method, resp.StatusCode, b)
		}
		if method == "GET" {
			var h Health
			decodeJSON(t, b, &h)
			if h.Status != "ok" {
				t.Errorf("health %+v", h)
			}
		}
	}
	e.srv.Drain()
	status, b := e.do(t, "GET", "/healthz", "", nil)
	var h Health
	decodeJSON(t, b, &h)
	if status != http.StatusServiceUnavailable || h.Status != "draining" {
		t.Errorf("draining /healthz: status %d, body %s", status, b)
	}
}

func TestMetrics(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	e.createSession(t, alice, bob)
	text := e.scrape(t) // no token
	if got := metricValue(t, text, "veil_sessions_open"); got != 1 {
		t.Errorf("veil_sessions_open = %v, want 1", got)
	}
	if got := metricValue(t, text, "veil_numbers"); got != 1 {
		t.Errorf("veil_numbers = %v, want 1", got)
	}
	if got := metricValue(t, text, `veil_admin_requests_total{code="201",method="POST",route="/v1/sessions"}`); got != 1 {
		t.Errorf("veil_admin_requests_total for the create = %v, want 1", got)
	}
	// Unknown paths are counted under one route label, not their path.
	e.do(t, "GET", "/v1/no/such/path", bootToken, nil)
	text = e.scrape(t)
	if strings.Contains(text, "/v1/no/such/path") {
		t.Errorf("/metrics labels a request with its raw path")
	}
	if got := metricValue(t, text, `veil_admin_requests_total{code="404",method="GET",route="/"}`); got != 1 {
		t.Errorf("veil_admin_requests_total for the unknown path = %v, want 1", got)
	}
}

// TestMetricsLabelsAreBounded: a caller, even one without a token, must
// not be able to mint new time series. The route label is the pattern, the
// code is a status; the method label must not be the raw request method,
// which is any HTTP token the client likes.
func TestMetricsLabelsAreBounded(t *testing.T) {
	e := newAPI(t)
	for i := range 5 {
		method := fmt.Sprintf("VEILPROBE%d", i)
		for _, path := range []string{"/v1/nope", "/v1/numbers", "/healthz"} {
			e.do(t, method, path, "", nil)
		}
	}
	text := e.scrape(t)
	if strings.Contains(text, "VEILPROBE") {
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "VEILPROBE") {
				lines = append(lines, l)
			}
		}
		t.Errorf("unauthenticated requests with made-up methods created %d series, e.g.\n%s",
			len(lines), strings.Join(lines[:min(3, len(lines))], "\n"))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newAPI(t)
	cases := []struct {
		method, path string
		allow        []string
	}{
		{"PUT", "/v1/numbers", []string{"POST", "GET"}},
		{"PUT", "/v1/numbers/" + proxy1, []string{"GET", "PATCH", "DELETE"}},
		{"DELETE", "/v1/sessions", []string{"POST", "GET"}},
		{"DELETE", "/v1/sessions/ses_x", []string{"GET"}},
		{"GET", "/v1/sessions/ses_x/close", []string{"POST"}},
		{"POST", "/v1/tokens/tok_x", []string{"DELETE"}},
		{"PUT", "/v1/routes", []string{"POST", "GET"}},
		{"POST", "/v1/openapi.json", []string{"GET"}},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp, b := e.doResp(t, c.method, c.path, bootToken, nil)
			wantError(t, resp.StatusCode, b, http.StatusMethodNotAllowed, "method_not_allowed")
			var got []string
			for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
				got = append(got, strings.TrimSpace(m))
			}
			slices.Sort(got)
			want := slices.Clone(c.allow)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Allow = %q, want %v", resp.Header.Get("Allow"), c.allow)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	e := newAPI(t)
	for _, path := range []string{"/v1/nope", "/v2/numbers", "/v1/numbers/" + proxy1 + "/extra", "/v1/sessions/ses_x/nope", "/v1/numbers/"} {
		t.Run(path, func(t *testing.T) {
			status, b := e.do(t, "GET", path, bootToken, nil)
			wantError(t, status, b, http.StatusNotFound, "not_found")
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	e := newAPI(t)
	for _, c := range []struct {
		method, path, token string
	}{
		{"GET", "/v1/numbers", bootToken},
		{"GET", "/v1/numbers", ""},
		{"GET", "/v1/nope", bootToken},
	} {
		resp, _ := e.doResp(t, c.method, c.path, c.token, nil)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", c.method, c.path, cc)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no X-Content-Type-Options: nosniff", c.method, c.path)
		}
	}
}

// bodyCases are malformed bodies every JSON endpoint must refuse the same
// way, before looking at the content.
var bodyCases = []struct {
	name        string
	contentType string // "" means no Content-Type header
	body        string
	status      int
	code        string
}{
	{"text/plain", "text/plain", `{}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{"no content type", "", `{}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{"form", "application/x-www-form-urlencoded", `a=b`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{"bad media type", "application/json;;;", `{}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{"empty body", "application/json", ``, http.StatusBadRequest, "invalid_json"},
	{"invalid JSON", "application/json", `{"a":`, http.StatusBadRequest, "invalid_json"},
	{"not JSON", "application/json", `hello`, http.StatusBadRequest, "invalid_json"},
	{"syntax error", "application/json", `{"a" 1}`, http.StatusBadRequest, "invalid_json"},
	{"trailing garbage", "application/json", `{} x`, http.StatusBadRequest, "invalid_json"},
	{"two values", "application/json", `{}{}`, http.StatusBadRequest, "invalid_json"},
	{"array", "application/json", `[]`, http.StatusBadRequest, "invalid_json"},
	{"unknown field", "application/json", `{"no_such_field":1}`, http.StatusBadRequest, "unknown_field"},
	{"unknown field, different case", "application/json", `{"NO_SUCH":true}`, http.StatusBadRequest, "unknown_field"},
}

// jsonEndpoints are the endpoints that take a JSON body, with a field of
// the wrong type for each.
var jsonEndpoints = []struct {
	path      string
	wrongType string
}{
	{"/v1/tokens", `{"role":1}`},
	{"/v1/numbers", `{"number":15550100001}`},
	{"/v1/routes", `{"prefix":"+1","carriers":"carrier1"}`},
	{"/v1/sessions", `{"participants":"+15550200001"}`},
	{"/v1/messages", `{"from":"+15550100001","to":"+15550200002","body":["x"]}`},
}

func TestMalformedBodies(t *testing.T) {
	e := newAPI(t)
	for _, ep := range jsonEndpoints {
		cases := append(slices.Clone(bodyCases), struct {
			name        string
			contentType string
			body        string
			status      int
			code        string
		}{"wrong type", "application/json", ep.wrongType, http.StatusBadRequest, "invalid_json"})
		for _, c := range cases {
			t.Run(ep.path+"/"+c.name, func(t *testing.T) {
				h := http.Header{}
				h.Set("Authorization", "Bearer "+bootToken)
				if c.contentType != "" {
					h.Set("Content-Type", c.contentType)
				}
				resp, b := e.request(t, "POST", ep.path, h, strings.NewReader(c.body))
				wantError(t, resp.StatusCode, b, c.status, c.code)
			})
		}
	}
	// Nothing was created by any of them.
	var nl NumberList
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers", nil, &nl)
	var tl TokenList
	e.mustDo(t, http.StatusOK, "GET", "/v1/tokens", nil, &tl)
	if len(nl.Numbers) != 0 || len(tl.Tokens) != 0 {
		t.Errorf("malformed requests created numbers %v or tokens %v", nl.Numbers, tl.Tokens)
	}
}

func TestContentTypeWithParameters(t *testing.T) {
	e := newAPI(t)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+bootToken)
	h.Set("Content-Type", "application/json; charset=utf-8")
	resp, b := e.request(t, "POST", "/v1/numbers", h, strings.NewReader(`{"number":"`+proxy1+`","carrier":"carrier1"}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("application/json with charset: status %d; body %s", resp.StatusCode, b)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newAPI(t)
	pad := strings.Repeat("x", 1100<<10) // 1.1 MiB in one string field
	for _, c := range []struct{ path, body string }{
		{"/v1/tokens", `{"role":"admin","name":"` + pad + `"}`},
		{"/v1/numbers", `{"number":"` + proxy1 + `","carrier":"carrier1","fallback_number":"` + pad + `"}`},
		{"/v1/routes", `{"prefix":"+1","carriers":["` + pad + `"]}`},
		{"/v1/sessions", `{"participants":[],"unique_name":"` + pad + `"}`},
		{"/v1/messages", `{"from":"+15550100001","to":"+15550200002","body":"` + pad + `"}`},
	} {
		t.Run(c.path, func(t *testing.T) {
			status, b := e.do(t, "POST", c.path, bootToken, c.body)
			wantError(t, status, b, http.StatusRequestEntityTooLarge, "body_too_large")
		})
	}
	var tl TokenList
	e.mustDo(t, http.StatusOK, "GET", "/v1/tokens", nil, &tl)
	if len(tl.Tokens) != 0 {
		t.Errorf("an oversized request created a token")
	}
	// Just under the limit is read (and refused for its content only).
	under := `{"role":"admin","name":"` + strings.Repeat("x", (1<<20)-100) + `"}`
	status, b := e.do(t, "POST", "/v1/tokens", bootToken, under)
	wantError(t, status, b, http.StatusBadRequest, "invalid_request")
}

// badE164 are strings that are not E.164 numbers.
var badE164 = []struct{ name, number string }{
	{"no plus", "15550100101"},
	{"letters", "+1555abc"},
	{"leading zero", "+0123456789"},
	{"too long", "+1234567890123456"},
	{"too short", "+1234567"},
	{"empty", ""},
	{"plus only", "+"},
	{"spaces", "+1 555 010 0101"},
	{"dashes", "+1-555-010-0101"},
	{"tel URI", "tel:+15550100101"},
	{"double plus", "++15550100101"},
	{"trailing newline", "+15550100101\n"},
	{"non-ASCII digits", "+١٥٥٥٠١٠٠١٠١"},
}

// --- numbers ---

func TestNumbers(t *testing.T) {
	e := newAPI(t)

	// Add: defaults filled in.
	var n Number
	e.mustDo(t, http.StatusCreated, "POST", "/v1/numbers", AddNumberRequest{Number: proxy2, Carrier: "carrier1"}, &n)
	want := Number{Number: proxy2, CountryCode: "1", Carrier: "carrier1", Capabilities: []string{"sms", "voice"}, CreatedAt: epoch}
	if !numberEqual(n, want) {
		t.Errorf("POST /v1/numbers = %+v, want %+v", n, want)
	}
	// Explicit capabilities, reserved, fallback; another country.
	e.mustDo(t, http.StatusCreated, "POST", "/v1/numbers", AddNumberRequest{
		Number: "+447700900100", Carrier: "carrier2", Capabilities: []string{"voice"}, Reserved: true, FallbackNumber: carol,
	}, &n)
	want = Number{Number: "+447700900100", CountryCode: "44", Carrier: "carrier2", Capabilities: []string{"voice"}, Reserved: true, FallbackNumber: carol, CreatedAt: epoch}
	if !numberEqual(n, want) {
		t.Errorf("POST /v1/numbers = %+v, want %+v", n, want)
	}
	e.addNumber(t, proxy1)

	// Duplicate.
	status, b := e.do(t, "POST", "/v1/numbers", bootToken, AddNumberRequest{Number: proxy1, Carrier: "carrier2"})
	wantError(t, status, b, http.StatusConflict, "number_exists")

	// Invalid.
	cases := []struct {
		name string
		req  AddNumberRequest
	}{
		{"unknown carrier", AddNumberRequest{Number: proxy3, Carrier: "nope"}},
		{"no carrier", AddNumberRequest{Number: proxy3}},
		{"bad capability", AddNumberRequest{Number: proxy3, Carrier: "carrier1", Capabilities: []string{"fax"}}},
		{"bad fallback", AddNumberRequest{Number: proxy3, Carrier: "carrier1", FallbackNumber: "12345"}},
		{"fallback is itself", AddNumberRequest{Number: proxy3, Carrier: "carrier1", FallbackNumber: proxy3}},
	}
	for _, c := range badE164 {
		cases = append(cases, struct {
			name string
			req  AddNumberRequest
		}{"number " + c.name, AddNumberRequest{Number: c.number, Carrier: "carrier1"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := e.do(t, "POST", "/v1/numbers", bootToken, c.req)
			wantError(t, status, b, http.StatusBadRequest, "invalid_request")
		})
	}

	// List: sorted, every number once.
	var list NumberList
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers", nil, &list)
	var got []string
	for _, n := range list.Numbers {
		got = append(got, n.Number)
	}
	if wantList := []string{proxy1, proxy2, "+447700900100"}; !slices.Equal(got, wantList) {
		t.Errorf("GET /v1/numbers = %v, want %v", got, wantList)
	}
	status, b = e.do(t, "GET", "/v1/numbers?carrier=carrier1", bootToken, nil)
	wantError(t, status, b, http.StatusBadRequest, "unknown_parameter")

	// Get one: "+" as-is and escaped.
	for _, path := range []string{"/v1/numbers/" + proxy1, "/v1/numbers/%2B15550100001", "/v1/numbers/%2b15550100001"} {
		var one Number
		e.mustDo(t, http.StatusOK, "GET", path, nil, &one)
		if one.Number != proxy1 || one.OpenSessions != 0 {
			t.Errorf("GET %s = %+v", path, one)
		}
	}
	for _, path := range []string{"/v1/numbers/" + proxy3, "/v1/numbers/%2B15550100003", "/v1/numbers/garbage", "/v1/numbers/15550100001"} {
		status, b := e.do(t, "GET", path, bootToken, nil)
		wantError(t, status, b, http.StatusNotFound, "number_not_found")
	}

	// In use: open_sessions counts, delete refused, and a participant of
	// an open session cannot become a proxy number.
	s := e.createSession(t, alice, bob)
	var one Number
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers/"+s.ProxyNumber, nil, &one)
	if one.OpenSessions != 1 {
		t.Errorf("open_sessions = %d, want 1", one.OpenSessions)
	}
	status, b = e.do(t, "DELETE", "/v1/numbers/"+s.ProxyNumber, bootToken, nil)
	wantError(t, status, b, http.StatusConflict, "number_in_use")
	status, b = e.do(t, "POST", "/v1/numbers", bootToken, AddNumberRequest{Number: alice, Carrier: "carrier1"})
	wantError(t, status, b, http.StatusConflict, "number_in_use")
	e.mustDo(t, http.StatusOK, "POST", "/v1/sessions/"+s.ID+"/close", nil, nil)

	// Delete: 204 with no body, then gone; the escaped form works too.
	for _, c := range []struct{ path, number string }{
		{"/v1/numbers/" + proxy1, proxy1},
		{"/v1/numbers/%2B15550100002", proxy2},
	} {
		status, b := e.do(t, "DELETE", c.path, bootToken, nil)
		if status != http.StatusNoContent || len(b) != 0 {
			t.Fatalf("DELETE %s: status %d, body %q", c.path, status, b)
		}
		status, b = e.do(t, "GET", "/v1/numbers/"+c.number, bootToken, nil)
		wantError(t, status, b, http.StatusNotFound, "number_not_found")
		status, b = e.do(t, "DELETE", c.path, bootToken, nil)
		wantError(t, status, b, http.StatusNotFound, "number_not_found")
	}
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers", nil, &list)
	if len(list.Numbers) != 1 || list.Numbers[0].Number != "+447700900100" {
		t.Errorf("after deletes GET /v1/numbers = %+v", list.Numbers)
	}
}

func numberEqual(a, b Number) bool {
	return a.Number == b.Number && a.CountryCode == b.CountryCode && a.Carrier == b.Carrier &&
		slices.Equal(a.Capabilities, b.Capabilities) && a.Reserved == b.Reserved &&
		a.FallbackNumber == b.FallbackNumber && a.OpenSessions == b.OpenSessions && a.CreatedAt.Equal(b.CreatedAt)
}

// --- routes ---

func TestRoutes(t *testing.T) {
	e := newAPI(t)
	for _, r := range []RouteRequest{
		{Prefix: "+44", Carriers: []string{"carrier2"}},
		{Prefix: "+1555", Carriers: []string{"carrier1", "carrier2"}},
		{Prefix: "+", Carriers: []string{"carrier1"}},
		{Prefix: "+1555", Carriers: []string{"carrier2", "carrier1"}}, // replaces
	} {
		var got Route
		e.mustDo(t, http.StatusCreated, "POST", "/v1/routes", r, &got)
		if got.Prefix != r.Prefix || !slices.Equal(got.Carriers, r.Carriers) || !got.CreatedAt.Equal(epoch) {
			t.Errorf("POST /v1/routes %+v = %+v", r, got)
		}
	}
	var list RouteList
	e.mustDo(t, http.StatusOK, "GET", "/v1/routes", nil, &list)
	var prefixes []string
	for _, r := range list.Routes {
		prefixes = append(prefixes, r.Prefix)
	}
	if want := []string{"+", "+1555", "+44"}; !slices.Equal(prefixes, want) {
		t.Errorf("GET /v1/routes prefixes = %v, want %v (sorted)", prefixes, want)
	}
	if c := list.Routes[1].Carriers; !slices.Equal(c, []string{"carrier2", "carrier1"}) {
		t.Errorf("replaced route carriers = %v", c)
	}
	status, b := e.do(t, "GET", "/v1/routes?prefix=%2B1", bootToken, nil)
	wantError(t, status, b, http.StatusBadRequest, "unknown_parameter")

	// Invalid.
	for _, c := range []struct {
		name string
		req  RouteRequest
	}{
		{"no plus", RouteRequest{Prefix: "1555", Carriers: []string{"carrier1"}}},
		{"letters", RouteRequest{Prefix: "+15a", Carriers: []string{"carrier1"}}},
		{"empty prefix", RouteRequest{Prefix: "", Carriers: []string{"carrier1"}}},
		{"prefix too long", RouteRequest{Prefix: "+1234567890123456", Carriers: []string{"carrier1"}}},
		{"slash in prefix", RouteRequest{Prefix: "+1/2", Carriers: []string{"carrier1"}}},
		{"unknown carrier", RouteRequest{Prefix: "+1", Carriers: []string{"nope"}}},
		{"no carriers", RouteRequest{Prefix: "+1"}},
		{"carrier twice", RouteRequest{Prefix: "+1", Carriers: []string{"carrier1", "carrier1"}}},
		{"too many carriers", RouteRequest{Prefix: "+1", Carriers: slices.Repeat([]string{"carrier1"}, 11)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, b := e.do(t, "POST", "/v1/routes", bootToken, c.req)
			wantError(t, status, b, http.StatusBadRequest, "invalid_request")
		})
	}

	// Delete: as-is, escaped, the catch-all "+", then unknown.
	for _, path := range []string{"/v1/routes/+1555", "/v1/routes/%2B44", "/v1/routes/+"} {
		status, b := e.do(t, "DELETE", path, bootToken, nil)
		if status != http.StatusNoContent || len(b) != 0 {
			t.Fatalf("DELETE %s: status %d, body %q", path, status, b)
		}
		status, b = e.do(t, "DELETE", path, bootToken, nil)
		wantError(t, status, b, http.StatusNotFound, "route_not_found")
	}
	status, b = e.do(t, "DELETE", "/v1/routes/nonsense", bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "route_not_found")
	e.mustDo(t, http.StatusOK, "GET", "/v1/routes", nil, &list)
	if len(list.Routes) != 0 {
		t.Errorf("routes left after deleting all: %+v", list.Routes)
	}
}

// --- sessions ---

func TestSessionCreate(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	e.addNumber(t, proxy2)

	in := pair(alice, bob)
	in.TTLSeconds = 3600
	in.UniqueName = "booking-1"
	in.Record = true
	in.Mode = "voice"
	status, b := e.do(t, "POST", "/v1/sessions", bootToken, in)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/sessions: status %d; body %s", status, b)
	}
	// expires_at is RFC 3339 on the wire.
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(raw["expires_at"]))
	if err != nil || !exp.Equal(epoch.Add(time.Hour)) {
		t.Errorf("expires_at %v (%v), want %v", raw["expires_at"], err, epoch.Add(time.Hour))
	}
	var s Session
	decodeJSON(t, b, &s)
	if !strings.HasPrefix(s.ID, "ses_") || (s.ProxyNumber != proxy1 && s.ProxyNumber != proxy2) ||
		s.State != "open" || s.Mode != "voice" || !s.Record || s.UniqueName != "booking-1" ||
		!s.CreatedAt.Equal(epoch) || s.ClosedAt != nil || s.CloseReason != "" ||
		!slices.Equal(s.Participants, []Participant{{alice}, {bob}}) {
		t.Errorf("created session %+v", s)
	}

	// GET returns the same session.
	var got Session
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID, nil, &got)
	if got.ID != s.ID || got.ProxyNumber != s.ProxyNumber || !got.ExpiresAt.Equal(s.ExpiresAt) || got.State != "open" {
		t.Errorf("GET /v1/sessions/%s = %+v, want %+v", s.ID, got, s)
	}
	status, b = e.do(t, "GET", "/v1/sessions/ses_00000000000000000000000000000000", bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "session_not_found")
	status, b = e.do(t, "GET", "/v1/sessions/whatever", bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "session_not_found")

	// unique_name is unique among open sessions.
	dup := pair(carol, dave)
	dup.UniqueName = "booking-1"
	status, b = e.do(t, "POST", "/v1/sessions", bootToken, dup)
	wantError(t, status, b, http.StatusConflict, "unique_name_in_use")

	// Default mode and TTL (24h); expires_at given explicitly.
	d := e.createSession(t, carol, dave)
	if d.Mode != "voice+sms" || !d.ExpiresAt.Equal(epoch.Add(24*time.Hour)) {
		t.Errorf("defaults: mode %q, expires_at %v", d.Mode, d.ExpiresAt)
	}
	at := epoch.Add(90 * time.Minute)
	withExp := pair("+15550200020", "+15550200021")
	withExp.ExpiresAt = &at
	var s3 Session
	e.mustDo(t, http.StatusCreated, "POST", "/v1/sessions", withExp, &s3)
	if !s3.ExpiresAt.Equal(at) {
		t.Errorf("expires_at %v, want %v", s3.ExpiresAt, at)
	}

	// Asking for a proxy number: one a participant holds is not free, an
	// unknown one is not found.
	ask := pair(alice, "+15550200099")
	ask.ProxyNumber = s.ProxyNumber
	status, b = e.do(t, "POST", "/v1/sessions", bootToken, ask)
	wantError(t, status, b, http.StatusConflict, "proxy_not_free")
	ask.ProxyNumber = proxy3
	status, b = e.do(t, "POST", "/v1/sessions", bootToken, ask)
	wantError(t, status, b, http.StatusNotFound, "number_not_found")

	// Expiry: past expires_at the session reads as closed (expired) and
	// its unique_name is free again.
	e.clock.Advance(time.Hour)
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID, nil, &got)
	if got.State != "closed" || got.CloseReason != "expired" || got.ClosedAt == nil {
		t.Errorf("expired session %+v", got)
	}
	again := pair("+15550200010", "+15550200011")
	again.UniqueName = "booking-1"
	e.mustDo(t, http.StatusCreated, "POST", "/v1/sessions", again, nil)
	checkConsistent(t, e)
}

func TestSessionCreateTimesAndNames(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	// expires_at with an offset is the same instant, answered in UTC.
	body := `{"participants":[{"number":"` + alice + `"},{"number":"` + bob + `"}],` +
		`"expires_at":"2030-01-02T05:04:05+01:00","unique_name":"market/booking 1"}`
	status, b := e.do(t, "POST", "/v1/sessions", bootToken, body)
	if status != http.StatusCreated {
		t.Fatalf("status %d; body %s", status, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if got := raw["expires_at"]; got != "2030-01-02T04:04:05Z" {
		t.Errorf("expires_at = %v, want 2030-01-02T04:04:05Z", got)
	}
	// A unique_name with a slash and a space is stored, found and
	// consistent.
	var list SessionList
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions?unique_name="+url.QueryEscape("market/booking 1"), nil, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].UniqueName != "market/booking 1" {
		t.Errorf("by unique_name: %+v", list.Sessions)
	}
	checkConsistent(t, e)
}

func TestSessionReservedNumber(t *testing.T) {
	e := newAPI(t)
	e.mustDo(t, http.StatusCreated, "POST", "/v1/numbers", AddNumberRequest{Number: proxy1, Carrier: "carrier1", Reserved: true}, nil)
	// The allocator never picks a reserved number...
	status, b := e.do(t, "POST", "/v1/sessions", bootToken, pair(alice, bob))
	wantError(t, status, b, http.StatusConflict, "pool_exhausted")
	// ...but a session may ask for it.
	req := pair(alice, bob)
	req.ProxyNumber = proxy1
	var s Session
	e.mustDo(t, http.StatusCreated, "POST", "/v1/sessions", req, &s)
	if s.ProxyNumber != proxy1 {
		t.Errorf("proxy_number %s, want %s", s.ProxyNumber, proxy1)
	}
	// A number that cannot carry the mode is refused.
	e.mustDo(t, http.StatusCreated, "POST", "/v1/numbers", AddNumberRequest{Number: proxy2, Carrier: "carrier1", Capabilities: []string{"sms"}}, nil)
	req = pair(carol, dave)
	req.ProxyNumber = proxy2
	req.Mode = "voice"
	status, b = e.do(t, "POST", "/v1/sessions", bootToken, req)
	wantError(t, status, b, http.StatusBadRequest, "invalid_request")
	checkConsistent(t, e)
}

func TestEmptyListsAreArrays(t *testing.T) {
	e := newAPI(t)
	for _, c := range []struct{ path, field string }{
		{"/v1/tokens", "tokens"},
		{"/v1/numbers", "numbers"},
		{"/v1/routes", "routes"},
		{"/v1/sessions", "sessions"},
		{"/v1/sessions?state=open", "sessions"},
	} {
		status, b := e.do(t, "GET", c.path, bootToken, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: status %d; body %s", c.path, status, b)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(strings.Fields(string(raw[c.field])), ""); got != "[]" {
			t.Errorf("GET %s: %s = %s, want []", c.path, c.field, raw[c.field])
		}
		if _, ok := raw["next_cursor"]; ok {
			t.Errorf("GET %s: next_cursor on the last page: %s", c.path, b)
		}
	}
}

func TestSessionCreateValidation(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	past := epoch.Add(-time.Second)
	future := epoch.Add(time.Hour)
	far := epoch.Add(2 * 365 * 24 * time.Hour)
	type req = CreateSessionRequest
	parts := func(nums ...string) []Participant {
		var out []Participant
		for _, n := range nums {
			out = append(out, Participant{Number: n})
		}
		return out
	}
	cases := []struct {
		name string
		req  any
	}{
		{"no participants", req{}},
		{"one participant", req{Participants: parts(alice)}},
		{"three participants", req{Participants: parts(alice, bob, carol)}},
		{"same participant twice", req{Participants: parts(alice, alice)}},
		{"participant is a proxy number", req{Participants: parts(alice, proxy1)}},
		{"bad mode", req{Participants: parts(alice, bob), Mode: "video"}},
		{"mode with other case", req{Participants: parts(alice, bob), Mode: "Voice"}},
		{"ttl and expires_at", req{Participants: parts(alice, bob), TTLSeconds: 60, ExpiresAt: &future}},
		{"negative ttl", req{Participants: parts(alice, bob), TTLSeconds: -1}},
		{"ttl over the maximum", req{Participants: parts(alice, bob), TTLSeconds: 2 * 365 * 24 * 3600}},
		{"ttl overflowing a duration", req{Participants: parts(alice, bob), TTLSeconds: 1 << 62}},
		{"expires_at in the past", req{Participants: parts(alice, bob), ExpiresAt: &past}},
		{"expires_at now", req{Participants: parts(alice, bob), ExpiresAt: &epoch}},
		{"expires_at too far", req{Participants: parts(alice, bob), ExpiresAt: &far}},
		{"unique_name too long", req{Participants: parts(alice, bob), UniqueName: strings.Repeat("u", 129)}},
		{"unique_name with control character", req{Participants: parts(alice, bob), UniqueName: "a\nb"}},
		{"bad proxy_number", req{Participants: parts(alice, bob), ProxyNumber: "15550100001"}},
		{"participant without number", `{"participants":[{},{"number":"` + bob + `"}]}`},
		{"null body", `null`},
	}
	for _, c := range badE164 {
		cases = append(cases,
			struct {
				name string
				req  any
			}{"first participant " + c.name, req{Participants: parts(c.number, bob)}},
			struct {
				name string
				req  any
			}{"second participant " + c.name, req{Participants: parts(alice, c.number)}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := e.do(t, "POST", "/v1/sessions", bootToken, c.req)
			eb := wantError(t, status, b, http.StatusBadRequest, "invalid_request")
			if strings.Contains(eb.Error.Message, "admin.") || strings.Contains(eb.Error.Message, "routing.") {
				t.Errorf("message names Go identifiers: %q", eb.Error.Message)
			}
		})
	}
	// Bad fields of the wrong JSON type.
	for _, body := range []string{
		`{"participants":[{"number":15550200001},{"number":"` + bob + `"}]}`,
		`{"participants":[],"ttl_seconds":"60"}`,
		`{"participants":[],"ttl_seconds":1.5}`,
		`{"participants":[],"expires_at":"tomorrow"}`,
		`{"participants":[],"record":"yes"}`,
		`{"participants":[{"number":"` + alice + `","extra":1}]}`,
	} {
		status, b := e.do(t, "POST", "/v1/sessions", bootToken, body)
		if status != http.StatusBadRequest {
			t.Errorf("%s: status %d; body %s", body, status, b)
		}
	}
	var list SessionList
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions", nil, &list)
	if len(list.Sessions) != 0 {
		t.Errorf("invalid requests created sessions: %+v", list.Sessions)
	}
	checkConsistent(t, e)
}

func TestSessionList(t *testing.T) {
	e := newAPI(t)
	// alice with five others needs five proxy numbers.
	for i := 1; i <= 5; i++ {
		e.addNumber(t, fmt.Sprintf("+1555010000%d", i))
	}
	var aliceIDs, allIDs []string
	for i := 1; i <= 5; i++ {
		req := pair(alice, fmt.Sprintf("+1555030000%d", i))
		req.UniqueName = fmt.Sprintf("booking-%d", i)
		var s Session
		e.mustDo(t, http.StatusCreated, "POST", "/v1/sessions", req, &s)
		aliceIDs = append(aliceIDs, s.ID)
		e.clock.Advance(time.Millisecond)
	}
	other := e.createSession(t, bob, carol)
	allIDs = append(slices.Clone(aliceIDs), other.ID)
	slices.Sort(aliceIDs)
	slices.Sort(allIDs)
	// Close one of alice's.
	closedID := aliceIDs[2]
	e.mustDo(t, http.StatusOK, "POST", "/v1/sessions/"+closedID+"/close", nil, nil)
	openAlice := slices.DeleteFunc(slices.Clone(aliceIDs), func(id string) bool { return id == closedID })
	openAll := slices.DeleteFunc(slices.Clone(allIDs), func(id string) bool { return id == closedID })

	q := url.QueryEscape
	cases := []struct {
		name  string
		query string
		want  []string
	}{
		{"all", "", allIDs},
		{"open", "state=open", openAll},
		{"closed", "state=closed", []string{closedID}},
		{"participant", "participant=" + q(alice), aliceIDs},
		{"open participant", "state=open&participant=" + q(alice), openAlice},
		{"closed participant", "state=closed&participant=" + q(alice), []string{closedID}},
		{"other participant", "participant=" + q(carol), []string{other.ID}},
		{"unknown participant", "participant=" + q(dave), nil},
		{"unique_name", "unique_name=booking-2", []string{aliceIDs[1]}},
		{"open unique_name", "state=open&unique_name=booking-2", []string{aliceIDs[1]}},
		{"open unique_name of a closed session", "state=open&unique_name=booking-3", nil},
		{"proxy_number", "proxy_number=" + q(other.ProxyNumber), sessionsOn(t, e, other.ProxyNumber)},
		// An unescaped "+" arrives as a space; the API reads it back.
		{"participant with a raw plus", "participant=" + alice, aliceIDs},
		{"open participant with a raw plus", "state=open&participant=" + alice, openAlice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One page with the default limit.
			var page SessionList
			e.mustDo(t, http.StatusOK, "GET", "/v1/sessions?"+c.query, nil, &page)
			if got := ids(page.Sessions); !slices.Equal(got, c.want) || page.NextCursor != "" {
				t.Errorf("one page: %v (next %q), want %v", got, page.NextCursor, c.want)
			}
			// Pages of 2, following next_cursor.
			for _, limit := range []int{1, 2, 5} {
				var got []string
				cursor, pages := "", 0
				for {
					path := fmt.Sprintf("/v1/sessions?%s&limit=%d", c.query, limit)
					if cursor != "" {
						path += "&cursor=" + q(cursor)
					}
					var page SessionList
					e.mustDo(t, http.StatusOK, "GET", path, nil, &page)
					if len(page.Sessions) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(page.Sessions))
					}
					got = append(got, ids(page.Sessions)...)
					pages++
					if page.NextCursor == "" || pages > 10 {
						break
					}
					cursor = page.NextCursor
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("limit %d: paged %v, want %v", limit, got, c.want)
				}
				if wantPages := max(1, (len(c.want)+limit-1)/limit); pages != wantPages {
					t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
				}
			}
		})
	}

	// Sessions in a list have the same shape as from GET.
	var one Session
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+other.ID, nil, &one)
	listed := e.listSessions(t, "participant="+q(bob))
	if len(listed) != 1 || listed[0].ID != one.ID || listed[0].ProxyNumber != one.ProxyNumber ||
		!listed[0].ExpiresAt.Equal(one.ExpiresAt) || !slices.Equal(listed[0].Participants, one.Participants) {
		t.Errorf("listed %+v, got %+v", listed, one)
	}

	// Bad queries.
	for _, c := range []struct {
		query, code string
	}{
		{"foo=bar", "unknown_parameter"},
		{"State=open", "unknown_parameter"},
		{"limit=0", "invalid_request"},
		{"limit=-1", "invalid_request"},
		{"limit=1001", "invalid_request"},
		{"limit=x", "invalid_request"},
		{"limit=1.5", "invalid_request"},
		{"state=expired", "invalid_request"},
		{"state=OPEN", "invalid_request"},
		{"participant=15550200001", "invalid_request"},
		{"participant=" + q("+1555abc"), "invalid_request"},
		{"proxy_number=nope", "invalid_request"},
	} {
		t.Run(c.query, func(t *testing.T) {
			status, b := e.do(t, "GET", "/v1/sessions?"+c.query, bootToken, nil)
			wantError(t, status, b, http.StatusBadRequest, c.code)
		})
	}
	// Edge limits are accepted.
	for _, l := range []string{"1", "1000"} {
		e.mustDo(t, http.StatusOK, "GET", "/v1/sessions?limit="+l, nil, nil)
	}
}

func sessionsOn(tb testing.TB, e *apiEnv, proxy string) []string {
	tb.Helper()
	var out []string
	for _, s := range e.listSessions(tb, "") {
		if s.ProxyNumber == proxy {
			out = append(out, s.ID)
		}
	}
	return out
}

func ids(list []Session) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

func TestSessionClose(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	s := e.createSession(t, alice, bob)
	e.clock.Advance(time.Minute)

	var closed Session
	e.mustDo(t, http.StatusOK, "POST", "/v1/sessions/"+s.ID+"/close", nil, &closed)
	if closed.ID != s.ID || closed.State != "closed" || closed.CloseReason != "closed" ||
		closed.ClosedAt == nil || !closed.ClosedAt.Equal(epoch.Add(time.Minute)) {
		t.Errorf("closed session %+v", closed)
	}
	e.clock.Advance(time.Minute)
	var again Session
	e.mustDo(t, http.StatusOK, "POST", "/v1/sessions/"+s.ID+"/close", nil, &again)
	if again.State != "closed" || again.ClosedAt == nil || !again.ClosedAt.Equal(*closed.ClosedAt) || again.CloseReason != "closed" {
		t.Errorf("closing twice changed the session: %+v, then %+v", closed, again)
	}
	var got Session
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID, nil, &got)
	if got.State != "closed" {
		t.Errorf("GET after close: %+v", got)
	}
	var n Number
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers/"+proxy1, nil, &n)
	if n.OpenSessions != 0 {
		t.Errorf("open_sessions after close = %d", n.OpenSessions)
	}

	status, b := e.do(t, "POST", "/v1/sessions/ses_unknown/close", bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "session_not_found")

	// close takes no body.
	s2 := e.createSession(t, alice, bob)
	status, b = e.do(t, "POST", "/v1/sessions/"+s2.ID+"/close", bootToken, `{}`)
	wantError(t, status, b, http.StatusBadRequest, "invalid_request")
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s2.ID, nil, &got)
	if got.State != "open" {
		t.Errorf("a refused close closed the session: %+v", got)
	}
	checkConsistent(t, e)

	text := e.scrape(t)
	if got := metricValue(t, text, `veil_sessions_closed_total{reason="closed"}`); got != 1 {
		t.Errorf(`veil_sessions_closed_total{reason="closed"} = %v, want 1`, got)
	}
}

func TestSessionInteractions(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	s := e.createSession(t, alice, bob)
	status, b := e.do(t, "GET", "/v1/sessions/"+s.ID+"/interactions", bootToken, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d; body %s", status, b)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(raw["interactions"])), ""); got != "[]" {
		t.Errorf(`interactions = %s, want [] (not null)`, raw["interactions"])
	}
	status, b = e.do(t, "GET", "/v1/sessions/ses_unknown/interactions", bootToken, nil)
	wantError(t, status, b, http.StatusNotFound, "session_not_found")
	// A closed session still has its (empty) history.
	e.mustDo(t, http.StatusOK, "POST", "/v1/sessions/"+s.ID+"/close", nil, nil)
	var list InteractionList
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID+"/interactions", nil, &list)
	if list.Interactions == nil || len(list.Interactions) != 0 {
		t.Errorf("interactions of a closed session: %#v", list.Interactions)
	}

	// Recorded calls are listed, oldest first, each with its record;
	// other sessions' calls and out-of-session calls are not.
	other := e.createSession(t, carol, dave)
	for _, c := range []*routing.CallRecord{
		testCall("call_late", s.ID, epoch.Add(2*time.Minute)),
		testCall("call_other", other.ID, epoch.Add(time.Minute)),
		testCall("call_early", s.ID, epoch.Add(time.Minute)),
		testCall("call_oos", "", epoch),
	} {
		if err := e.rt.RecordCall(t.Context(), c); err != nil {
			t.Fatalf("RecordCall(%s): %v", c.ID, err)
		}
	}
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID+"/interactions", nil, &list)
	var got []string
	for _, it := range list.Interactions {
		got = append(got, it.ID)
		if it.Kind != "call" || it.SessionID != s.ID || it.Call == nil || it.Call.ID != it.ID || !it.CreatedAt.Equal(it.Call.StartedAt) {
			t.Errorf("interaction %+v (call %+v)", it, it.Call)
		}
	}
	if !slices.Equal(got, []string{"call_early", "call_late"}) {
		t.Errorf("interactions = %v, want [call_early call_late]", got)
	}
	var one CallRecord
	e.mustDo(t, http.StatusOK, "GET", "/v1/calls/call_early", nil, &one)
	if len(list.Interactions) > 0 && !reflect.DeepEqual(list.Interactions[0].Call, &one) {
		t.Errorf("listed call %+v, GET /v1/calls gives %+v", list.Interactions[0].Call, one)
	}
	// A reviewer reads calls, not the interactions listing.
	reviewer := e.createToken(t, RoleReviewer)
	status, b = e.do(t, "GET", "/v1/sessions/"+s.ID+"/interactions", reviewer.Token, nil)
	wantError(t, status, b, http.StatusForbidden, "forbidden")
}

// testCall is an answered call from alice to bob through proxy1.
func testCall(id, sessionID string, start time.Time) *routing.CallRecord {
	answered := start.Add(4 * time.Second)
	return &routing.CallRecord{
		ID: id, SessionID: sessionID, Proxy: proxy1, From: alice, To: bob,
		Attempts: []routing.CallAttempt{{Carrier: "carrier2", Status: 503}, {Carrier: "carrier1", Status: 200}},
		Status:   200, StartedAt: start, AnsweredAt: &answered, EndedAt: answered.Add(45 * time.Second),
		PostDialDelayMS: 2500, EndReason: "callee_hangup",
		Media: &routing.CallMedia{
			CallerToCallee: routing.MediaDirection{Packets: 2250, Bytes: 387000, Lost: 3, Jitter: 20},
			CalleeToCaller: routing.MediaDirection{Packets: 2249, Bytes: 386828},
		},
	}
}

func TestGetCall(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	s := e.createSession(t, alice, bob)
	if err := e.rt.RecordCall(t.Context(), testCall("call_1", s.ID, epoch)); err != nil {
		t.Fatal(err)
	}
	oos := &routing.CallRecord{ID: "call_oos", Proxy: proxy1, From: carol, To: "+18005550100", Fallback: true,
		Status: 486, StartedAt: epoch, EndedAt: epoch.Add(time.Second), EndReason: "busy"}
	if err := e.rt.RecordCall(t.Context(), oos); err != nil {
		t.Fatal(err)
	}

	var got CallRecord
	e.mustDo(t, http.StatusOK, "GET", "/v1/calls/call_1", nil, &got)
	answered := epoch.Add(4 * time.Second)
	want := CallRecord{
		ID: "call_1", SessionID: s.ID, Proxy: proxy1, From: "+1***001", To: "+1***002",
		Attempts: []CallAttempt{{Carrier: "carrier2", Status: 503}, {Carrier: "carrier1", Status: 200}},
		Status:   200, StartedAt: epoch, AnsweredAt: &answered, EndedAt: answered.Add(45 * time.Second),
		DurationMS: 45000, PostDialDelayMS: 2500, EndReason: "callee_hangup",
		Media: &CallMedia{
			CallerToCallee: MediaDirection{Packets: 2250, Bytes: 387000, Lost: 3, Jitter: 20},
			CalleeToCaller: MediaDirection{Packets: 2249, Bytes: 386828},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /v1/calls/call_1 =\n%+v\nwant\n%+v", got, want)
	}

	// The wire form: snake_case, masked numbers only, absent optional
	// fields left out.
	status, b := e.do(t, "GET", "/v1/calls/call_oos", bootToken, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d; body %s", status, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"from": "+1***003", "to": "+1***100", "fallback": true, "status": 486.0, "duration_ms": 0.0, "end_reason": "busy"} {
		if raw[k] != v {
			t.Errorf("%s = %v, want %v; body %s", k, raw[k], v, b)
		}
	}
	if a, ok := raw["attempts"].([]any); !ok || len(a) != 0 {
		t.Errorf("attempts = %v, want []", raw["attempts"])
	}
	for _, k := range []string{"session_id", "answered_at", "media", "post_dial_delay_ms"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s present in %s", k, b)
		}
	}
	for _, full := range []string{alice, bob, carol, "+18005550100"} {
		for _, path := range []string{"/v1/calls/call_1", "/v1/calls/call_oos"} {
			if _, b := e.do(t, "GET", path, bootToken, nil); strings.Contains(string(b), full) {
				t.Errorf("GET %s shows the full number %s: %s", path, full, b)
			}
		}
	}

	// Roles: admin and reviewer read calls; no token is 401.
	reviewer := e.createToken(t, RoleReviewer)
	admin := e.createToken(t, RoleAdmin)
	for _, tok := range []string{reviewer.Token, admin.Token} {
		if status, b := e.do(t, "GET", "/v1/calls/call_1", tok, nil); status != http.StatusOK {
			t.Errorf("status %d; body %s", status, b)
		}
	}
	status, b = e.do(t, "GET", "/v1/calls/call_1", "", nil)
	wantError(t, status, b, http.StatusUnauthorized, "unauthorized")

	// Unknown ids, including ones that cannot be call ids, are 404.
	for _, id := range []string{"call_404", url.PathEscape("a/b"), strings.Repeat("x", 65), "%00"} {
		status, b := e.do(t, "GET", "/v1/calls/"+id, reviewer.Token, nil)
		wantError(t, status, b, http.StatusNotFound, "call_not_found")
	}
	status, b = e.do(t, "DELETE", "/v1/calls/call_1", bootToken, nil)
	wantError(t, status, b, http.StatusMethodNotAllowed, "method_not_allowed")
	e.mustDo(t, http.StatusOK, "GET", "/v1/calls/call_1", nil, nil)
	if !strings.Contains(e.logs.String(), "call record read") {
		t.Errorf("no log line for the call reads")
	}
}

// --- pool exhaustion and consistency ---

// checkConsistent fails the test if routing.Check finds a problem.
func checkConsistent(tb testing.TB, e *apiEnv) {
	tb.Helper()
	problems, err := routing.Check(e.db)
	if err != nil {
		tb.Fatalf("routing.Check: %v", err)
	}
	for _, p := range problems {
		tb.Errorf("routing.Check: %s", p)
	}
}

// snapshot is what a failed create must leave unchanged.
type snapshot struct {
	openSessions, allSessions, numbers string
}

func takeSnapshot(tb testing.TB, e *apiEnv) snapshot {
	tb.Helper()
	get := func(path string) string {
		status, b := e.do(tb, "GET", path, bootToken, nil)
		if status != http.StatusOK {
			tb.Fatalf("GET %s: status %d; body %s", path, status, b)
		}
		return string(b)
	}
	return snapshot{get("/v1/sessions?state=open"), get("/v1/sessions"), get("/v1/numbers")}
}

func TestPoolExhaustedLeavesNoPartialState(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	e.addNumber(t, proxy2)
	var proxies []string
	for range 2 {
		proxies = append(proxies, e.createSession(t, alice, bob).ProxyNumber)
	}
	slices.Sort(proxies)
	if !slices.Equal(proxies, []string{proxy1, proxy2}) {
		t.Fatalf("the pair's two sessions use %v, want one on each number", proxies)
	}
	before := takeSnapshot(t, e)
	exhaustedBefore := metricValue(t, e.scrape(t), "veil_pool_exhausted_total")

	for i, req := range []CreateSessionRequest{
		pair(alice, bob),
		pair(bob, alice),
		pair(alice, carol), // alice holds both numbers
		func() CreateSessionRequest { r := pair(carol, bob); r.UniqueName = "must-not-stick"; return r }(),
	} {
		status, b := e.do(t, "POST", "/v1/sessions", bootToken, req)
		wantError(t, status, b, http.StatusConflict, "pool_exhausted")
		if after := takeSnapshot(t, e); after != before {
			t.Fatalf("create %d: state changed after pool_exhausted:\nbefore %+v\nafter  %+v", i, before, after)
		}
		checkConsistent(t, e)
		if got := metricValue(t, e.scrape(t), "veil_pool_exhausted_total"); got != exhaustedBefore+float64(i+1) {
			t.Errorf("veil_pool_exhausted_total = %v, want %v", got, exhaustedBefore+float64(i+1))
		}
	}
	var list NumberList
	e.mustDo(t, http.StatusOK, "GET", "/v1/numbers", nil, &list)
	for _, n := range list.Numbers {
		if n.OpenSessions != 1 {
			t.Errorf("number %s: open_sessions %d, want 1", n.Number, n.OpenSessions)
		}
	}
	if got := len(e.listSessions(t, "state=open")); got != 2 {
		t.Errorf("open sessions = %d, want 2", got)
	}
	// The unique_name of the refused create was not kept: carol and dave
	// hold no number, so they get one under that name.
	ok := pair(carol, dave)
	ok.UniqueName = "must-not-stick"
	e.mustDo(t, http.StatusCreated, "POST", "/v1/sessions", ok, nil)
	checkConsistent(t, e)
}

func TestConcurrentCreatesOnePair(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	e.addNumber(t, proxy2)
	const n = 16
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Errors are reported after the join: Fatal must not be
			// called from these goroutines.
			req, _ := http.NewRequest("POST", e.ts.URL+"/v1/sessions", strings.NewReader(
				`{"participants":[{"number":"`+alice+`"},{"number":"`+bob+`"}]}`))
			req.Header.Set("Authorization", "Bearer "+bootToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.client.Do(req)
			if err != nil {
				bodies[i] = []byte(err.Error())
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			var eb ErrorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			bodies[i] = []byte(eb.Error.Code)
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		switch {
		case statuses[i] == http.StatusCreated:
			created++
		case statuses[i] == http.StatusConflict && string(bodies[i]) == "pool_exhausted":
		default:
			t.Errorf("request %d: status %d, %s", i, statuses[i], bodies[i])
		}
	}
	if created != 2 {
		t.Errorf("%d sessions created for one pair on two numbers, want 2", created)
	}
	if got := len(e.listSessions(t, "state=open")); got != 2 {
		t.Errorf("open sessions = %d, want 2", got)
	}
	checkConsistent(t, e)
}

// --- internal errors ---

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	s := e.createSession(t, alice, bob)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/sessions", nil},
		{"GET", "/v1/sessions?state=closed", nil},
		{"POST", "/v1/sessions/" + s.ID + "/close", nil},
		{"POST", "/v1/sessions", pair(carol, dave)},
		{"POST", "/v1/routes", RouteRequest{Prefix: "+1", Carriers: []string{"carrier1"}}},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			status, b := e.do(t, c.method, c.path, bootToken, c.body)
			eb := wantError(t, status, b, http.StatusInternalServerError, "internal")
			msg := strings.ToLower(eb.Error.Message)
			for _, leak := range []string{"pebble", "store", "closed", "/", "sess", ".go", "goroutine"} {
				if strings.Contains(msg, leak) {
					t.Errorf("500 message leaks %q: %q", leak, eb.Error.Message)
				}
			}
			// The detail is logged under the request id the caller sees.
			_, reqID, ok := strings.Cut(eb.Error.Message, "request ")
			reqID = strings.TrimSuffix(reqID, ")")
			if !ok || reqID == "" {
				t.Fatalf("500 message has no request id: %q", eb.Error.Message)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "request_id="+reqID) {
				t.Errorf("request id %s not in the logs:\n%s", reqID, logs)
			}
		})
	}
}

// TestJSONKeysExact: keys must match exactly once; case-folded or repeated
// keys are refused so no two readers of a body can disagree about it.
func TestJSONKeysExact(t *testing.T) {
	a := newAPI(t)
	for _, body := range []string{
		`{"ROLE":"admin"}`,
		`{"role":"reviewer","Role":"admin"}`,
		`{"role":"reviewer","role":"admin"}`,
	} {
		status, resp := a.do(t, "POST", "/v1/tokens", bootToken, body)
		if status != 400 {
			t.Errorf("POST /v1/tokens %s = %d %s, want 400", body, status, resp)
		}
	}
	status, resp := a.do(t, "POST", "/v1/sessions", bootToken, `{"participants":[{"number":"+15550100101","Number":"+15550100109"},{"number":"+15550100102"}]}`)
	if status != 400 || !strings.Contains(string(resp), "participants[0].Number") {
		t.Errorf("nested case-folded key = %d %s, want 400 naming participants[0].Number", status, resp)
	}
}

// TestHostileInputAnswers: answers found by a break-it pass stay fixed.
func TestHostileInputAnswers(t *testing.T) {
	a := newAPI(t)
	a.mustDo(t, 201, "POST", "/v1/numbers", map[string]any{"number": "+15550100001", "carrier": "carrier1"}, nil)
	session := func(extra string) string {
		return `{"participants":[{"number":"+15550100101"},{"number":"+15550100102"}]` + extra + `}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		mustNotContain           string
	}{
		{"zero expires_at", "POST", "/v1/sessions", session(`,"expires_at":"0001-01-01T00:00:00Z"`), 400, "invalid_request", ""},
		{"zero expires_at with ttl", "POST", "/v1/sessions", session(`,"expires_at":"0001-01-01T01:00:00+01:00","ttl_seconds":60`), 400, "invalid_request", ""},
		{"expires_at not RFC 3339", "POST", "/v1/sessions", session(`,"expires_at":"tomorrow"`), 400, "invalid_json", "2006"},
		{"wrong type names JSON types", "POST", "/v1/sessions", `{"participants":"x"}`, 400, "invalid_json", "admin."},
		{"lone surrogate in unique_name", "POST", "/v1/sessions", session(`,"unique_name":"\ud800"`), 400, "invalid_request", ""},
		{"control character in token name", "POST", "/v1/tokens", `{"role":"reviewer","name":"a\u0000b"}`, 400, "invalid_request", ""},
		{"route prefix +0", "POST", "/v1/routes", `{"prefix":"+0","carriers":["carrier1"]}`, 400, "invalid_request", ""},
		{"unknown parameter on tokens", "GET", "/v1/tokens?x=1", "", 400, "unknown_parameter", ""},
		{"dot-dot path", "GET", "/v1/sessions/../numbers", "", 404, "not_found", ""},
		{"double slash path", "GET", "/v1//sessions", "", 404, "not_found", ""},
		{"very long token id", "DELETE", "/v1/tokens/" + strings.Repeat("x", 8000), "", 404, "not_found", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			status, resp := a.do(t, c.method, c.path, bootToken, body)
			wantError(t, status, resp, c.status, c.code)
			if c.mustNotContain != "" && strings.Contains(string(resp), c.mustNotContain) {
				t.Errorf("answer leaks %q: %s", c.mustNotContain, resp)
			}
		})
	}
	t.Run("declared length over the limit", func(t *testing.T) {
		req, err := http.NewRequest("POST", a.ts.URL+"/v1/sessions", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 5 << 20
		req.Header.Set("Authorization", "Bearer "+bootToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.client.Do(req)
		if err == nil { // the server may also close before the client finishes
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			wantError(t, resp.StatusCode, b, 413, "body_too_large")
		}
	})
	t.Run("charset other than utf-8", func(t *testing.T) {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+bootToken)
		h.Set("Content-Type", "application/json; charset=latin1")
		resp, b := a.request(t, "POST", "/v1/tokens", h, strings.NewReader(`{"role":"reviewer"}`))
		wantError(t, resp.StatusCode, b, 415, "unsupported_media_type")
	})
}

// TestNumberUpdate: reserving a number retires it from allocation while
// its open sessions keep it; the fallback can be set and removed.
func TestNumberUpdate(t *testing.T) {
	e := newAPI(t)
	e.mustDo(t, 201, "POST", "/v1/numbers", map[string]any{"number": proxy1, "carrier": "carrier1"}, nil)
	var sess Session
	e.mustDo(t, 201, "POST", "/v1/sessions", map[string]any{"participants": []Participant{{alice}, {bob}}}, &sess)
	var n Number
	e.mustDo(t, 200, "PATCH", "/v1/numbers/"+proxy1, map[string]any{"reserved": true, "fallback_number": "+442079460000"}, &n)
	if !n.Reserved || n.FallbackNumber != "+442079460000" || n.OpenSessions != 1 {
		t.Fatalf("after PATCH: %+v", n)
	}
	// Retired: no new session gets it, the open one keeps it.
	status, body := e.do(t, "POST", "/v1/sessions", bootToken, map[string]any{"participants": []Participant{{carol}, {dave}}})
	wantError(t, status, body, 409, "pool_exhausted")
	var got Session
	e.mustDo(t, 200, "GET", "/v1/sessions/"+sess.ID, nil, &got)
	if got.State != "open" || got.ProxyNumber != proxy1 {
		t.Fatalf("open session after reserve: %+v", got)
	}
	// Only given fields change.
	n = Number{}
	e.mustDo(t, 200, "PATCH", "/v1/numbers/"+proxy1, map[string]any{"fallback_number": ""}, &n)
	if !n.Reserved || n.FallbackNumber != "" {
		t.Fatalf("after clearing fallback: %+v", n)
	}
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"fallback_number":"12"}`, 400, "invalid_request"},
		{`{"fallback_number":"` + proxy1 + `"}`, 400, "invalid_request"},
		{`{"carrier":"carrier2"}`, 400, "unknown_field"},
		{`{"reserved":"yes"}`, 400, "invalid_json"},
	} {
		status, body := e.do(t, "PATCH", "/v1/numbers/"+proxy1, bootToken, c.body)
		wantError(t, status, body, c.status, c.code)
	}
	status, body = e.do(t, "PATCH", "/v1/numbers/"+proxy2, bootToken, `{"reserved":true}`)
	wantError(t, status, body, 404, "number_not_found")
}

// TestPprofAdminOnly: the profiler answers admin tokens only, with the
// API's JSON errors for everyone else.
func TestPprofAdminOnly(t *testing.T) {
	e := newAPI(t)
	reviewer := e.createToken(t, RoleReviewer)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
		resp, b := e.request(t, "GET", p, http.Header{}, nil)
		wantError(t, resp.StatusCode, b, http.StatusUnauthorized, "unauthorized")
		status, b := e.do(t, "GET", p, reviewer.Token, nil)
		wantError(t, status, b, http.StatusForbidden, "forbidden")
	}
	status, b := e.do(t, "GET", "/debug/pprof/heap?debug=1", bootToken, nil)
	if status != http.StatusOK || !strings.Contains(string(b), "heap profile") {
		t.Fatalf("heap profile as admin: status %d, body starts %.60q", status, b)
	}
}
