package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store/storetest"
)

// These tests keep openapi.json honest: it must be a valid document, list
// exactly the endpoints the server serves, declare the statuses the
// handlers return and the JSON properties they write, and mirror the
// request and response types of types.go.

const (
	openapiBootstrap = "veil_openapi_test_bootstrap"
	openapiBodyLimit = 16 << 10
)

// openapiMethods are the operation keys of an OpenAPI path item.
var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func openapiNewServer(t *testing.T) *Server {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := storetest.Open(t)
	rt, err := routing.New(db, routing.Options{Carriers: []string{"carrier1"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// A small body limit keeps the 413 case from outrunning the server's
	// discard of unread bodies (which would reset the connection).
	s, err := New(Options{Routing: rt, DB: db, BootstrapToken: openapiBootstrap, MaxBodyBytes: openapiBodyLimit, Logger: quiet, SMS: newFakeSMS(t, rt, db)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openapiLoad parses the embedded document.
func openapiLoad(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// openapiPointer follows a local JSON reference ("#/a/b").
func openapiPointer(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// openapiResolve follows $ref until it reaches a value that is not a
// reference (nil if a reference is dangling).
func openapiResolve(doc map[string]any, v any) map[string]any {
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m
		}
		if v, ok = openapiPointer(doc, ref); !ok {
			return nil
		}
	}
	return nil
}

// openapiOps returns the document's operations by "METHOD /path".
func openapiOps(doc map[string]any) map[string]map[string]any {
	ops := make(map[string]map[string]any)
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		im, _ := item.(map[string]any)
		for _, m := range openapiMethods {
			if op, ok := im[m].(map[string]any); ok {
				ops[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return ops
}

// openapiPattern turns a net/http pattern path into an OpenAPI path:
// "{name...}" becomes "{name}" and a trailing "{$}" is dropped.
func openapiPattern(p string) string {
	p = strings.TrimSuffix(p, "{$}")
	return strings.ReplaceAll(p, "...}", "}")
}

func openapiPathParams(path string) []string {
	var names []string
	for rest := path; ; {
		i := strings.Index(rest, "{")
		if i < 0 {
			return names
		}
		j := strings.Index(rest[i:], "}")
		if j < 0 {
			return names
		}
		names = append(names, rest[i+1:i+j])
		rest = rest[i+j+1:]
	}
}

func TestOpenAPIDocument(t *testing.T) {
	doc := openapiLoad(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] != "Veil admin API" || info["version"] != "1" {
		t.Errorf("info = %v, want title \"Veil admin API\" and version \"1\"", info)
	}

	// Every $ref resolves to an existing components entry.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, _ := ref.(string)
				if !strings.HasPrefix(s, "#/components/") {
					t.Errorf("%s: $ref %v does not point into #/components/", at, ref)
				} else if _, ok := openapiPointer(doc, s); !ok {
					t.Errorf("%s: $ref %s does not resolve", at, s)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")

	// Every operation has a unique operationId, responses, and exactly the
	// path parameters its path names.
	ids := make(map[string]string)
	for key, op := range openapiOps(doc) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", key, other, id)
		}
		ids[id] = key
		if r, _ := op["responses"].(map[string]any); len(r) == 0 {
			t.Errorf("%s: no responses", key)
		}
		var declared []string
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			pm := openapiResolve(doc, p)
			if pm == nil {
				t.Errorf("%s: unresolvable parameter %v", key, p)
				continue
			}
			if pm["in"] == "path" {
				declared = append(declared, pm["name"].(string))
				if pm["required"] != true {
					t.Errorf("%s: path parameter %v is not required: true", key, pm["name"])
				}
			}
		}
		want := openapiPathParams(strings.SplitN(key, " ", 2)[1])
		slices.Sort(declared)
		slices.Sort(want)
		if !slices.Equal(declared, want) {
			t.Errorf("%s: path parameters declared %v, path has %v", key, declared, want)
		}
	}
}

func TestOpenAPIMatchesEndpoints(t *testing.T) {
	doc := openapiLoad(t)
	s := openapiNewServer(t)
	ops := openapiOps(doc)

	served := map[string]*endpoint{"GET /metrics": nil} // promhttp, no auth
	for _, e := range s.endpoints() {
		served[e.method+" "+openapiPattern(e.pattern)] = &e
	}
	var notInDoc, notServed []string
	for k := range served {
		if ops[k] == nil {
			notInDoc = append(notInDoc, k)
		}
	}
	for k := range ops {
		if _, ok := served[k]; !ok {
			notServed = append(notServed, k)
		}
	}
	slices.Sort(notInDoc)
	slices.Sort(notServed)
	if len(notInDoc) > 0 || len(notServed) > 0 {
		t.Errorf("openapi.json and Server.endpoints() disagree:\n  served but missing from openapi.json: %v\n  in openapi.json but not served: %v",
			notInDoc, notServed)
	}

	// Security and the auth statuses follow each endpoint's roles.
	for k, e := range served {
		op := ops[k]
		if op == nil {
			continue
		}
		sec, hasSec := op["security"].([]any)
		public := e == nil || e.roles == nil
		if public != (hasSec && len(sec) == 0) {
			t.Errorf("%s: public=%v but security is %v (want security: [] exactly on unauthenticated endpoints)", k, public, op["security"])
		}
		resp, _ := op["responses"].(map[string]any)
		_, has401 := resp["401"]
		_, has403 := resp["403"]
		if has401 == public {
			t.Errorf("%s: public=%v but 401 declared=%v", k, public, has401)
		}
		reviewerForbidden := !public && !roleIn(RoleReviewer, e.roles)
		if has403 != reviewerForbidden {
			t.Errorf("%s: a reviewer token gets 403=%v but 403 declared=%v", k, reviewerForbidden, has403)
		}
	}
}

// openapiChecker checks live responses against the document.
type openapiChecker struct {
	t        *testing.T
	doc      map[string]any
	ops      map[string]map[string]any
	base     string
	codeDesc string          // ErrorDetail.code's description
	ok       map[string]bool // operations answered with a 2xx
}

type openapiReply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// do sends a request. tmpl is the OpenAPI path the request is for; path
// is the concrete (escaped) path and query. A nil body sends none; ctype
// "" means application/json when there is a body.
func (c *openapiChecker) do(method, tmpl, path, token, ctype, body string, wantStatus int) openapiReply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	r := openapiReply{status: res.StatusCode, header: res.Header}
	if r.body, err = io.ReadAll(res.Body); err != nil {
		c.t.Fatal(err)
	}
	where := fmt.Sprintf("%s %s", method, path)
	if r.status != wantStatus {
		c.t.Errorf("%s: status %d, want %d (script); body %s", where, r.status, wantStatus, r.body)
	}
	mt := strings.TrimSpace(strings.SplitN(res.Header.Get("Content-Type"), ";", 2)[0])
	if mt == "application/json" && len(r.body) > 0 {
		if err := json.Unmarshal(r.body, &r.json); err != nil {
			c.t.Errorf("%s: body is not a JSON object: %v", where, err)
		}
	}

	key := method + " " + tmpl
	op := c.ops[key]
	if op == nil {
		// Only a method the path does not serve may be undocumented.
		if r.status != http.StatusMethodNotAllowed {
			c.t.Errorf("%s: %s is not in openapi.json, yet the server answered %d", where, key, r.status)
			return r
		}
		if res.Header.Get("Allow") == "" {
			c.t.Errorf("%s: 405 without an Allow header", where)
		}
		c.checkError(where, r, openapiResolve(c.doc, map[string]any{"$ref": "#/components/responses/Error"}))
		return r
	}
	responses, _ := op["responses"].(map[string]any)
	declared, ok := responses[strconv.Itoa(r.status)]
	if !ok {
		c.t.Errorf("%s: the server answered %d, which openapi.json does not declare for %s (declared: %v)",
			where, r.status, key, slices.Sorted(maps.Keys(responses)))
		return r
	}
	resp := openapiResolve(c.doc, declared)
	if r.status >= 400 && key != "GET /healthz" { // a draining /healthz answers 503 with Health
		c.checkError(where, r, resp)
		return r
	}
	if r.status < 300 {
		c.ok[key] = true
	}
	content, _ := resp["content"].(map[string]any)
	if len(r.body) == 0 {
		if len(content) > 0 {
			c.t.Errorf("%s: %d with an empty body, but openapi.json declares content %v", where, r.status, slices.Sorted(maps.Keys(content)))
		}
		return r
	}
	media, _ := content[mt].(map[string]any)
	if media == nil {
		c.t.Errorf("%s: %d answered %s, which openapi.json does not declare (declared: %v)", where, r.status, mt, slices.Sorted(maps.Keys(content)))
		return r
	}
	if r.json != nil {
		c.checkValue(where, media["schema"], r.json)
	}
	return r
}

// checkValue checks that every property the server wrote is declared in
// the schema and every required one is present, through nested objects
// and array items. Schemas without properties are free-form.
func (c *openapiChecker) checkValue(where string, schema, v any) {
	c.t.Helper()
	s := openapiResolve(c.doc, schema)
	if s == nil {
		c.t.Errorf("%s: no schema", where)
		return
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			return
		}
		for k, x := range v {
			ps, ok := props[k]
			if !ok {
				c.t.Errorf("%s: the server returned property %q, which the schema does not declare (declared: %v)",
					where, k, slices.Sorted(maps.Keys(props)))
				continue
			}
			c.checkValue(where+"."+k, ps, x)
		}
		req, _ := s["required"].([]any)
		for _, k := range req {
			if _, ok := v[k.(string)]; !ok {
				c.t.Errorf("%s: required property %q missing from the server's answer", where, k)
			}
		}
	case []any:
		for i, x := range v {
			c.checkValue(fmt.Sprintf("%s[%d]", where, i), s["items"], x)
		}
	}
}

func (c *openapiChecker) checkError(where string, r openapiReply, resp map[string]any) {
	c.t.Helper()
	content, _ := resp["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil || r.json == nil {
		c.t.Errorf("%s: error %d: want a JSON body declared as application/json", where, r.status)
		return
	}
	schema, _ := media["schema"].(map[string]any)
	if ref, _ := schema["$ref"].(string); ref != "#/components/schemas/ErrorBody" {
		c.t.Errorf("%s: error %d is declared with schema %v, want ErrorBody", where, r.status, media["schema"])
	}
	c.checkValue(where, media["schema"], r.json)
	e, _ := r.json["error"].(map[string]any)
	code, _ := e["code"].(string)
	if code == "" || !strings.Contains(c.codeDesc, "`"+code+"`") {
		c.t.Errorf("%s: error code %q is not listed in ErrorDetail.code's description", where, code)
	}
}

func TestOpenAPIStatusesAndBodies(t *testing.T) {
	doc := openapiLoad(t)
	s := openapiNewServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	codeSchema, _ := openapiPointer(doc, "#/components/schemas/ErrorDetail/properties/code/description")
	codeDesc, _ := codeSchema.(string)
	c := &openapiChecker{t: t, doc: doc, ops: openapiOps(doc), base: ts.URL, codeDesc: codeDesc, ok: make(map[string]bool)}
	boot := openapiBootstrap
	const (
		num1 = "+447700900123"
		num2 = "+447700900124"
		a    = "+447700900001"
		b    = "+447700900002"
	)

	// Operations.
	c.do("GET", "/healthz", "/healthz", "", "", "", 200)
	r := c.do("GET", "/metrics", "/metrics", "", "", "", 200)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q, want text/plain", r.header.Get("Content-Type"))
	}
	r = c.do("GET", "/v1/openapi.json", "/v1/openapi.json", boot, "", "", 200)
	var served, embedded any
	json.Unmarshal(r.body, &served)
	json.Unmarshal(openapiDoc, &embedded)
	if !reflect.DeepEqual(served, embedded) {
		t.Errorf("GET /v1/openapi.json does not serve openapi.json")
	}
	c.do("GET", "/v1/openapi.json", "/v1/openapi.json", "", "", "", 401)

	// Tokens.
	c.do("GET", "/v1/tokens", "/v1/tokens", "", "", "", 401)
	c.do("GET", "/v1/tokens", "/v1/tokens", "veil_wrong", "", "", 401)
	r = c.do("POST", "/v1/tokens", "/v1/tokens", boot, "", `{"role":"admin","name":"billing-backend"}`, 201)
	adminID, _ := r.json["id"].(string)
	admin, _ := r.json["token"].(string)
	if admin == "" || adminID == "" {
		t.Fatalf("POST /v1/tokens: no id or token in %s", r.body)
	}
	r = c.do("POST", "/v1/tokens", "/v1/tokens", admin, "", `{"role":"reviewer"}`, 201)
	reviewerID, _ := r.json["id"].(string)
	reviewer, _ := r.json["token"].(string)
	c.do("POST", "/v1/tokens", "/v1/tokens", admin, "", `{"role":"root"}`, 400)
	c.do("POST", "/v1/tokens", "/v1/tokens", admin, "", `{"role":"admin","scope":"all"}`, 400)
	c.do("POST", "/v1/tokens", "/v1/tokens", admin, "", `{"role":`, 400)
	c.do("POST", "/v1/tokens", "/v1/tokens", admin, "text/plain", `{"role":"admin"}`, 415)
	c.do("POST", "/v1/tokens", "/v1/tokens", reviewer, "", `{"role":"admin"}`, 403)
	c.do("GET", "/v1/tokens", "/v1/tokens", reviewer, "", "", 403)
	c.do("GET", "/v1/openapi.json", "/v1/openapi.json", reviewer, "", "", 200)
	c.do("GET", "/v1/tokens", "/v1/tokens", admin, "", "", 200)
	c.do("PUT", "/v1/tokens", "/v1/tokens", admin, "", `{}`, 405)

	// Numbers.
	c.do("POST", "/v1/numbers", "/v1/numbers", admin, "",
		`{"number":"`+num1+`","carrier":"carrier1","capabilities":["voice","sms"],"fallback_number":"+442079460000"}`, 201)
	c.do("POST", "/v1/numbers", "/v1/numbers", admin, "", `{"number":"`+num2+`","carrier":"carrier1","reserved":true}`, 201)
	c.do("POST", "/v1/numbers", "/v1/numbers", admin, "", `{"number":"`+num1+`","carrier":"carrier1"}`, 409)
	c.do("POST", "/v1/numbers", "/v1/numbers", admin, "", `{"number":"07700900123","carrier":"carrier1"}`, 400)
	c.do("POST", "/v1/numbers", "/v1/numbers", admin, "", `{"number":"+447700900125","carrier":"nope"}`, 400)
	c.do("GET", "/v1/numbers", "/v1/numbers", admin, "", "", 200)
	c.do("GET", "/v1/numbers", "/v1/numbers?carrier=carrier1", admin, "", "", 400)
	c.do("GET", "/v1/numbers/{number}", "/v1/numbers/"+num1, admin, "", "", 200)
	c.do("GET", "/v1/numbers/{number}", "/v1/numbers/%2B"+num2[1:], admin, "", "", 200)
	c.do("GET", "/v1/numbers/{number}", "/v1/numbers/+15555550100", admin, "", "", 404)
	c.do("PATCH", "/v1/numbers/{number}", "/v1/numbers/"+num2, admin, "", `{"reserved":false,"fallback_number":""}`, 200)
	c.do("PATCH", "/v1/numbers/{number}", "/v1/numbers/"+num2, admin, "", `{"reserved":true}`, 200)
	c.do("PATCH", "/v1/numbers/{number}", "/v1/numbers/"+num2, admin, "", `{"fallback_number":"12"}`, 400)
	c.do("PATCH", "/v1/numbers/{number}", "/v1/numbers/+15555550100", admin, "", `{"reserved":true}`, 404)

	// Routes.
	c.do("POST", "/v1/routes", "/v1/routes", admin, "", `{"prefix":"+44","carriers":["carrier1"]}`, 201)
	c.do("POST", "/v1/routes", "/v1/routes", admin, "", `{"prefix":"+44","carriers":["carrier1"]}`, 201)
	c.do("POST", "/v1/routes", "/v1/routes", admin, "", `{"prefix":"44","carriers":["carrier1"]}`, 400)
	c.do("POST", "/v1/routes", "/v1/routes", admin, "", `{"prefix":"+1","carriers":[]}`, 400)
	c.do("GET", "/v1/routes", "/v1/routes", admin, "", "", 200)

	// Sessions.
	r = c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`"},{"number":"`+b+`"}],"mode":"voice+sms","record":true,"ttl_seconds":3600,"unique_name":"booking-1"}`, 201)
	sess1, _ := r.json["id"].(string)
	if sess1 == "" {
		t.Fatalf("POST /v1/sessions: no id in %s", r.body)
	}
	r = c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"+447700900003"},{"number":"+447700900004"}],"mode":"sms","expires_at":"`+time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	sess2, _ := r.json["id"].(string)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"+447700900005"},{"number":"+447700900006"}],"unique_name":"booking-1"}`, 409)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`"},{"number":"`+b+`"}]}`, 409) // only free number already held by the pair
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`"},{"number":"`+b+`"}],"proxy_number":"`+num1+`"}`, 409)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`"},{"number":"`+b+`"}],"proxy_number":"+15555550100"}`, 404)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`"}]}`, 400)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"participants":[{"number":"`+a+`","name":"Ann"},{"number":"`+b+`"}]}`, 400)
	c.do("POST", "/v1/sessions", "/v1/sessions", admin, "",
		`{"unique_name":"`+strings.Repeat("x", 2*openapiBodyLimit)+`"}`, 413)
	c.do("GET", "/v1/sessions/{id}", "/v1/sessions/"+sess1, admin, "", "", 200)
	c.do("GET", "/v1/sessions/{id}", "/v1/sessions/ses_nope", admin, "", "", 404)

	// Calls: one answered in sess1 with every field, one out of session
	// with as few as possible.
	started := time.Now().UTC().Add(-time.Minute)
	answered := started.Add(2 * time.Second)
	for _, rec := range []*routing.CallRecord{
		{
			ID: "call_full", SessionID: sess1, Proxy: num1, From: a, To: b,
			Attempts: []routing.CallAttempt{{Carrier: "carrier1", Reason: "ring_timeout"}, {Carrier: "carrier1", Status: 200}},
			Status:   200, StartedAt: started, AnsweredAt: &answered, EndedAt: answered.Add(30 * time.Second),
			PostDialDelayMS: 900, EndReason: "caller_hangup",
			Media: &routing.CallMedia{CallerToCallee: routing.MediaDirection{Packets: 1500, Bytes: 258000, Lost: 1, Jitter: 9}},
		},
		{ID: "call_oos", Proxy: num1, From: "+447700900009", To: "+442079460000", Fallback: true, Status: 486, StartedAt: started, EndedAt: started, EndReason: "busy"},
		{ID: "call_bare", Proxy: num1, StartedAt: started, EndedAt: started, EndReason: "out_of_session"},
	} {
		if err := s.routing.RecordCall(t.Context(), rec); err != nil {
			t.Fatalf("RecordCall(%s): %v", rec.ID, err)
		}
	}
	for _, id := range []string{"call_full", "call_oos", "call_bare"} {
		c.do("GET", "/v1/calls/{id}", "/v1/calls/"+id, admin, "", "", 200)
	}
	c.do("GET", "/v1/calls/{id}", "/v1/calls/call_full", reviewer, "", "", 200)
	c.do("GET", "/v1/calls/{id}", "/v1/calls/call_nope", admin, "", "", 404)
	c.do("GET", "/v1/calls/{id}", "/v1/calls/call_full", "", "", "", 401)
	c.do("POST", "/v1/calls/{id}", "/v1/calls/call_full", admin, "", `{}`, 405)
	r = c.do("GET", "/v1/sessions/{id}/interactions", "/v1/sessions/"+sess1+"/interactions", admin, "", "", 200)
	if list, _ := r.json["interactions"].([]any); len(list) != 1 {
		t.Errorf("interactions of sess1: %s, want the one call", r.body)
	}

	// Messages: one sent through the API, one relayed in sess1 with
	// every field.
	r = c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"`+b+`","body":"Your host is on the way."}`, 202)
	msgID, _ := r.json["id"].(string)
	if msgID == "" || r.json["status"] != "queued" || r.json["parts"] != 1.0 {
		t.Errorf("POST /v1/messages: %s, want an id, status queued and 1 part", r.body)
	}
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"+15555550100","to":"`+b+`","body":"x"}`, 400)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"07700900002","body":"x"}`, 400)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"`+b+`","body":""}`, 400)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"`+b+`","body":"`+strings.Repeat("x", MaxMessageChars+1)+`"}`, 400)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"+12125550100","body":"x"}`, 503)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"from":"`+num1+`","to":"`+b+`","text":"x"}`, 400)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "text/plain", `{}`, 415)
	c.do("POST", "/v1/messages", "/v1/messages", admin, "", `{"body":"`+strings.Repeat("x", 2*openapiBodyLimit)+`"}`, 413)
	c.do("POST", "/v1/messages", "/v1/messages", reviewer, "", `{}`, 403)
	c.do("POST", "/v1/messages", "/v1/messages", "", "", `{}`, 401)
	c.do("GET", "/v1/messages/{id}", "/v1/messages/"+msgID, admin, "", "", 200)
	c.do("GET", "/v1/messages/{id}", "/v1/messages/"+msgID, reviewer, "", "", 200)
	c.do("GET", "/v1/messages/{id}", "/v1/messages/SMnope", admin, "", "", 404)
	c.do("GET", "/v1/messages/{id}", "/v1/messages/"+msgID, "", "", "", 401)
	if err := putMessage(s.routing, s.opts.DB, fullMessage("SMfull", sess1, started)); err != nil {
		t.Fatal(err)
	}
	c.do("GET", "/v1/messages/{id}", "/v1/messages/SMfull", admin, "", "", 200)
	r = c.do("GET", "/v1/sessions/{id}/interactions", "/v1/sessions/"+sess1+"/interactions", admin, "", "", 200)
	if list, _ := r.json["interactions"].([]any); len(list) != 2 {
		t.Errorf("interactions of sess1: %s, want the call and the message", r.body)
	}
	c.do("GET", "/v1/carriers", "/v1/carriers", admin, "", "", 200)
	c.do("GET", "/v1/carriers", "/v1/carriers?state=bound", admin, "", "", 400)
	c.do("GET", "/v1/carriers", "/v1/carriers", reviewer, "", "", 403)
	c.do("GET", "/v1/carriers", "/v1/carriers", "", "", "", 401)
	c.do("GET", "/v1/sessions", "/v1/sessions?state=open&participant=%2B"+a[1:]+"&limit=10", admin, "", "", 200)
	c.do("GET", "/v1/sessions", "/v1/sessions?unique_name=booking-1&proxy_number=%2B"+num1[1:], admin, "", "", 200)
	r = c.do("GET", "/v1/sessions", "/v1/sessions?limit=1", admin, "", "", 200)
	cursor, _ := r.json["next_cursor"].(string)
	if cursor == "" {
		t.Errorf("GET /v1/sessions?limit=1 with 2 sessions: no next_cursor in %s", r.body)
	}
	c.do("GET", "/v1/sessions", "/v1/sessions?limit=1&cursor="+cursor, admin, "", "", 200)
	c.do("GET", "/v1/sessions", "/v1/sessions?limit=0", admin, "", "", 400)
	c.do("GET", "/v1/sessions", "/v1/sessions?state=expired", admin, "", "", 400)
	c.do("GET", "/v1/sessions", "/v1/sessions?participant=+"+a[1:], admin, "", "", 200) // a bare + (read as a space) is accepted
	c.do("GET", "/v1/sessions", "/v1/sessions?sort=desc", admin, "", "", 400)
	c.do("POST", "/v1/sessions/{id}/close", "/v1/sessions/"+sess1+"/close", admin, "", `{}`, 400)
	r = c.do("POST", "/v1/sessions/{id}/close", "/v1/sessions/"+sess1+"/close", admin, "", "", 200)
	if r.json["state"] != "closed" || r.json["closed_at"] == nil || r.json["close_reason"] != "closed" {
		t.Errorf("close: want state closed with closed_at and close_reason, got %s", r.body)
	}
	c.do("POST", "/v1/sessions/{id}/close", "/v1/sessions/"+sess1+"/close", admin, "", "", 200)
	c.do("POST", "/v1/sessions/{id}/close", "/v1/sessions/ses_nope/close", admin, "", "", 404)
	c.do("GET", "/v1/sessions", "/v1/sessions?state=closed", admin, "", "", 200)
	c.do("GET", "/v1/sessions/{id}/interactions", "/v1/sessions/"+sess1+"/interactions", admin, "", "", 200)
	c.do("GET", "/v1/sessions/{id}/interactions", "/v1/sessions/ses_nope/interactions", admin, "", "", 404)

	// Teardown: routes, numbers (sess2 still holds num1), tokens.
	c.do("DELETE", "/v1/routes/{prefix}", "/v1/routes/%2B44", admin, "", "", 204)
	c.do("DELETE", "/v1/routes/{prefix}", "/v1/routes/+44", admin, "", "", 404)
	c.do("DELETE", "/v1/numbers/{number}", "/v1/numbers/"+num1, admin, "", "", 409)
	c.do("POST", "/v1/sessions/{id}/close", "/v1/sessions/"+sess2+"/close", admin, "", "", 200)
	c.do("DELETE", "/v1/numbers/{number}", "/v1/numbers/"+num1, admin, "", "", 204)
	c.do("DELETE", "/v1/numbers/{number}", "/v1/numbers/"+num1, admin, "", "", 404)
	c.do("DELETE", "/v1/tokens/{id}", "/v1/tokens/"+reviewerID, reviewer, "", "", 403)
	c.do("DELETE", "/v1/tokens/{id}", "/v1/tokens/"+reviewerID, admin, "", "", 204)
	c.do("DELETE", "/v1/tokens/{id}", "/v1/tokens/"+reviewerID, admin, "", "", 404)
	c.do("GET", "/v1/openapi.json", "/v1/openapi.json", reviewer, "", "", 401)
	c.do("DELETE", "/v1/tokens/{id}", "/v1/tokens/"+adminID, admin, "", "", 204)
	c.do("GET", "/v1/tokens", "/v1/tokens", admin, "", "", 401)

	s.Drain()
	c.do("GET", "/healthz", "/healthz", "", "", "", 503)

	// The script reached every operation with a success status.
	missed := []string{}
	for _, e := range append(s.endpoints(), endpoint{method: "GET", pattern: "/metrics"}) {
		if k := e.method + " " + openapiPattern(e.pattern); !c.ok[k] {
			missed = append(missed, k)
		}
	}
	slices.Sort(missed)
	if len(missed) > 0 {
		t.Errorf("the script never got a 2xx from: %v (extend it)", missed)
	}
}

// openapiJSONFields returns the JSON names of t's fields and whether each
// is always written (no omitempty).
func openapiJSONFields(t reflect.Type) map[string]bool {
	out := make(map[string]bool)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = !slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return out
}

func openapiSchema(t *testing.T, doc map[string]any, name string) map[string]any {
	t.Helper()
	v, ok := openapiPointer(doc, "#/components/schemas/"+name)
	m, _ := v.(map[string]any)
	if !ok || m == nil {
		t.Errorf("components/schemas/%s is missing", name)
	}
	return m
}

func openapiStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIRequestSchemas(t *testing.T) {
	doc := openapiLoad(t)
	ops := openapiOps(doc)
	requests := map[string]reflect.Type{
		"CreateTokenRequest":   reflect.TypeFor[CreateTokenRequest](),
		"AddNumberRequest":     reflect.TypeFor[AddNumberRequest](),
		"UpdateNumberRequest":  reflect.TypeFor[UpdateNumberRequest](),
		"RouteRequest":         reflect.TypeFor[RouteRequest](),
		"CreateSessionRequest": reflect.TypeFor[CreateSessionRequest](),
		"Participant":          reflect.TypeFor[Participant](), // inside CreateSessionRequest
		"SendMessageRequest":   reflect.TypeFor[SendMessageRequest](),
	}
	for name, typ := range requests {
		s := openapiSchema(t, doc, name)
		if s == nil {
			continue
		}
		props, _ := s["properties"].(map[string]any)
		got := slices.Sorted(maps.Keys(props))
		want := slices.Sorted(maps.Keys(openapiJSONFields(typ)))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; %s's json fields are %v", name, got, typ, want)
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema %s: want additionalProperties: false (the server rejects unknown fields)", name)
		}
		for _, r := range openapiStrings(s["required"]) {
			if _, ok := props[r]; !ok {
				t.Errorf("schema %s requires %q, which it does not declare", name, r)
			}
		}
	}

	// Each operation with a body takes the request type its handler decodes.
	bodies := map[string]string{
		"POST /v1/tokens":            "CreateTokenRequest",
		"POST /v1/numbers":           "AddNumberRequest",
		"PATCH /v1/numbers/{number}": "UpdateNumberRequest",
		"POST /v1/routes":            "RouteRequest",
		"POST /v1/sessions":          "CreateSessionRequest",
		"POST /v1/messages":          "SendMessageRequest",
	}
	for key, op := range ops {
		rb, has := op["requestBody"].(map[string]any)
		want, wants := bodies[key]
		if has != wants {
			t.Errorf("%s: requestBody declared=%v, want %v", key, has, wants)
			continue
		}
		if !has {
			continue
		}
		content, _ := rb["content"].(map[string]any)
		media, _ := content["application/json"].(map[string]any)
		schema, _ := media["schema"].(map[string]any)
		if ref := schema["$ref"]; len(content) != 1 || ref != "#/components/schemas/"+want || rb["required"] != true {
			t.Errorf("%s: requestBody is %v, want a required application/json body of %s", key, rb, want)
		}
	}
}

func TestOpenAPIResponseSchemas(t *testing.T) {
	doc := openapiLoad(t)
	responses := map[string]reflect.Type{
		"ErrorBody":       reflect.TypeFor[ErrorBody](),
		"ErrorDetail":     reflect.TypeFor[ErrorDetail](),
		"Token":           reflect.TypeFor[Token](),
		"TokenList":       reflect.TypeFor[TokenList](),
		"Number":          reflect.TypeFor[Number](),
		"NumberList":      reflect.TypeFor[NumberList](),
		"Route":           reflect.TypeFor[Route](),
		"RouteList":       reflect.TypeFor[RouteList](),
		"Participant":     reflect.TypeFor[Participant](),
		"Session":         reflect.TypeFor[Session](),
		"SessionList":     reflect.TypeFor[SessionList](),
		"Interaction":     reflect.TypeFor[Interaction](),
		"InteractionList": reflect.TypeFor[InteractionList](),
		"CallRecord":      reflect.TypeFor[CallRecord](),
		"CallAttempt":     reflect.TypeFor[CallAttempt](),
		"CallMedia":       reflect.TypeFor[CallMedia](),
		"MediaDirection":  reflect.TypeFor[MediaDirection](),
		"Health":          reflect.TypeFor[Health](),
		"MessageAccepted": reflect.TypeFor[MessageAccepted](),
		"Message":         reflect.TypeFor[Message](),
		"MessagePart":     reflect.TypeFor[MessagePart](),
		"CarrierBind":     reflect.TypeFor[CarrierBind](),
		"CarrierList":     reflect.TypeFor[CarrierList](),
	}
	for name, typ := range responses {
		s := openapiSchema(t, doc, name)
		if s == nil {
			continue
		}
		fields := openapiJSONFields(typ)
		props, _ := s["properties"].(map[string]any)
		got := slices.Sorted(maps.Keys(props))
		want := slices.Sorted(maps.Keys(fields))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; %s's json fields are %v", name, got, typ, want)
		}
		// Fields always written are required; omitempty ones are not.
		var always []string
		for f, a := range fields {
			if a {
				always = append(always, f)
			}
		}
		slices.Sort(always)
		if req := openapiStrings(s["required"]); !slices.Equal(req, always) {
			t.Errorf("schema %s requires %v; %s always writes %v", name, req, typ, always)
		}
	}
}
