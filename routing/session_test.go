package routing

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	pA = "+14155550101"
	pB = "+14155550102"
	pC = "+14155550103"
	pD = "+14155550104"
	pE = "+14155550105"
)

func TestCreateSessionValidation(t *testing.T) {
	const (
		pool1   = "+15550000001"
		smsOnly = "+15550000009"
	)
	tests := []struct {
		name   string
		mutate func(r *CreateSessionRequest, now time.Time)
		want   error
	}{
		{"ok", func(*CreateSessionRequest, time.Time) {}, nil},
		{"ttl at the maximum", func(r *CreateSessionRequest, _ time.Time) { r.TTL = 48 * time.Hour }, nil},
		{"expires_at at the maximum", func(r *CreateSessionRequest, now time.Time) { r.ExpiresAt = now.Add(48 * time.Hour) }, nil},
		{"unique_name of 128 bytes", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = strings.Repeat("é", 64) }, nil},
		{"unique_name with spaces and unicode", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "booking 42 — Zürich" }, nil},
		{"no participants", func(r *CreateSessionRequest, _ time.Time) { r.Participants = nil }, ErrInvalid},
		{"one participant", func(r *CreateSessionRequest, _ time.Time) { r.Participants = []string{pA} }, ErrInvalid},
		{"three participants", func(r *CreateSessionRequest, _ time.Time) { r.Participants = []string{pA, pB, pC} }, ErrInvalid},
		{"bad first participant", func(r *CreateSessionRequest, _ time.Time) { r.Participants[0] = "4155550101" }, ErrInvalid},
		{"bad second participant", func(r *CreateSessionRequest, _ time.Time) { r.Participants[1] = "+1415555010x" }, ErrInvalid},
		{"same participant twice", func(r *CreateSessionRequest, _ time.Time) { r.Participants[1] = r.Participants[0] }, ErrInvalid},
		{"participant is a pool number", func(r *CreateSessionRequest, _ time.Time) { r.Participants[1] = pool1 }, ErrInvalid},
		{"participant is a reserved pool number", func(r *CreateSessionRequest, _ time.Time) { r.Participants[0] = smsOnly }, ErrInvalid},
		{"bad mode", func(r *CreateSessionRequest, _ time.Time) { r.Mode = "video" }, ErrInvalid},
		{"mode in capitals", func(r *CreateSessionRequest, _ time.Time) { r.Mode = "VOICE" }, ErrInvalid},
		{"ttl and expires_at", func(r *CreateSessionRequest, now time.Time) {
			r.TTL = time.Hour
			r.ExpiresAt = now.Add(time.Hour)
		}, ErrInvalid},
		{"negative ttl", func(r *CreateSessionRequest, _ time.Time) { r.TTL = -time.Second }, ErrInvalid},
		{"ttl over the maximum", func(r *CreateSessionRequest, _ time.Time) { r.TTL = 48*time.Hour + time.Second }, ErrInvalid},
		{"expires_at in the past", func(r *CreateSessionRequest, now time.Time) { r.ExpiresAt = now.Add(-time.Minute) }, ErrInvalid},
		{"expires_at now", func(r *CreateSessionRequest, now time.Time) { r.ExpiresAt = now }, ErrInvalid},
		{"expires_at over the maximum", func(r *CreateSessionRequest, now time.Time) { r.ExpiresAt = now.Add(48*time.Hour + time.Second) }, ErrInvalid},
		{"unique_name too long", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = strings.Repeat("x", 129) }, ErrInvalid},
		{"unique_name with newline", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "a\nb" }, ErrInvalid},
		{"unique_name with NUL", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "a\x00b" }, ErrInvalid},
		{"unique_name with DEL", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "a\x7fb" }, ErrInvalid},
		{"unique_name with C1 control", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "a\u0085b" }, ErrInvalid},
		{"unique_name not UTF-8", func(r *CreateSessionRequest, _ time.Time) { r.UniqueName = "a\xffb" }, ErrInvalid},
		{"bad proxy_number", func(r *CreateSessionRequest, _ time.Time) { r.ProxyNumber = "5550000001" }, ErrInvalid},
		{"unknown proxy_number", func(r *CreateSessionRequest, _ time.Time) { r.ProxyNumber = "+15550000077" }, ErrNumberNotFound},
		{"proxy_number without the mode", func(r *CreateSessionRequest, _ time.Time) { r.ProxyNumber = smsOnly; r.Mode = ModeVoice }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{MaxTTL: 48 * time.Hour})
			e.addNumbers(t, pool1)
			e.addNumber(t, AddNumberRequest{Number: smsOnly, Capabilities: []Capability{CapSMS}, Reserved: true})
			req := pair(pA, pB)
			tt.mutate(&req, e.clock.Now())
			s, err := e.svc.CreateSession(context.Background(), req)
			wantErr(t, "CreateSession", err, tt.want)
			all := listAll(t, e.svc, SessionFilter{})
			if tt.want != nil {
				if s != nil {
					t.Fatalf("CreateSession returned %+v with an error", s)
				}
				if len(all) != 0 {
					t.Fatalf("a rejected create left %d sessions", len(all))
				}
				if st := e.svc.Stats(); st.OpenSessions != 0 || st.Created != 0 {
					t.Fatalf("a rejected create counted: %+v", st)
				}
			} else if len(all) != 1 || all[0].ID != s.ID {
				t.Fatalf("stored sessions %v, want [%s]", ids(all), s.ID)
			}
			checkClean(t, e.db)
		})
	}
}

func TestCreateSessionFields(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{DefaultTTL: 2 * time.Hour})
	e.addNumbers(t, "+15550000001", "+15550000002", "+15550000003")
	now := e.clock.Now()

	s := e.create(t, CreateSessionRequest{Participants: []string{pB, pA}, Record: true, UniqueName: "booking-1"})
	if !strings.HasPrefix(s.ID, "ses_") || s.V != recordVersion || s.State != StateOpen || s.Mode != ModeVoiceSMS ||
		!s.Record || s.UniqueName != "booking-1" || s.ProxyNumber == "" || s.ClosedAt != nil || s.CloseReason != "" {
		t.Fatalf("CreateSession = %+v", s)
	}
	if got := []string{s.Participants[0].Number, s.Participants[1].Number}; !slices.Equal(got, []string{pB, pA}) {
		t.Fatalf("participants = %v, want the request's order", got)
	}
	if !s.CreatedAt.Equal(now) || !s.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("created %v expires %v, want now and now+DefaultTTL", s.CreatedAt, s.ExpiresAt)
	}

	s2 := e.create(t, CreateSessionRequest{Participants: []string{pA, pC}, Mode: ModeSMS, TTL: 90 * time.Second})
	if s2.Mode != ModeSMS || s2.Record || !s2.ExpiresAt.Equal(now.Add(90*time.Second)) {
		t.Fatalf("CreateSession with ttl = %+v", s2)
	}
	at := now.Add(5 * time.Hour).In(time.FixedZone("UTC+2", 2*3600))
	s3 := e.create(t, CreateSessionRequest{Participants: []string{pA, pD}, Mode: ModeVoice, ExpiresAt: at})
	if !s3.ExpiresAt.Equal(at) || s3.ExpiresAt.Location() != time.UTC {
		t.Fatalf("ExpiresAt = %v, want %v in UTC", s3.ExpiresAt, at)
	}

	// The returned session is a copy.
	s.Participants[0].Number = pE
	s.State = StateClosed
	got, err := e.svc.GetSession(ctx, s.ID)
	if err != nil || got.Participants[0].Number != pB || got.State != StateOpen {
		t.Fatalf("GetSession after mutating the returned copy = %+v, %v", got, err)
	}
	got.Participants[1].Number = pE
	again, _ := e.svc.GetSession(ctx, s.ID)
	if again.Participants[1].Number != pA {
		t.Fatal("GetSession returned the Service's own session")
	}
	if st := e.svc.Stats(); st.Created != 3 || st.OpenSessions != 3 {
		t.Fatalf("Stats = %+v", st)
	}
	checkClean(t, e.db)
}

func TestUniqueName(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001", "+15550000002")

	s1 := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, UniqueName: "booking-1", TTL: time.Hour})
	_, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pC, pD}, UniqueName: "booking-1"})
	wantErr(t, "same unique_name while open", err, ErrUniqueNameInUse)
	e.create(t, CreateSessionRequest{Participants: []string{pC, pD}, UniqueName: "booking-2"})

	e.close(t, s1.ID)
	s3 := e.create(t, CreateSessionRequest{Participants: []string{pC, pE}, UniqueName: "booking-1", TTL: time.Hour})

	// An expired holder does not block its name, even before a sweep.
	e.clock.Advance(time.Hour)
	s4 := e.create(t, CreateSessionRequest{Participants: []string{pA, pE}, UniqueName: "booking-1"})
	old, err := e.svc.GetSession(ctx, s3.ID)
	if err != nil || old.State != StateClosed || old.CloseReason != CloseReasonExpired {
		t.Fatalf("the expired holder = %+v, %v; want closed (expired)", old, err)
	}
	got := listAll(t, e.svc, SessionFilter{UniqueName: "booking-1", State: StateOpen})
	if !slices.Equal(ids(got), []string{s4.ID}) {
		t.Fatalf("open sessions named booking-1 = %v, want [%s]", ids(got), s4.ID)
	}
	if got := listAll(t, e.svc, SessionFilter{UniqueName: "booking-1"}); len(got) != 3 {
		t.Fatalf("all sessions named booking-1 = %d, want 3", len(got))
	}
	checkClean(t, e.db)
}

func TestExplicitProxyNumber(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	e.addNumber(t, AddNumberRequest{Number: "+15550000002", Reserved: true})

	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, ProxyNumber: "+15550000002"})
	if s.ProxyNumber != "+15550000002" {
		t.Fatalf("proxy = %s, want the reserved number asked for", s.ProxyNumber)
	}
	// A already holds it, with B.
	_, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pC, pA}, ProxyNumber: "+15550000002"})
	wantErr(t, "explicit proxy held by a participant", err, ErrProxyNotFree)
	// Other participants may share the number.
	e.create(t, CreateSessionRequest{Participants: []string{pC, pD}, ProxyNumber: "+15550000002"})
	// Without asking, A gets the other number.
	if s := e.create(t, pair(pA, pC)); s.ProxyNumber != "+15550000001" {
		t.Fatalf("allocated %s", s.ProxyNumber)
	}
	e.close(t, s.ID)
	e.create(t, CreateSessionRequest{Participants: []string{pA, pE}, ProxyNumber: "+15550000002"})
	assertCoreRule(t, listAll(t, e.svc, SessionFilter{State: StateOpen}))
	checkClean(t, e.db)
}

func TestReservedNeverAllocated(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumber(t, AddNumberRequest{Number: "+15550000001", Reserved: true})
	e.addNumber(t, AddNumberRequest{Number: "+442071234567", Reserved: true})
	for _, req := range []CreateSessionRequest{pair(pA, pB), pair("+447700900001", "+447700900002")} {
		_, err := e.svc.CreateSession(ctx, req)
		wantErr(t, "CreateSession over reserved numbers", err, ErrPoolExhausted)
	}
	if st := e.svc.Stats(); st.PoolExhausted != 2 || st.OpenSessions != 0 || st.Created != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if all := listAll(t, e.svc, SessionFilter{}); len(all) != 0 {
		t.Fatalf("pool exhaustion wrote %d sessions", len(all))
	}
	checkClean(t, e.db)
}

func TestCountryPreference(t *testing.T) {
	const (
		us1, uk1, fr1 = "+15550000001", "+442071230001", "+33123450001"
		ukA           = "+447700900001"
		usB, usC      = "+14155550102", "+14155550103"
		deD, deE      = "+4915112340004", "+4915112340005"
	)
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, us1, uk1, fr1)
	steps := []struct {
		a, b string
		want string // "" means ErrPoolExhausted
	}{
		{ukA, usB, uk1}, // the first participant's country first
		{usC, ukA, us1}, // then the first's again (ukA now holds uk1 only)
		{ukA, deD, fr1}, // ukA holds uk1 and us1; Germany has none: anywhere
		{ukA, deE, ""},  // ukA holds every number
		{deD, usB, us1}, // deD's country has none, usB's does
		{deD, deE, uk1}, // neither country has one: anywhere free for both (deD holds fr1, us1)
	}
	for _, st := range steps {
		s, err := e.svc.CreateSession(ctx, pair(st.a, st.b))
		if st.want == "" {
			wantErr(t, "CreateSession("+st.a+", "+st.b+")", err, ErrPoolExhausted)
			continue
		}
		if err != nil {
			t.Fatalf("CreateSession(%s, %s): %v", st.a, st.b, err)
		}
		if s.ProxyNumber != st.want {
			t.Fatalf("CreateSession(%s, %s) got proxy %s, want %s", st.a, st.b, s.ProxyNumber, st.want)
		}
	}
	checkClean(t, e.db)
}

func TestCountryPreferenceFallsBackToSecondParticipant(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumbers(t, "+442071230001", "+15550000001", "+15550000002", "+33123450001")
	// The first participant's country (+49) has no number, the second's
	// (+44) has one.
	for range 5 {
		s := e.create(t, pair("+4915112340001", "+447700900001"))
		if s.ProxyNumber != "+442071230001" {
			t.Fatalf("proxy = %s, want the +44 number", s.ProxyNumber)
		}
		e.close(t, s.ID)
	}
}

func TestModeVersusCapabilities(t *testing.T) {
	const (
		smsOnly   = "+15550000001"
		voiceOnly = "+15550000002"
		both      = "+15550000003"
	)
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumber(t, AddNumberRequest{Number: smsOnly, Capabilities: []Capability{CapSMS}})
	e.addNumber(t, AddNumberRequest{Number: voiceOnly, Capabilities: []Capability{CapVoice}})
	e.addNumber(t, AddNumberRequest{Number: both})

	got := map[Mode][]string{}
	for _, m := range []Mode{ModeVoice, ModeSMS, ModeVoiceSMS} {
		for _, partner := range []string{pB, pC, pD} {
			s, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pA, partner}, Mode: m})
			if errors.Is(err, ErrPoolExhausted) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got[m] = append(got[m], s.ProxyNumber)
			e.close(t, s.ID) // keep only the mode's own limits in play
		}
	}
	// Each create is closed again, so every attempt succeeds on some number;
	// what matters is which numbers were ever handed out.
	for m, nums := range got {
		for _, n := range nums {
			switch {
			case m.Allows(CapVoice) && n == smsOnly:
				t.Errorf("%s session got the sms-only number", m)
			case m.Allows(CapSMS) && n == voiceOnly:
				t.Errorf("%s session got the voice-only number", m)
			}
		}
	}

	// Held open, voice sessions of A exhaust after two numbers.
	for i, partner := range []string{pB, pC, pD} {
		_, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pA, partner}, Mode: ModeVoice})
		if i < 2 {
			wantErr(t, "voice session", err, nil)
		} else {
			wantErr(t, "third voice session", err, ErrPoolExhausted)
		}
	}
	// The sms-only number is still free for A, for sms.
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pD}, Mode: ModeSMS})
	if s.ProxyNumber != smsOnly {
		t.Fatalf("sms session got %s, want the sms-only number", s.ProxyNumber)
	}
	// voice+sms needs both on one number.
	_, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pE, "+14155550199"}, Mode: ModeVoiceSMS})
	wantErr(t, "voice+sms", err, nil)
	_, err = e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{pE, "+14155550198"}, Mode: ModeVoiceSMS})
	wantErr(t, "second voice+sms of E", err, ErrPoolExhausted)
	checkClean(t, e.db)
}

func TestCloseSessionIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, UniqueName: "u"})
	e.clock.Advance(time.Minute)
	closedAt := e.clock.Now()
	c := e.close(t, s.ID)
	if c.State != StateClosed || c.CloseReason != CloseReasonAPI || c.ClosedAt == nil || !c.ClosedAt.Equal(closedAt) || c.ID != s.ID {
		t.Fatalf("CloseSession = %+v", c)
	}
	e.clock.Advance(time.Minute)
	c2 := e.close(t, s.ID)
	if c2.State != StateClosed || c2.CloseReason != CloseReasonAPI || !c2.ClosedAt.Equal(closedAt) {
		t.Fatalf("second CloseSession = %+v, want the first close unchanged", c2)
	}
	g, err := e.svc.GetSession(ctx, s.ID)
	if err != nil || g.State != StateClosed || !g.ClosedAt.Equal(closedAt) {
		t.Fatalf("GetSession = %+v, %v", g, err)
	}
	_, err = e.svc.CloseSession(ctx, "ses_nope")
	wantErr(t, "CloseSession unknown", err, ErrSessionNotFound)
	_, err = e.svc.GetSession(ctx, "ses_nope")
	wantErr(t, "GetSession unknown", err, ErrSessionNotFound)
	if st := e.svc.Stats(); st.Closed != 1 || st.OpenSessions != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	checkClean(t, e.db)
}

func TestGetSessionExpired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: time.Hour})

	e.clock.Advance(time.Hour - time.Nanosecond)
	g, err := e.svc.GetSession(ctx, s.ID)
	if err != nil || g.State != StateOpen {
		t.Fatalf("GetSession just before expiry = %+v, %v", g, err)
	}
	at := e.clock.Advance(time.Nanosecond) // exactly ExpiresAt: expired
	g, err = e.svc.GetSession(ctx, s.ID)
	if err != nil || g.State != StateClosed || g.CloseReason != CloseReasonExpired || g.ClosedAt == nil || !g.ClosedAt.Equal(at) {
		t.Fatalf("GetSession at expiry = %+v, %v; want closed, reason expired", g, err)
	}
	// It stays closed, and the pair is free again.
	e.clock.Advance(time.Hour)
	g, _ = e.svc.GetSession(ctx, s.ID)
	if g.State != StateClosed || !g.ClosedAt.Equal(at) {
		t.Fatalf("GetSession later = %+v", g)
	}
	if s2 := e.create(t, pair(pA, pB)); s2.ProxyNumber != s.ProxyNumber {
		t.Fatalf("proxy = %s", s2.ProxyNumber)
	}
	if st := e.svc.Stats(); st.Expired != 1 || st.Closed != 0 || st.OpenSessions != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	if _, err := e.svc.ListInteractions(ctx, s.ID); err != nil {
		t.Fatalf("ListInteractions of a closed session: %v", err)
	}
	if _, err := e.svc.ListInteractions(ctx, "ses_nope"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("ListInteractions of an unknown session: %v", err)
	}
	checkClean(t, e.db)
}

// TestExpiredPairIsFreeBeforeSweep: a pool of one number, A's session with
// B expired but not swept; A and C still get the number.
func TestExpiredPairIsFreeBeforeSweep(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: time.Minute})
	_, err := e.svc.CreateSession(ctx, pair(pA, pC))
	wantErr(t, "before expiry", err, ErrPoolExhausted)
	e.clock.Advance(time.Minute)
	s2 := e.create(t, pair(pC, pA))
	if s2.ProxyNumber != s.ProxyNumber {
		t.Fatalf("proxy = %s", s2.ProxyNumber)
	}
	old, _ := e.svc.GetSession(ctx, s.ID)
	if old.State != StateClosed || old.CloseReason != CloseReasonExpired {
		t.Fatalf("the expired session = %+v, want closed (expired)", old)
	}
	checkClean(t, e.db)
}

func TestSweepExpired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s1 := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: 1 * time.Hour})
	s2 := e.create(t, CreateSessionRequest{Participants: []string{pC, pD}, TTL: 2 * time.Hour})
	s3 := e.create(t, CreateSessionRequest{Participants: []string{pE, "+14155550106"}, TTL: 3 * time.Hour})
	s4 := e.create(t, CreateSessionRequest{Participants: []string{"+14155550107", "+14155550108"}, TTL: time.Hour})
	e.close(t, s4.ID) // closed through the API: its schedule entry is stale

	if n := e.svc.SweepExpired(ctx); n != 0 {
		t.Fatalf("SweepExpired before any expiry = %d", n)
	}
	e.clock.Advance(2 * time.Hour)
	if n := e.svc.SweepExpired(ctx); n != 2 {
		t.Fatalf("SweepExpired = %d, want 2", n)
	}
	if n := e.svc.SweepExpired(ctx); n != 0 {
		t.Fatalf("second SweepExpired = %d, want 0", n)
	}
	for _, id := range []string{s1.ID, s2.ID} {
		g, _ := e.svc.GetSession(ctx, id)
		if g.State != StateClosed || g.CloseReason != CloseReasonExpired {
			t.Fatalf("%s after sweep = %+v", id, g)
		}
	}
	if g, _ := e.svc.GetSession(ctx, s4.ID); g.CloseReason != CloseReasonAPI {
		t.Fatalf("the API-closed session was re-closed: %+v", g)
	}
	open := listAll(t, e.svc, SessionFilter{State: StateOpen})
	if !slices.Equal(ids(open), []string{s3.ID}) {
		t.Fatalf("open after sweep = %v, want [%s]", ids(open), s3.ID)
	}
	// Their pairs are free and resolve as closed.
	_, err := e.svc.ResolveCall(ctx, pA, "+15550000001")
	if re := resolveErr(t, "ResolveCall after sweep", err, ErrSessionClosed); re.SessionID != s1.ID {
		t.Fatalf("SessionID = %s, want %s", re.SessionID, s1.ID)
	}
	e.create(t, pair(pA, pC))
	st := e.svc.Stats()
	if st.Expired != 2 || st.Closed != 1 || st.OpenSessions != 2 || st.ExpiryBacklog != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	checkClean(t, e.db)
}

// TestSweepAfterCanceledSweep: a sweep interrupted by its context must not
// lose the sessions it did not get to; the next sweep closes them.
func TestSweepAfterCanceledSweep(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: time.Hour})
	e.clock.Advance(time.Hour)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if n := e.svc.SweepExpired(canceled); n != 0 {
		t.Fatalf("SweepExpired(canceled) = %d, want 0", n)
	}
	if n := e.svc.SweepExpired(context.Background()); n != 1 {
		t.Errorf("SweepExpired after a canceled sweep = %d, want 1: session %s was dropped from the expiry schedule", n, s.ID)
	}
	stored, err := e.svc.loadSession(s.ID)
	if err != nil || stored.State != StateClosed {
		t.Errorf("stored session = %+v, %v; want it closed by the sweep", stored, err)
	}
}

// TestRunSweeps: Run closes expired sessions on its tick, and at once when
// a lookup meets an expired session (the kick), long before the next tick.
func TestRunSweeps(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		kick     bool
	}{
		{"tick", time.Millisecond, false},
		{"kick", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{SweepInterval: tt.interval})
			e.addNumbers(t, "+15550000001")
			s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: time.Hour})
			e.clock.Advance(time.Hour)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.svc.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
			if tt.kick {
				_, err := e.svc.ResolveCall(ctx, pA, "+15550000001")
				resolveErr(t, "ResolveCall of an expired session", err, ErrSessionClosed)
			}
			// Poll with a deadline: Run runs on its own goroutine.
			deadline := time.Now().Add(10 * time.Second)
			for e.svc.Stats().Expired != 1 {
				if time.Now().After(deadline) {
					t.Fatal("Run did not sweep the expired session within 10s")
				}
				runtime.Gosched()
			}
			stored, err := e.svc.loadSession(s.ID)
			if err != nil || stored.State != StateClosed || stored.CloseReason != CloseReasonExpired {
				t.Fatalf("stored = %+v, %v", stored, err)
			}
		})
	}
}

func TestListSessionsFilters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001", "+15550000002")
	mk := func(req CreateSessionRequest) string {
		t.Helper()
		e.clock.Advance(time.Second) // ids sort by creation time
		return e.create(t, req).ID
	}
	open1 := mk(CreateSessionRequest{Participants: []string{pA, pB}, UniqueName: "u1", ProxyNumber: "+15550000001"})
	open2 := mk(CreateSessionRequest{Participants: []string{pA, pC}, TTL: time.Hour, ProxyNumber: "+15550000002"})
	closed1 := mk(CreateSessionRequest{Participants: []string{pB, pD}, UniqueName: "u2", ProxyNumber: "+15550000002"})
	e.close(t, closed1)
	expired1 := mk(CreateSessionRequest{Participants: []string{pD, pE}, TTL: time.Minute, UniqueName: "u3", ProxyNumber: "+15550000001"})
	e.clock.Advance(time.Minute) // expired1 expires, unswept

	tests := []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"all", SessionFilter{}, []string{open1, open2, closed1, expired1}},
		{"open", SessionFilter{State: StateOpen}, []string{open1, open2}},
		{"closed", SessionFilter{State: StateClosed}, []string{closed1, expired1}},
		{"participant", SessionFilter{Participant: pC}, []string{open2}},
		{"participant with closed and expired", SessionFilter{Participant: pD}, []string{closed1, expired1}},
		{"participant open", SessionFilter{Participant: pA, State: StateOpen}, []string{open1, open2}},
		{"participant closed", SessionFilter{Participant: pB, State: StateClosed}, []string{closed1}},
		{"participant expired", SessionFilter{Participant: pE, State: StateOpen}, nil},
		{"unknown participant", SessionFilter{Participant: "+14155550199"}, nil},
		{"unique_name", SessionFilter{UniqueName: "u2"}, []string{closed1}},
		{"unique_name open", SessionFilter{UniqueName: "u1", State: StateOpen}, []string{open1}},
		{"unique_name closed, open path", SessionFilter{UniqueName: "u2", State: StateOpen}, nil},
		{"proxy", SessionFilter{ProxyNumber: "+15550000002"}, []string{open2, closed1}},
		{"proxy open", SessionFilter{ProxyNumber: "+15550000001", State: StateOpen}, []string{open1}},
		{"participant and unique_name", SessionFilter{Participant: pA, UniqueName: "u1"}, []string{open1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(listAll(t, e.svc, tt.f))
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("ListSessions(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
	_, _, err := e.svc.ListSessions(ctx, SessionFilter{State: "gone"})
	wantErr(t, "ListSessions bad state", err, ErrInvalid)
}

// TestListSessionsStateOfExpired: a session whose expiry passed is listed as
// closed (ListSessions{State: closed} selects it), so it must not come back
// saying "open", and GetSession agrees.
func TestListSessionsStateOfExpired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	s := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, TTL: time.Minute})
	e.clock.Advance(time.Minute)
	for _, f := range []SessionFilter{{State: StateClosed}, {}, {Participant: pA}} {
		list := listAll(t, e.svc, f)
		if len(list) != 1 || list[0].ID != s.ID {
			t.Fatalf("ListSessions(%+v) = %v", f, ids(list))
		}
		if list[0].State != StateClosed {
			t.Errorf("ListSessions(%+v) lists expired session %s with state %q, want %q (GetSession says closed)",
				f, s.ID, list[0].State, StateClosed)
		}
	}
	if g, _ := e.svc.GetSession(ctx, s.ID); g.State != StateClosed {
		t.Fatalf("GetSession = %+v", g)
	}
}

func TestListSessionsPagination(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	const hub = "+14155550100"
	var nums []string
	for i := range 10 {
		nums = append(nums, fmt.Sprintf("+155500000%02d", i))
	}
	e.addNumbers(t, nums...)
	var all, hubAll, hubOpen, open []string
	for i := range 40 {
		e.clock.Advance(time.Second)
		partner := fmt.Sprintf("+1415555%04d", i)
		a := fmt.Sprintf("+1212555%04d", i)
		var s *Session
		if i%2 == 0 {
			s = e.create(t, pair(hub, partner))
			hubAll = append(hubAll, s.ID)
			if i >= 20 { // the last 10 hub sessions stay open
				hubOpen = append(hubOpen, s.ID)
				open = append(open, s.ID)
			} else {
				e.close(t, s.ID)
			}
		} else {
			s = e.create(t, pair(a, partner))
			open = append(open, s.ID)
		}
		all = append(all, s.ID)
	}
	tests := []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"stored, all", SessionFilter{}, all},
		{"stored, by participant", SessionFilter{Participant: hub}, hubAll},
		{"memory, open", SessionFilter{State: StateOpen}, open},
		{"memory, open by participant", SessionFilter{State: StateOpen, Participant: hub}, hubOpen},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 3, 7, 10, 39, 40, 41, 1000} {
			f := tt.f
			f.Limit = limit
			var got []string
			pages := 0
			for {
				page, next, err := e.svc.ListSessions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page) > limit {
					t.Fatalf("%s limit %d: page of %d", tt.name, limit, len(page))
				}
				got = append(got, ids(page)...)
				if next == "" {
					break
				}
				if len(page) != limit || next != page[len(page)-1].ID {
					t.Fatalf("%s limit %d: page of %d with cursor %q", tt.name, limit, len(page), next)
				}
				f.After = next
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%s limit %d: paged ids = %v, want %v", tt.name, limit, got, tt.want)
			}
			if wantPages := max(1, (len(tt.want)+limit-1)/limit); pages != wantPages {
				t.Errorf("%s limit %d: %d pages, want %d", tt.name, limit, pages, wantPages)
			}
		}
	}
}

func TestListSessionsDefaultLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	for i := range 101 {
		e.create(t, pair(fmt.Sprintf("+1415555%04d", i), fmt.Sprintf("+1212555%04d", i)))
	}
	for _, state := range []State{"", StateOpen} {
		page, next, err := e.svc.ListSessions(ctx, SessionFilter{State: state})
		if err != nil || len(page) != 100 || next != page[99].ID {
			t.Fatalf("state %q: page of %d, next %q, err %v; want 100 and a cursor", state, len(page), next, err)
		}
		rest, next, err := e.svc.ListSessions(ctx, SessionFilter{State: state, After: next})
		if err != nil || len(rest) != 1 || next != "" {
			t.Fatalf("state %q: second page of %d, next %q, err %v", state, len(rest), next, err)
		}
	}
}
