package routing

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestAddNumber(t *testing.T) {
	tests := []struct {
		name     string
		req      AddNumberRequest
		want     error // nil: success
		wantAlso error // a second sentinel the error must wrap
		wantCaps []Capability
	}{
		{name: "defaults to voice and sms", req: AddNumberRequest{Number: "+15550000001", Carrier: "alpha"},
			wantCaps: []Capability{CapSMS, CapVoice}},
		{name: "voice only", req: AddNumberRequest{Number: "+15550000001", Carrier: "alpha", Capabilities: []Capability{CapVoice}},
			wantCaps: []Capability{CapVoice}},
		{name: "duplicates collapse", req: AddNumberRequest{Number: "+15550000001", Carrier: "beta", Capabilities: []Capability{CapVoice, CapSMS, CapVoice, CapSMS}},
			wantCaps: []Capability{CapSMS, CapVoice}},
		{name: "reserved with fallback", req: AddNumberRequest{Number: "+442071234567", Carrier: "beta", Reserved: true, FallbackNumber: "+18005550100"},
			wantCaps: []Capability{CapSMS, CapVoice}},
		{name: "bad number", req: AddNumberRequest{Number: "15550000001", Carrier: "alpha"}, want: ErrInvalid},
		{name: "leading zero", req: AddNumberRequest{Number: "+05550000001", Carrier: "alpha"}, want: ErrInvalid},
		{name: "unknown carrier", req: AddNumberRequest{Number: "+15550000001", Carrier: "omega"}, want: ErrInvalid, wantAlso: ErrUnknownCarrier},
		{name: "no carrier", req: AddNumberRequest{Number: "+15550000001"}, want: ErrUnknownCarrier},
		{name: "bad capability", req: AddNumberRequest{Number: "+15550000001", Carrier: "alpha", Capabilities: []Capability{CapVoice, "fax"}}, want: ErrInvalid},
		{name: "bad fallback", req: AddNumberRequest{Number: "+15550000001", Carrier: "alpha", FallbackNumber: "911"}, want: ErrInvalid},
		{name: "fallback is itself", req: AddNumberRequest{Number: "+15550000001", Carrier: "alpha", FallbackNumber: "+15550000001"}, want: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			caps := slices.Clone(tt.req.Capabilities)
			n, err := e.svc.AddNumber(context.Background(), tt.req)
			if tt.want != nil {
				wantErr(t, "AddNumber", err, tt.want)
				if tt.wantAlso != nil {
					wantErr(t, "AddNumber", err, tt.wantAlso)
				}
				if len(e.svc.ListNumbers()) != 0 {
					t.Fatal("a rejected number is in the pool")
				}
				if _, err := e.svc.GetNumber(tt.req.Number); !errors.Is(err, ErrNumberNotFound) {
					t.Fatalf("GetNumber of a rejected number: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddNumber: %v", err)
			}
			if !slices.Equal(tt.req.Capabilities, caps) {
				t.Fatalf("AddNumber modified the caller's capabilities: %v", tt.req.Capabilities)
			}
			if n.Number != tt.req.Number || n.Carrier != tt.req.Carrier || n.Reserved != tt.req.Reserved ||
				n.FallbackNumber != tt.req.FallbackNumber || n.V != recordVersion {
				t.Fatalf("AddNumber = %+v, want the request's fields", n)
			}
			if n.CountryCode != CountryCode(tt.req.Number) {
				t.Fatalf("CountryCode = %q", n.CountryCode)
			}
			if !slices.Equal(n.Capabilities, tt.wantCaps) {
				t.Fatalf("Capabilities = %v, want %v", n.Capabilities, tt.wantCaps)
			}
			if !n.CreatedAt.Equal(e.clock.Now()) {
				t.Fatalf("CreatedAt = %v, want the clock's %v", n.CreatedAt, e.clock.Now())
			}
			got, err := e.svc.GetNumber(tt.req.Number)
			if err != nil || got.Number.Number != n.Number || got.OpenSessions != 0 {
				t.Fatalf("GetNumber = %v, %v", got, err)
			}
			list := e.svc.ListNumbers()
			if len(list) != 1 || list[0].Number.Number != n.Number || list[0].OpenSessions != 0 {
				t.Fatalf("ListNumbers = %+v", list)
			}
		})
	}
}

func TestAddNumberDuplicate(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumber(t, AddNumberRequest{Number: "+15550000001"})
	_, err := e.svc.AddNumber(context.Background(), AddNumberRequest{Number: "+15550000001", Carrier: "beta"})
	wantErr(t, "second AddNumber", err, ErrNumberExists)
	n, err := e.svc.GetNumber("+15550000001")
	if err != nil || n.Carrier != "alpha" {
		t.Fatalf("the duplicate replaced the number: carrier %q", n.Carrier)
	}
}

func TestAddNumberThatIsAParticipant(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, pair("+15551110001", "+15551110002"))
	_, err := e.svc.AddNumber(context.Background(), AddNumberRequest{Number: "+15551110002", Carrier: "alpha"})
	wantErr(t, "AddNumber of a participant", err, ErrNumberInUse)
	e.close(t, s.ID)
	e.addNumber(t, AddNumberRequest{Number: "+15551110002"})
	checkClean(t, e.db)
}

func TestListNumbersSortedWithUsage(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumbers(t, "+442071234567", "+15550000002", "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{"+15551110001", "+15551110002"}, ProxyNumber: "+15550000002"})
	e.create(t, CreateSessionRequest{Participants: []string{"+15551110003", "+15551110004"}, ProxyNumber: "+15550000002"})
	var got []string
	var usage []int
	for _, u := range e.svc.ListNumbers() {
		got = append(got, u.Number.Number)
		usage = append(usage, u.OpenSessions)
	}
	if !slices.Equal(got, []string{"+15550000001", "+15550000002", "+442071234567"}) || !slices.Equal(usage, []int{0, 2, 0}) {
		t.Fatalf("ListNumbers = %v usage %v", got, usage)
	}
	e.close(t, s.ID)
	if u := e.svc.ListNumbers()[1]; u.OpenSessions != 1 {
		t.Fatalf("after a close, OpenSessions = %d, want 1", u.OpenSessions)
	}
}

func TestDeleteNumber(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001", "+15550000002")

	wantErr(t, "DeleteNumber unknown", e.svc.DeleteNumber(ctx, "+15559999999"), ErrNumberNotFound)

	s := e.create(t, CreateSessionRequest{Participants: []string{"+15551110001", "+15551110002"}, ProxyNumber: "+15550000001"})
	wantErr(t, "DeleteNumber in use", e.svc.DeleteNumber(ctx, "+15550000001"), ErrNumberInUse)
	if _, err := e.svc.GetNumber("+15550000001"); err != nil {
		t.Fatalf("a refused delete removed the number: %v", err)
	}
	e.close(t, s.ID)
	wantErr(t, "DeleteNumber after close", e.svc.DeleteNumber(ctx, "+15550000001"), nil)
	if _, err := e.svc.GetNumber("+15550000001"); !errors.Is(err, ErrNumberNotFound) {
		t.Fatalf("GetNumber after delete: %v", err)
	}
	wantErr(t, "second DeleteNumber", e.svc.DeleteNumber(ctx, "+15550000001"), ErrNumberNotFound)

	// A deleted number is neither allocated nor resolved.
	s2 := e.create(t, pair("+15551110001", "+15551110002"))
	if s2.ProxyNumber != "+15550000002" {
		t.Fatalf("allocated %s, want the remaining number", s2.ProxyNumber)
	}
	_, err := e.svc.ResolveCall(ctx, "+15551110001", "+15550000001")
	resolveErr(t, "ResolveCall to a deleted number", err, ErrUnknownNumber)
	_, err = e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{"+15551110003", "+15551110004"}, ProxyNumber: "+15550000001"})
	wantErr(t, "explicit deleted proxy", err, ErrNumberNotFound)

	// It can be added again.
	e.addNumber(t, AddNumberRequest{Number: "+15550000001", Carrier: "beta"})
	checkClean(t, e.db)
}

func TestDeleteNumberAfterExpirySwept(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	e.create(t, CreateSessionRequest{Participants: []string{"+15551110001", "+15551110002"}, TTL: time.Hour})
	e.clock.Advance(time.Hour)
	if n := e.svc.SweepExpired(ctx); n != 1 {
		t.Fatalf("SweepExpired = %d, want 1", n)
	}
	wantErr(t, "DeleteNumber after the session expired", e.svc.DeleteNumber(ctx, "+15550000001"), nil)
	checkClean(t, e.db)
}

// TestUpdateNumberPersistsAndRetires: a reserved number leaves automatic
// allocation at once, keeps its open sessions, and stays reserved after a
// restart.
func TestUpdateNumberPersistsAndRetires(t *testing.T) {
	fs := vfs.NewMem()
	clock := newFakeClock()
	db := openMemStore(t, fs)
	svc, err := New(db, testOptions(Options{}, clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.AddNumber(ctx, AddNumberRequest{Number: "+15550100001", Carrier: testCarriers[0]}); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{"+15550200001", "+15550200002"}})
	if err != nil {
		t.Fatal(err)
	}
	yes, fb := true, "+442079460000"
	n, err := svc.UpdateNumber(ctx, "+15550100001", UpdateNumberRequest{Reserved: &yes, FallbackNumber: &fb})
	if err != nil || !n.Reserved || n.FallbackNumber != fb {
		t.Fatalf("UpdateNumber = %+v, %v", n, err)
	}
	_, err = svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{"+15550200003", "+15550200004"}})
	wantErr(t, "create after reserve", err, ErrPoolExhausted)
	if _, err := svc.ResolveCall(ctx, "+15550200001", "+15550100001"); err != nil {
		t.Fatalf("open session lost its number: %v", err)
	}
	_, err = svc.ResolveCall(ctx, "+15550200009", "+15550100001")
	if re := resolveErr(t, "stranger", err, ErrOutOfSession); re.Fallback != fb {
		t.Fatalf("fallback = %q, want %q", re.Fallback, fb)
	}
	_, err = svc.UpdateNumber(ctx, "+15550100009", UpdateNumberRequest{Reserved: &yes})
	wantErr(t, "update unknown", err, ErrNumberNotFound)
	db.Close()

	svc2, err := New(openMemStore(t, fs), testOptions(Options{}, clock))
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc2.GetNumber("+15550100001")
	if err != nil || !u.Reserved || u.FallbackNumber != fb || u.OpenSessions != 1 {
		t.Fatalf("after restart: %+v, %v (session %s)", u, err, sess.ID)
	}
}
