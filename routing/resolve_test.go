package routing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	proxy1   = "+15550000001" // carrier alpha, no fallback of its own
	proxy2   = "+15550000002" // carrier beta, fallback support2
	support  = "+18005550100" // the global fallback
	support2 = "+18005550102"
)

// newResolveEnv is a pool of two numbers and a global fallback.
func newResolveEnv(tb testing.TB) *testEnv {
	tb.Helper()
	e := newEnv(tb, Options{FallbackNumber: support})
	e.addNumber(tb, AddNumberRequest{Number: proxy1, Carrier: "alpha"})
	e.addNumber(tb, AddNumberRequest{Number: proxy2, Carrier: "beta", FallbackNumber: support2})
	return e
}

func TestResolveHit(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t)
	rec := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, Record: true, ProxyNumber: proxy1})
	plain := e.create(t, CreateSessionRequest{Participants: []string{pA, pC}, ProxyNumber: proxy2})
	tests := []struct {
		from, to string
		want     Decision
	}{
		{pA, proxy1, Decision{SessionID: rec.ID, Proxy: proxy1, CallerID: proxy1, Callee: pB, Record: true, Carriers: []string{"alpha"}}},
		{pB, proxy1, Decision{SessionID: rec.ID, Proxy: proxy1, CallerID: proxy1, Callee: pA, Record: true, Carriers: []string{"alpha"}}},
		{pA, proxy2, Decision{SessionID: plain.ID, Proxy: proxy2, CallerID: proxy2, Callee: pC, Record: false, Carriers: []string{"beta"}}},
		{pC, proxy2, Decision{SessionID: plain.ID, Proxy: proxy2, CallerID: proxy2, Callee: pA, Record: false, Carriers: []string{"beta"}}},
	}
	for _, tt := range tests {
		for kind, resolve := range map[string]func(context.Context, string, string) (Decision, error){
			"call": e.svc.ResolveCall, "message": e.svc.ResolveMessage,
		} {
			d, err := resolve(ctx, tt.from, tt.to)
			if err != nil {
				t.Fatalf("%s %s -> %s: %v", kind, tt.from, tt.to, err)
			}
			if !decisionEqual(d, tt.want) {
				t.Fatalf("%s %s -> %s = %+v, want %+v", kind, tt.from, tt.to, d, tt.want)
			}
		}
	}
}

func decisionEqual(a, b Decision) bool {
	return a.SessionID == b.SessionID && a.Proxy == b.Proxy && a.CallerID == b.CallerID &&
		a.Callee == b.Callee && a.Record == b.Record && slices.Equal(a.Carriers, b.Carriers)
}

func TestResolveErrors(t *testing.T) {
	type step func(t *testing.T, e *testEnv) (sessionID string)
	open := func(mode Mode, proxy string) step {
		return func(t *testing.T, e *testEnv) string {
			return e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, Mode: mode, ProxyNumber: proxy, TTL: time.Hour}).ID
		}
	}
	closed := func(proxy string) step {
		return func(t *testing.T, e *testEnv) string {
			id := open(ModeVoiceSMS, proxy)(t, e)
			e.close(t, id)
			return id
		}
	}
	expired := func(sweep bool) step {
		return func(t *testing.T, e *testEnv) string {
			id := open(ModeVoiceSMS, proxy1)(t, e)
			e.clock.Advance(time.Hour)
			if sweep {
				e.svc.SweepExpired(context.Background())
			}
			return id
		}
	}
	none := func(*testing.T, *testEnv) string { return "" }
	tests := []struct {
		name         string
		setup        step
		from, to     string
		call         bool
		reason       error
		wantSession  bool
		wantFallback string
	}{
		{"unknown number", none, pA, "+15559999999", true, ErrUnknownNumber, false, ""},
		{"unknown number, message", none, pA, "+15559999999", false, ErrUnknownNumber, false, ""},
		{"participant number is not a proxy", open(ModeVoiceSMS, proxy1), pA, pB, true, ErrUnknownNumber, false, ""},
		{"out of session, global fallback", none, pA, proxy1, true, ErrOutOfSession, false, support},
		{"out of session, number's fallback", none, pA, proxy2, false, ErrOutOfSession, false, support2},
		{"stranger calls an open session's proxy", open(ModeVoiceSMS, proxy1), pC, proxy1, true, ErrOutOfSession, false, support},
		{"participant calls another proxy", open(ModeVoiceSMS, proxy1), pA, proxy2, true, ErrOutOfSession, false, support2},
		{"closed", closed(proxy1), pB, proxy1, true, ErrSessionClosed, true, support},
		{"closed, message, number's fallback", closed(proxy2), pA, proxy2, false, ErrSessionClosed, true, support2},
		{"expired, not swept", expired(false), pA, proxy1, true, ErrSessionClosed, true, support},
		{"expired, not swept, message", expired(false), pB, proxy1, false, ErrSessionClosed, true, support},
		{"expired and swept", expired(true), pA, proxy1, true, ErrSessionClosed, true, support},
		{"call in an sms session", open(ModeSMS, proxy1), pA, proxy1, true, ErrModeNotAllowed, true, support},
		{"text in a voice session", open(ModeVoice, proxy2), pB, proxy2, false, ErrModeNotAllowed, true, support2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newResolveEnv(t)
			id := tt.setup(t, e)
			resolve := e.svc.ResolveMessage
			if tt.call {
				resolve = e.svc.ResolveCall
			}
			d, err := resolve(context.Background(), tt.from, tt.to)
			re := resolveErr(t, "resolve", err, tt.reason)
			if d.SessionID != "" || d.Callee != "" || d.Carriers != nil {
				t.Fatalf("a failed resolve returned a decision: %+v", d)
			}
			wantID := ""
			if tt.wantSession {
				wantID = id
			}
			if re.SessionID != wantID {
				t.Fatalf("SessionID = %q, want %q", re.SessionID, wantID)
			}
			if re.Fallback != tt.wantFallback {
				t.Fatalf("Fallback = %q, want %q", re.Fallback, tt.wantFallback)
			}
			if tt.reason != ErrUnknownNumber && re.Proxy != tt.to {
				t.Fatalf("Proxy = %q, want %q", re.Proxy, tt.to)
			}
			if re.Error() == "" || (wantID != "" && !strings.Contains(re.Error(), wantID)) {
				t.Fatalf("Error() = %q", re.Error())
			}
		})
	}
}

func TestResolveNoGlobalFallbackRejects(t *testing.T) {
	e := newEnv(t, Options{})
	e.addNumbers(t, proxy1)
	_, err := e.svc.ResolveCall(context.Background(), pA, proxy1)
	if re := resolveErr(t, "ResolveCall", err, ErrOutOfSession); re.Fallback != "" {
		t.Fatalf("Fallback = %q, want none", re.Fallback)
	}
}

// TestResolveAfterProxyReuse: after A-B closes and A-C opens on the same
// proxy, A reaches C, C reaches A, and B is told its session closed.
func TestResolveAfterProxyReuse(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t)
	ab := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, ProxyNumber: proxy1})
	e.close(t, ab.ID)
	ac := e.create(t, CreateSessionRequest{Participants: []string{pA, pC}, ProxyNumber: proxy1})

	d, err := e.svc.ResolveCall(ctx, pA, proxy1)
	if err != nil || d.SessionID != ac.ID || d.Callee != pC {
		t.Fatalf("A -> proxy = %+v, %v; want C", d, err)
	}
	d, err = e.svc.ResolveMessage(ctx, pC, proxy1)
	if err != nil || d.SessionID != ac.ID || d.Callee != pA {
		t.Fatalf("C -> proxy = %+v, %v; want A", d, err)
	}
	_, err = e.svc.ResolveCall(ctx, pB, proxy1)
	if re := resolveErr(t, "B -> proxy", err, ErrSessionClosed); re.SessionID != ab.ID {
		t.Fatalf("SessionID = %q, want B's old session %s", re.SessionID, ab.ID)
	}
	// The closed session's number errors unwrap for callers using errors.Is.
	if !errors.Is(err, ErrSessionClosed) || errors.Is(err, ErrOutOfSession) {
		t.Fatalf("errors.Is on %v", err)
	}
}

// TestResolveCarriersAfterRouteReplaced: a decision taken before a route
// is replaced keeps the carriers it was given.
func TestResolveCarriersAfterRouteReplaced(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t)
	if _, err := e.svc.SetRoute(ctx, "+1", []string{"gamma", "delta"}); err != nil {
		t.Fatal(err)
	}
	e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, ProxyNumber: proxy1})
	d1, _ := e.svc.ResolveCall(ctx, pA, proxy1)
	if _, err := e.svc.SetRoute(ctx, "+1", []string{"beta"}); err != nil {
		t.Fatal(err)
	}
	d2, _ := e.svc.ResolveCall(ctx, pA, proxy1)
	if !slices.Equal(d1.Carriers, []string{"gamma", "delta"}) || !slices.Equal(d2.Carriers, []string{"beta"}) {
		t.Fatalf("carriers before/after replacing the route: %v / %v", d1.Carriers, d2.Carriers)
	}
}
