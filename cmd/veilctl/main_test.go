package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/veilgw/veil/admin"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/smpp"
	"github.com/veilgw/veil/store/storetest"
)

func newAPI(t *testing.T) string {
	t.Helper()
	url, _ := newAPIRouting(t)
	return url
}

// newAPIRouting is newAPI also returning the routing service behind it.
func newAPIRouting(t *testing.T) (string, *routing.Service) {
	t.Helper()
	db := storetest.Open(t)
	rt, err := routing.New(db, routing.Options{Carriers: []string{"carrier1", "carrier2"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.New(admin.Options{Routing: rt, DB: db, BootstrapToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL, rt
}

func ctl(t *testing.T, url, token string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{"VEIL_URL": url, "VEIL_TOKEN": token}
	var out, errb bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVeilctlFlow(t *testing.T) {
	url := newAPI(t)
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string // substring of stdout (or stderr when the code is not 0)
	}{
		{[]string{"numbers", "add", "-number", "+15550100001", "-carrier", "carrier1"}, 0, `"number": "+15550100001"`},
		{[]string{"numbers", "add", "-number", "+15550100001", "-carrier", "carrier1"}, 1, "409 number_exists"},
		{[]string{"numbers", "add", "-number", "5550100001", "-carrier", "carrier1"}, 1, "400 invalid_request"},
		{[]string{"numbers", "list"}, 0, `"open_sessions": 0`},
		{[]string{"numbers", "update", "-number", "+15550100001", "-reserved=true"}, 0, `"reserved": true`},
		{[]string{"numbers", "update", "-number", "+15550100001", "-reserved=false", "-fallback", "+442079460000"}, 0, `"fallback_number": "+442079460000"`},
		{[]string{"numbers", "update", "-number", "+15550100001"}, 2, "give -reserved or -fallback"},
		{[]string{"routes", "add", "-prefix", "+44", "-carriers", "carrier2,carrier1"}, 0, `"carrier2"`},
		{[]string{"routes", "list"}, 0, `"prefix": "+44"`},
		{[]string{"sessions", "create", "-a", "+15550100101", "-b", "+15550100102", "-ttl", "2h", "-unique-name", "booking-42"}, 0, `"proxy_number": "+15550100001"`},
		{[]string{"sessions", "create", "-a", "+15550100101", "-b", "+15550100102"}, 1, "409 pool_exhausted"},
		{[]string{"sessions", "list", "-state", "open", "-unique-name", "booking-42"}, 0, `"unique_name": "booking-42"`},
		{[]string{"tokens", "create", "-role", "reviewer"}, 0, `"token": "veil_`},
		{[]string{"routes", "delete", "-prefix", "+44"}, 0, ""},
		{[]string{"sessions", "create", "-a", "+15550100101"}, 2, "-b is required"},
		{[]string{"sessions", "fly"}, 2, "unknown command"},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, url, "tok", s.args...)
		got := out
		if s.wantCode != 0 {
			got = errOut
		}
		if code != s.wantCode || !strings.Contains(got, s.wantOut) {
			t.Fatalf("veilctl %s = %d\nstdout: %s\nstderr: %s\nwant code %d and %q", strings.Join(s.args, " "), code, out, errOut, s.wantCode, s.wantOut)
		}
	}
	// get and close take the id from a list.
	_, out, _ := ctl(t, url, "tok", "sessions", "list", "-state", "open")
	var l admin.SessionList
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Sessions) != 1 {
		t.Fatalf("list = %q, %v", out, err)
	}
	id := l.Sessions[0].ID
	if code, out, _ := ctl(t, url, "tok", "sessions", "close", "-id", id); code != 0 || !strings.Contains(out, `"state": "closed"`) {
		t.Fatalf("close = %d %s", code, out)
	}
	if code, out, _ := ctl(t, url, "tok", "sessions", "get", "-id", id); code != 0 || !strings.Contains(out, `"close_reason": "closed"`) {
		t.Fatalf("get = %d %s", code, out)
	}
	if code, out, _ := ctl(t, url, "tok", "sessions", "interactions", "-id", id); code != 0 || !strings.Contains(out, `"interactions": []`) {
		t.Fatalf("interactions = %d %s", code, out)
	}
	if code, out, _ := ctl(t, url, "tok", "numbers", "get", "-number", "+15550100001"); code != 0 || !strings.Contains(out, `"carrier": "carrier1"`) {
		t.Fatalf("numbers get = %d %s", code, out)
	}
	var toks admin.TokenList
	_, out, _ = ctl(t, url, "tok", "tokens", "list")
	if err := json.Unmarshal([]byte(out), &toks); err != nil || len(toks.Tokens) != 1 || strings.Contains(out, "veil_") {
		t.Fatalf("tokens list = %q, %v", out, err)
	}
	if code, _, _ := ctl(t, url, "tok", "tokens", "revoke", "-id", toks.Tokens[0].ID); code != 0 {
		t.Fatalf("tokens revoke = %d", code)
	}
	if code, _, _ := ctl(t, url, "tok", "numbers", "delete", "-number", "+15550100001"); code != 0 {
		t.Fatalf("numbers delete = %d", code)
	}
}

func TestVeilctlAuth(t *testing.T) {
	url := newAPI(t)
	if code, _, errOut := ctl(t, url, "", "numbers", "list"); code != 2 || !strings.Contains(errOut, "VEIL_TOKEN") {
		t.Fatalf("no token = %d %q", code, errOut)
	}
	if code, _, errOut := ctl(t, url, "wrong", "numbers", "list"); code != 1 || !strings.Contains(errOut, "401 unauthorized") {
		t.Fatalf("bad token = %d %q", code, errOut)
	}
	if code, _, errOut := ctl(t, strings.TrimPrefix(url, "http://"), "tok", "numbers", "list"); code != 2 || !strings.Contains(errOut, "http://") {
		t.Fatalf("VEIL_URL without scheme = %d %q", code, errOut)
	}
}

func TestVeilctlCalls(t *testing.T) {
	url, rt := newAPIRouting(t)
	if code, out, errOut := ctl(t, url, "tok", "numbers", "add", "-number", "+15550100001", "-carrier", "carrier1"); code != 0 {
		t.Fatalf("numbers add = %d %s %s", code, out, errOut)
	}
	_, out, _ := ctl(t, url, "tok", "sessions", "create", "-a", "+15550100101", "-b", "+15550100102")
	var sess admin.Session
	if err := json.Unmarshal([]byte(out), &sess); err != nil {
		t.Fatalf("sessions create = %q, %v", out, err)
	}
	start := time.Now().UTC().Add(-time.Minute)
	answered := start.Add(2 * time.Second)
	err := rt.RecordCall(t.Context(), &routing.CallRecord{
		ID: "call_1", SessionID: sess.ID, Proxy: "+15550100001", From: "+15550100101", To: "+15550100102",
		Attempts: []routing.CallAttempt{{Carrier: "carrier1", Status: 200}},
		Status:   200, StartedAt: start, AnsweredAt: &answered, EndedAt: answered.Add(10 * time.Second), EndReason: "caller_hangup",
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"calls", "get", "call_1"}, 0, `"from": "+1***101"`},
		{[]string{"calls", "get", "-id", "call_1"}, 0, `"duration_ms": 10000`},
		{[]string{"calls", "get", "call_404"}, 1, "404 call_not_found"},
		{[]string{"calls", "get"}, 2, "give the call id"},
		{[]string{"calls", "get", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"calls", "get", "-id", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"sessions", "interactions", "-id", sess.ID}, 0, `"id": "call_1"`},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, url, "tok", s.args...)
		got := out
		if s.wantCode != 0 {
			got = errOut
		}
		if code != s.wantCode || !strings.Contains(got, s.wantOut) {
			t.Fatalf("veilctl %s = %d\nstdout: %s\nstderr: %s\nwant code %d and %q", strings.Join(s.args, " "), code, out, errOut, s.wantCode, s.wantOut)
		}
		if strings.Contains(out, "+15550100101") {
			t.Errorf("veilctl %s shows a full participant number: %s", strings.Join(s.args, " "), out)
		}
	}
}

// TestVeilctlMessages: messages send|get and carriers list against an API
// whose SMS service is a fake that stores what it is given.
func TestVeilctlMessages(t *testing.T) {
	db := storetest.Open(t)
	rt, err := routing.New(db, routing.Options{Carriers: []string{"carrier1"}})
	if err != nil {
		t.Fatal(err)
	}
	var sent []smpp.SendRequest
	fake := admin.SMSFuncs{
		SendFunc: func(ctx context.Context, req smpp.SendRequest) (*routing.MessageRecord, error) {
			if req.From != "+15550100001" {
				return nil, smpp.ErrBadSender
			}
			sent = append(sent, req)
			rec := &routing.MessageRecord{
				ID: "SM1", Direction: routing.DirectionOut, Origin: "api", Proxy: req.From, From: req.From, To: req.To,
				Carrier: "carrier1", Body: req.Body, Encoding: "gsm7", Status: routing.MsgQueued, CreatedAt: time.Now(),
				Parts: []routing.MessagePart{{Seq: 1, Status: routing.MsgQueued}},
			}
			b := db.NewBatch()
			if err := rt.PutMessage(b, rec); err != nil {
				return nil, err
			}
			return rec, b.Commit()
		},
		BindsFunc: func() []smpp.BindStatus {
			return []smpp.BindStatus{{Carrier: "carrier1", Address: "127.0.0.1:2775", BindType: "transceiver", State: smpp.BindBound, Window: 10}}
		},
	}
	srv, err := admin.New(admin.Options{Routing: rt, DB: db, BootstrapToken: "tok", SMS: fake})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"messages", "send", "-from", "+15550100001", "-to", "+15550100102", "-body", "hello there"}, 0, `"id": "SM1"`},
		{[]string{"messages", "send", "-from", "+15550100009", "-to", "+15550100102", "-body", "x"}, 1, "400 unknown_sender"},
		{[]string{"messages", "send", "-from", "+15550100001", "-to", "+15550100102"}, 2, "-body is required"},
		{[]string{"messages", "get", "SM1"}, 0, `"body": "hello there"`},
		{[]string{"messages", "get", "-id", "SM1"}, 0, `"to": "+1***102"`},
		{[]string{"messages", "get", "SM404"}, 1, "404 message_not_found"},
		{[]string{"messages", "get"}, 2, "give the message id"},
		{[]string{"carriers", "list"}, 0, `"state": "bound"`},
		{[]string{"carriers", "list", "x"}, 2, `unexpected argument "x"`},
	}
	for _, s := range steps {
		code, out, errOut := ctl(t, ts.URL, "tok", s.args...)
		got := out
		if s.wantCode != 0 {
			got = errOut
		}
		if code != s.wantCode || !strings.Contains(got, s.wantOut) {
			t.Fatalf("veilctl %s = %d\nstdout: %s\nstderr: %s\nwant code %d and %q", strings.Join(s.args, " "), code, out, errOut, s.wantCode, s.wantOut)
		}
	}
	if len(sent) != 1 || sent[0] != (smpp.SendRequest{From: "+15550100001", To: "+15550100102", Body: "hello there"}) {
		t.Errorf("the SMS service was asked %+v", sent)
	}
}
