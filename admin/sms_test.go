package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/smpp"
	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

// Test doubles for the SMS service: the API's handlers are tested here
// against a fake that validates like smpp.Service and stores the record
// through routing, so GET /v1/messages/{id} reads what POST queued. The
// real service is tested end to end in e2e/.

// fakeSenderID is the one sender id the fake knows.
const fakeSenderID = "VeilAlerts"

// noRoutePrefix: destinations starting with it have no SMPP route.
const noRoutePrefix = "+1212"

// fakeSMS records the requests it was given.
type fakeSMS struct {
	SMSFuncs
	mu    sync.Mutex
	sent  []smpp.SendRequest
	calls int
}

func (f *fakeSMS) requests() []smpp.SendRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]smpp.SendRequest(nil), f.sent...)
}

// newFakeSMS is an SMS service over rt and db: it refuses what
// smpp.Service refuses (with the same errors), splits bodies into parts
// of 153 characters and stores a queued record.
func newFakeSMS(tb testing.TB, rt *routing.Service, db *store.DB) *fakeSMS {
	f := &fakeSMS{}
	f.SendFunc = func(ctx context.Context, req smpp.SendRequest) (*routing.MessageRecord, error) {
		f.mu.Lock()
		f.calls++
		n := f.calls
		f.mu.Unlock()
		if _, err := routing.ParseE164(req.To); err != nil {
			return nil, smpp.ErrBadDestination
		}
		if req.Body == "" {
			return nil, smpp.ErrEmptyBody
		}
		if req.From != fakeSenderID {
			if _, err := rt.GetNumber(req.From); err != nil {
				return nil, smpp.ErrBadSender
			}
		}
		if strings.HasPrefix(req.To, noRoutePrefix) {
			return nil, smpp.ErrNoRoute
		}
		parts := 1
		if len(req.Body) > 160 {
			parts = (len(req.Body) + 152) / 153
		}
		rec := &routing.MessageRecord{
			ID: fmt.Sprintf("SMfake%04d", n), Direction: routing.DirectionOut, Origin: "api", Proxy: req.From,
			From: req.From, To: req.To, Carrier: "carrier1", Body: req.Body, Encoding: "gsm7",
			Status: routing.MsgQueued, CreatedAt: time.Now().UTC(),
		}
		for i := range parts {
			rec.Parts = append(rec.Parts, routing.MessagePart{Seq: i + 1, Status: routing.MsgQueued})
		}
		if err := putMessage(rt, db, rec); err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.sent = append(f.sent, req)
		f.mu.Unlock()
		return rec, nil
	}
	f.BindsFunc = func() []smpp.BindStatus {
		return []smpp.BindStatus{
			{Carrier: "carrier1", Address: "127.0.0.1:2775", BindType: "transceiver", State: smpp.BindBound,
				Since: epoch, Window: 10, InFlight: 3, Queued: 7},
			{Carrier: "carrier2", Address: "127.0.0.1:2776", BindType: "transmitter_receiver", State: smpp.BindDown,
				Since: epoch, Window: 50, Reconnects: 2, LastError: "dial tcp 127.0.0.1:2776: connection refused"},
		}
	}
	return f
}

// putMessage stores a message record as the SMS service does.
func putMessage(rt *routing.Service, db *store.DB, rec *routing.MessageRecord) error {
	b := db.NewBatch()
	if err := rt.PutMessage(b, rec); err != nil {
		return err
	}
	return b.Commit()
}

// fullMessage is a relayed message in session sid with every field set:
// two parts, one delivered and one failed.
func fullMessage(id, sid string, at time.Time) *routing.MessageRecord {
	sent, done := at.Add(time.Second), at.Add(5*time.Second)
	return &routing.MessageRecord{
		ID: id, SessionID: sid, Direction: routing.DirectionOut, Origin: "relay", Related: "SMin1",
		Proxy: proxy1, From: proxy1, To: bob, Carrier: "carrier1", Body: strings.Repeat("long text ", 20),
		Encoding: "gsm7", Incomplete: false, Status: routing.MsgFailed, Reason: "UNDELIV err:001",
		CreatedAt: at, SentAt: &sent, DoneAt: &done,
		Parts: []routing.MessagePart{
			{Seq: 1, CarrierID: "a0000001", Status: routing.MsgDelivered, SubmittedAt: &sent, DoneAt: &done},
			{Seq: 2, CarrierID: "a0000002", Status: routing.MsgFailed, Error: "UNDELIV err:001", SubmittedAt: &sent, DoneAt: &done},
		},
	}
}

// newSMSAPI is newAPI with the fake SMS service.
func newSMSAPI(tb testing.TB) (*apiEnv, *fakeSMS) {
	tb.Helper()
	e := &apiEnv{db: storetest.Open(tb), clock: &fakeClock{now: epoch}, logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	e.rt, err = routing.New(e.db, routing.Options{Carriers: testCarriers, Now: e.clock.Now, Logger: logger})
	if err != nil {
		tb.Fatalf("routing.New: %v", err)
	}
	fake := newFakeSMS(tb, e.rt, e.db)
	e.srv, err = New(Options{Routing: e.rt, DB: e.db, BootstrapToken: bootToken, Now: e.clock.Now, Logger: logger, SMS: fake})
	if err != nil {
		tb.Fatalf("admin.New: %v", err)
	}
	e.ts = httptest.NewServer(e.srv)
	tb.Cleanup(e.ts.Close)
	e.client = e.ts.Client()
	e.client.Timeout = 30 * time.Second
	return e, fake
}

func TestSendMessage(t *testing.T) {
	e, fake := newSMSAPI(t)
	e.addNumber(t, proxy1)

	var acc MessageAccepted
	e.mustDo(t, http.StatusAccepted, "POST", "/v1/messages", SendMessageRequest{From: proxy1, To: bob, Body: "Your host is on the way."}, &acc)
	if acc.ID == "" || acc.Status != "queued" || acc.Parts != 1 {
		t.Errorf("202 body %+v, want an id, queued, 1 part", acc)
	}
	long := strings.Repeat("a", 200)
	e.mustDo(t, http.StatusAccepted, "POST", "/v1/messages", SendMessageRequest{From: fakeSenderID, To: dave, Body: long}, &acc)
	if acc.Parts != 2 {
		t.Errorf("200 characters: %d parts, want 2", acc.Parts)
	}
	// Exactly the limit is taken, in characters, not bytes.
	e.mustDo(t, http.StatusAccepted, "POST", "/v1/messages", SendMessageRequest{From: proxy1, To: bob, Body: strings.Repeat("€", MaxMessageChars)}, nil)
	want := []smpp.SendRequest{{From: proxy1, To: bob, Body: "Your host is on the way."}, {From: fakeSenderID, To: dave, Body: long},
		{From: proxy1, To: bob, Body: strings.Repeat("€", MaxMessageChars)}}
	if got := fake.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("the SMS service was asked %+v", got)
	}

	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"to not E.164", `{"from":"` + proxy1 + `","to":"5550200002","body":"x"}`, 400, "invalid_request"},
		{"to missing", `{"from":"` + proxy1 + `","body":"x"}`, 400, "invalid_request"},
		{"empty body", `{"from":"` + proxy1 + `","to":"` + bob + `","body":""}`, 400, "invalid_request"},
		{"body too long", `{"from":"` + proxy1 + `","to":"` + bob + `","body":"` + strings.Repeat("é", MaxMessageChars+1) + `"}`, 400, "body_too_long"},
		{"from not in the pool", `{"from":"` + proxy2 + `","to":"` + bob + `","body":"x"}`, 400, "unknown_sender"},
		{"from an unknown sender id", `{"from":"Acme","to":"` + bob + `","body":"x"}`, 400, "unknown_sender"},
		{"from missing", `{"to":"` + bob + `","body":"x"}`, 400, "unknown_sender"},
		{"no route", `{"from":"` + proxy1 + `","to":"+12125550100","body":"x"}`, 503, "no_sms_route"},
		{"unknown field", `{"from":"` + proxy1 + `","to":"` + bob + `","text":"x"}`, 400, "unknown_field"},
		{"case-folded key", `{"FROM":"` + proxy1 + `","to":"` + bob + `","body":"x"}`, 400, "unknown_field"},
		{"key twice", `{"from":"` + proxy1 + `","to":"` + bob + `","body":"x","body":"y"}`, 400, "invalid_json"},
		{"body a number", `{"from":"` + proxy1 + `","to":"` + bob + `","body":1}`, 400, "invalid_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := e.do(t, "POST", "/v1/messages", bootToken, c.body)
			wantError(t, status, b, c.status, c.code)
		})
	}
	if n := len(fake.requests()); n != 3 {
		t.Errorf("%d messages queued after the refusals, want 3", n)
	}

	// The service's own errors map too: shutting down, a codec refusal, a
	// failed write.
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{smpp.ErrClosed, 503, "sms_unavailable"},
		{fmt.Errorf("segmenting: %w", smpp.ErrTooLong), 400, "body_too_long"},
		{fmt.Errorf("queueing message: %w", errDisk), 500, "internal"},
	} {
		send := fake.SendFunc
		fake.SendFunc = func(context.Context, smpp.SendRequest) (*routing.MessageRecord, error) { return nil, c.err }
		status, b := e.do(t, "POST", "/v1/messages", bootToken, SendMessageRequest{From: proxy1, To: bob, Body: "x"})
		fake.SendFunc = send
		eb := wantError(t, status, b, c.status, c.code)
		if strings.Contains(eb.Error.Message, "disk on fire") {
			t.Errorf("500 leaks its cause: %q", eb.Error.Message)
		}
	}

	// Roles: a reviewer may not send.
	reviewer := e.createToken(t, RoleReviewer)
	status, b := e.do(t, "POST", "/v1/messages", reviewer.Token, SendMessageRequest{From: proxy1, To: bob, Body: "x"})
	wantError(t, status, b, http.StatusForbidden, "forbidden")

	// Neither numbers nor text in the logs at info level.
	logs := e.logs.String()
	for _, leak := range []string{bob, dave, "on the way", bootToken} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs)
		}
	}
	if !strings.Contains(logs, "message queued") {
		t.Errorf("no log line for the queued messages:\n%s", logs)
	}
}

var errDisk = fmt.Errorf("disk on fire")

func TestGetMessage(t *testing.T) {
	e, _ := newSMSAPI(t)
	e.addNumber(t, proxy1)
	s := e.createSession(t, alice, bob)
	if err := putMessage(e.rt, e.db, fullMessage("SMfull", s.ID, epoch)); err != nil {
		t.Fatal(err)
	}
	var got Message
	e.mustDo(t, http.StatusOK, "GET", "/v1/messages/SMfull", nil, &got)
	sent, done := epoch.Add(time.Second), epoch.Add(5*time.Second)
	want := Message{
		ID: "SMfull", SessionID: s.ID, Direction: "out", Origin: "relay", Related: "SMin1", Proxy: proxy1,
		From: "+1***001", To: "+1***002", Carrier: "carrier1", Body: strings.Repeat("long text ", 20), Encoding: "gsm7",
		Status: "failed", Reason: "UNDELIV err:001", CreatedAt: epoch, SentAt: &sent, DoneAt: &done,
		Parts: []MessagePart{
			{Seq: 1, CarrierID: "a0000001", Status: "delivered", SubmittedAt: &sent, DoneAt: &done},
			{Seq: 2, CarrierID: "a0000002", Status: "failed", Error: "UNDELIV err:001", SubmittedAt: &sent, DoneAt: &done},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /v1/messages/SMfull =\n%+v\nwant\n%+v", got, want)
	}

	// A queued API message, read right after POST: parts without ids.
	var acc MessageAccepted
	e.mustDo(t, http.StatusAccepted, "POST", "/v1/messages", SendMessageRequest{From: proxy1, To: carol, Body: "hi"}, &acc)
	status, b := e.do(t, "GET", "/v1/messages/"+acc.ID, bootToken, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d; body %s", status, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["status"] != "queued" || raw["to"] != "+1***003" || raw["origin"] != "api" {
		t.Errorf("queued message %s", b)
	}
	for _, k := range []string{"session_id", "sent_at", "done_at", "reason", "incomplete"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s present in %s", k, b)
		}
	}
	if strings.Contains(string(b), carol) {
		t.Errorf("the full number %s in %s", carol, b)
	}

	// The session's interactions list the message with its record.
	var list InteractionList
	e.mustDo(t, http.StatusOK, "GET", "/v1/sessions/"+s.ID+"/interactions", nil, &list)
	if len(list.Interactions) != 1 || list.Interactions[0].Kind != "message" || !reflect.DeepEqual(list.Interactions[0].Message, &want) ||
		list.Interactions[0].Call != nil || !list.Interactions[0].CreatedAt.Equal(epoch) {
		t.Errorf("interactions %+v", list.Interactions)
	}

	// Reviewers read messages; unknown and impossible ids are 404; the
	// read is logged.
	reviewer := e.createToken(t, RoleReviewer)
	if status, b := e.do(t, "GET", "/v1/messages/SMfull", reviewer.Token, nil); status != http.StatusOK {
		t.Errorf("reviewer: status %d; body %s", status, b)
	}
	for _, id := range []string{"SMnope", "a%2Fb", strings.Repeat("x", 65), "%00"} {
		status, b := e.do(t, "GET", "/v1/messages/"+id, reviewer.Token, nil)
		wantError(t, status, b, http.StatusNotFound, "message_not_found")
	}
	status, b = e.do(t, "GET", "/v1/messages/SMfull", "", nil)
	wantError(t, status, b, http.StatusUnauthorized, "unauthorized")
	status, b = e.do(t, "DELETE", "/v1/messages/SMfull", bootToken, nil)
	wantError(t, status, b, http.StatusMethodNotAllowed, "method_not_allowed")
	if !strings.Contains(e.logs.String(), "message record read") {
		t.Errorf("no log line for the message reads")
	}

	// Without an SMS service the records are still readable.
	plain := newAPI(t)
	if err := putMessage(plain.rt, plain.db, fullMessage("SMfull", "", epoch)); err != nil {
		t.Fatal(err)
	}
	plain.mustDo(t, http.StatusOK, "GET", "/v1/messages/SMfull", nil, nil)
}

func TestListCarriers(t *testing.T) {
	e, _ := newSMSAPI(t)
	var got CarrierList
	e.mustDo(t, http.StatusOK, "GET", "/v1/carriers", nil, &got)
	want := CarrierList{Carriers: []CarrierBind{
		{Carrier: "carrier1", Address: "127.0.0.1:2775", BindType: "transceiver", State: "bound", Since: epoch, Window: 10, InFlight: 3, Queued: 7},
		{Carrier: "carrier2", Address: "127.0.0.1:2776", BindType: "transmitter_receiver", State: "down", Since: epoch, Window: 50,
			Reconnects: 2, LastError: "dial tcp 127.0.0.1:2776: connection refused"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /v1/carriers =\n%+v\nwant\n%+v", got, want)
	}
	status, b := e.do(t, "GET", "/v1/carriers?carrier=carrier1", bootToken, nil)
	wantError(t, status, b, http.StatusBadRequest, "unknown_parameter")
	reviewer := e.createToken(t, RoleReviewer)
	status, b = e.do(t, "GET", "/v1/carriers", reviewer.Token, nil)
	wantError(t, status, b, http.StatusForbidden, "forbidden")

	// No binds configured: an empty array, not null.
	e2, fake := newSMSAPI(t)
	fake.BindsFunc = func() []smpp.BindStatus { return nil }
	status, b = e2.do(t, "GET", "/v1/carriers", bootToken, nil)
	if status != http.StatusOK || !strings.Contains(strings.Join(strings.Fields(string(b)), ""), `"carriers":[]`) {
		t.Errorf("no binds: %d %s, want carriers []", status, b)
	}
}

// TestSMSUnavailable: a server built without an SMS service answers the
// SMS endpoints 503 sms_unavailable (after the usual body checks).
func TestSMSUnavailable(t *testing.T) {
	e := newAPI(t)
	e.addNumber(t, proxy1)
	status, b := e.do(t, "POST", "/v1/messages", bootToken, SendMessageRequest{From: proxy1, To: bob, Body: "x"})
	wantError(t, status, b, http.StatusServiceUnavailable, "sms_unavailable")
	status, b = e.do(t, "GET", "/v1/carriers", bootToken, nil)
	wantError(t, status, b, http.StatusServiceUnavailable, "sms_unavailable")
	status, b = e.do(t, "POST", "/v1/messages", bootToken, `{"from":1}`)
	wantError(t, status, b, http.StatusBadRequest, "invalid_json")
}
