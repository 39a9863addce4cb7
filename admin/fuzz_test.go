package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store/storetest"
)

// FuzzRequestBodies throws arbitrary bodies at every endpoint that takes
// one: the answer is always a JSON document, never a 500 or a panic.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"participants":[{"number":"+15550100101"},{"number":"+15550100102"}],"mode":"voice+sms","ttl_seconds":3600,"unique_name":"b-1"}`,
		`{"participants":[{"number":"+15550100101"},{"number":"+15550100101"}]}`,
		`{"number":"+15550100001","carrier":"carrier1","capabilities":["voice"]}`,
		`{"prefix":"+44","carriers":["carrier1"]}`,
		`{"role":"reviewer"}`,
		`{"from":"+15550100001","to":"+15550100102","body":"Hi, I'm outside"}`,
		`{"from":"+15550100001","to":"+12125550100","body":"no route"}`,
		`{"expires_at":"2030-01-01T00:00:00Z","ttl_seconds":-1}`,
		`[]`, `null`, `{"a":1} {"b":2}`, "\x00\xff",
	} {
		for path := range 5 {
			f.Add(uint8(path), []byte(seed))
		}
	}
	db := storetest.Open(f)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := routing.New(db, routing.Options{Carriers: []string{"carrier1"}, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := rt.AddNumber(f.Context(), routing.AddNumberRequest{Number: "+15550100001", Carrier: "carrier1"}); err != nil {
		f.Fatal(err)
	}
	srv, err := New(Options{Routing: rt, DB: db, BootstrapToken: "t", Logger: quiet, SMS: newFakeSMS(f, rt, db)})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/v1/sessions", "/v1/numbers", "/v1/routes", "/v1/tokens", "/v1/messages"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		// 503 no_sms_route is the fake SMS service's answer for +1212.
		if rec.Code >= 500 && !(rec.Code == http.StatusServiceUnavailable && bytes.Contains(rec.Body.Bytes(), []byte("no_sms_route"))) {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
	})
}
