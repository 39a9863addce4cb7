package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/veilgw/veil/store"
)

// snapshot renders everything a Service answers, for comparing two
// Services. It only asks questions that change nothing: listing stored
// sessions closes the expired ones it meets, so the session records are
// read from the database instead.
func snapshot(tb testing.TB, svc *Service, participants, numbers []string) string {
	tb.Helper()
	ctx := context.Background()
	var b strings.Builder
	enc := func(label string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", label, data)
	}
	enc("numbers", svc.ListNumbers())
	enc("routes", svc.ListRoutes())
	enc("open", listAll(tb, svc, SessionFilter{State: StateOpen}))
	err := svc.db.Scan([]byte(store.PrefixSession), nil, func(k, v []byte) (bool, error) {
		fmt.Fprintf(&b, "%s: %s\n", k, v)
		return true, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	st := svc.Stats()
	enc("counts", []int{st.OpenSessions, st.Numbers, st.Routes})
	for _, p := range participants {
		for _, n := range numbers {
			for _, kind := range []string{"call", "text"} {
				resolve := svc.ResolveCall
				if kind == "text" {
					resolve = svc.ResolveMessage
				}
				d, err := resolve(ctx, p, n)
				fmt.Fprintf(&b, "%s %s -> %s: %s\n", kind, p, n, describeDecision(d, err))
			}
		}
	}
	return b.String()
}

func describeDecision(d Decision, err error) string {
	if err != nil {
		re, ok := err.(*ResolveError)
		if !ok {
			return "error " + err.Error()
		}
		return fmt.Sprintf("%v session=%q proxy=%q fallback=%q", re.Reason, re.SessionID, re.Proxy, re.Fallback)
	}
	return fmt.Sprintf("%+v", d)
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := newFakeClock()
	opts := testOptions(Options{FallbackNumber: support, DefaultTTL: 3 * time.Hour}, clock)

	db1 := openMemStore(t, fs)
	svc1, err := New(db1, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{svc: svc1, db: db1, clock: clock}
	numbers := []string{"+15550000001", "+15550000002", "+442071230001", "+15550000009"}
	e.addNumber(t, AddNumberRequest{Number: numbers[0], Carrier: "alpha"})
	e.addNumber(t, AddNumberRequest{Number: numbers[1], Carrier: "beta", FallbackNumber: support2, Capabilities: []Capability{CapVoice}})
	e.addNumber(t, AddNumberRequest{Number: numbers[2], Carrier: "gamma"})
	e.addNumber(t, AddNumberRequest{Number: numbers[3], Carrier: "alpha", Reserved: true})
	for p, cs := range map[string][]string{"+": {"delta"}, "+44": {"gamma", "alpha"}, "+1415": {"beta"}} {
		if _, err := svc1.SetRoute(ctx, p, cs); err != nil {
			t.Fatal(err)
		}
	}
	const uk = "+447700900001"
	participants := []string{pA, pB, pC, pD, pE, uk}
	var sessions []*Session
	for _, req := range []CreateSessionRequest{
		{Participants: []string{pA, pB}, Record: true, UniqueName: "booking-1"},
		{Participants: []string{pA, pC}, Mode: ModeVoice},
		{Participants: []string{pA, pD}, Mode: ModeSMS, TTL: time.Hour}, // will expire
		{Participants: []string{pB, pC}},                                // will close
		{Participants: []string{uk, pE}, Mode: ModeSMS},
		{Participants: []string{pD, pE}, ProxyNumber: numbers[3]},
		{Participants: []string{pC, pD}, UniqueName: "booking-2"}, // will close
	} {
		clock.Advance(time.Second)
		sessions = append(sessions, e.create(t, req))
	}
	e.close(t, sessions[3].ID)
	e.close(t, sessions[6].ID)
	clock.Advance(time.Hour) // sessions[2] expires, unswept
	// A create after a close: B and C's old pair is reusable.
	sessions = append(sessions, e.create(t, CreateSessionRequest{Participants: []string{pC, pB}, UniqueName: "booking-2"}))
	checkClean(t, db1)
	before := snapshot(t, svc1, participants, numbers)
	statsBefore := svc1.Stats()
	if err := db1.Close(); err != nil {
		t.Fatal(err)
	}

	db2 := openMemStore(t, fs)
	checkClean(t, db2)
	svc2, err := New(db2, opts)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	after := snapshot(t, svc2, participants, numbers)
	if before != after {
		t.Fatalf("state differs after restart:\n%s", lineDiff(before, after))
	}
	if st := svc2.Stats(); st.OpenSessions != statsBefore.OpenSessions || st.Numbers != 4 || st.Routes != 3 {
		t.Fatalf("Stats after restart = %+v, before %+v", st, statsBefore)
	}

	// The expired session loaded at start is on the expiry schedule.
	if n := svc2.SweepExpired(ctx); n != 1 {
		t.Fatalf("SweepExpired after restart = %d, want 1 (the session that expired before it)", n)
	}
	if g, _ := svc2.GetSession(ctx, sessions[2].ID); g.State != StateClosed || g.CloseReason != CloseReasonExpired {
		t.Fatalf("expired session after restart = %+v", g)
	}

	// The reloaded index still enforces the core rule and unique names.
	e2 := &testEnv{svc: svc2, db: db2, clock: clock}
	_, err = svc2.CreateSession(ctx, CreateSessionRequest{Participants: []string{pE, "+14155550199"}, UniqueName: "booking-1"})
	wantErr(t, "unique_name held before the restart", err, ErrUniqueNameInUse)
	_, err = svc2.CreateSession(ctx, CreateSessionRequest{Participants: []string{pB, pA}, ProxyNumber: sessions[0].ProxyNumber})
	wantErr(t, "explicit proxy held before the restart", err, ErrProxyNotFree)
	held := map[string]bool{}
	for _, s := range listAll(t, svc2, SessionFilter{State: StateOpen, Participant: pA}) {
		held[s.ProxyNumber] = true
	}
	for range 3 {
		s, err := svc2.CreateSession(ctx, pair(pA, "+14155550177"))
		if err != nil {
			break
		}
		if held[s.ProxyNumber] {
			t.Fatalf("after restart A was given %s twice", s.ProxyNumber)
		}
		held[s.ProxyNumber] = true
	}
	// Remaining sessions still expire later.
	clock.Advance(3 * time.Hour)
	if n := svc2.SweepExpired(ctx); n == 0 {
		t.Fatal("sessions loaded at start never expire")
	}
	if open := listAll(t, svc2, SessionFilter{State: StateOpen}); len(open) != 0 {
		t.Fatalf("%d sessions still open after every expiry", len(open))
	}
	e2.close(t, sessions[0].ID)
	checkClean(t, db2)
}

// lineDiff shows the lines of a and b that differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}

func TestNewRefusesRecordsFromTheFuture(t *testing.T) {
	for _, prefix := range []string{store.PrefixNumber, store.PrefixRoute} {
		t.Run(prefix, func(t *testing.T) {
			fs := vfs.NewMem()
			db := openMemStore(t, fs)
			b := db.NewBatch()
			b.Set(store.Key(prefix, "+15550000001"), []byte(`{"v":2,"number":"+15550000001","prefix":"+1","carrier":"alpha"}`))
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := New(db, testOptions(Options{}, newFakeClock())); err == nil {
				t.Fatal("New loaded a record of version 2")
			}
		})
	}
}

func TestCheckReportsCorruption(t *testing.T) {
	type world struct {
		open, closed, named *Session
	}
	raw := func(tb testing.TB, db *store.DB, fn func(b *store.Batch)) {
		tb.Helper()
		b := db.NewBatch()
		fn(b)
		if err := b.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		corrupt func(t *testing.T, db *store.DB, w world)
		want    string // a substring of some reported problem
	}{
		{"index row deleted", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) {
				b.Delete(store.Key(store.PrefixSessionIndex, w.open.Participants[1].Number, w.open.ProxyNumber))
			})
		}, "has no index row"},
		{"stray index row for a missing session", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) {
				b.Set(store.Key(store.PrefixSessionIndex, "+14155550199", w.open.ProxyNumber), []byte("ses_missing"))
			})
		}, "index row for participant"},
		{"index row left by a closed session", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) {
				b.Set(store.Key(store.PrefixSessionIndex, w.closed.Participants[0].Number, w.closed.ProxyNumber), []byte(w.closed.ID))
			})
		}, w0closedHint},
		{"index row naming the wrong session", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) {
				b.Set(store.Key(store.PrefixSessionIndex, w.open.Participants[0].Number, w.open.ProxyNumber), []byte(w.named.ID))
			})
		}, "index row for participant"},
		{"malformed index key", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) { b.Set([]byte(store.PrefixSessionIndex+"nosep"), []byte("x")) })
		}, "malformed index key"},
		{"two open sessions share a pair", func(t *testing.T, db *store.DB, w world) {
			dup := *w.open
			dup.ID = "ses_dup"
			raw(t, db, func(b *store.Batch) { b.SetJSON(store.Key(store.PrefixSession, dup.ID), &dup) })
		}, "share participant"},
		{"open session on a number not in the pool", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) { b.Delete(store.Key(store.PrefixNumber, w.open.ProxyNumber)) })
		}, "not in the pool"},
		{"closed session reopened without its rows", func(t *testing.T, db *store.DB, w world) {
			re := *w.closed
			re.State = StateOpen
			re.ClosedAt, re.CloseReason = nil, ""
			raw(t, db, func(b *store.Batch) { b.SetJSON(store.Key(store.PrefixSession, re.ID), &re) })
		}, "has no index row"},
		{"unique_name row deleted", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) { b.Delete(store.Key(store.PrefixSessionUnique, w.named.UniqueName)) })
		}, "no unique_name row"},
		{"stray unique_name row", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) { b.Set(store.Key(store.PrefixSessionUnique, "ghost"), []byte(w.open.ID)) })
		}, "unique_name row names session"},
		{"undecodable session record", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) { b.Set(store.Key(store.PrefixSession, "ses_bad"), []byte("{not json")) })
		}, "ses_bad"},
		{"session record from the future", func(t *testing.T, db *store.DB, w world) {
			raw(t, db, func(b *store.Batch) {
				b.Set(store.Key(store.PrefixSession, "ses_v9"), []byte(`{"v":9,"id":"ses_v9","state":"open"}`))
			})
		}, "newer than this build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			e.addNumbers(t, "+15550000001", "+15550000002")
			w := world{
				open:   e.create(t, pair(pA, pB)),
				closed: e.create(t, pair(pA, pC)),
				named:  e.create(t, CreateSessionRequest{Participants: []string{pD, pE}, UniqueName: "booking-1"}),
			}
			e.close(t, w.closed.ID)
			checkClean(t, e.db)
			tt.corrupt(t, e.db, w)
			problems, err := Check(e.db)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			want := tt.want
			if want == w0closedHint {
				want = "names session " + w.closed.ID
			}
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p, want)
				for _, full := range []string{pA, pB, pC, pD, pE} {
					if strings.Contains(p, full) {
						t.Errorf("problem %q shows a full participant number", p)
					}
				}
			}
			if !found {
				t.Fatalf("Check = %q, want a problem mentioning %q", problems, want)
			}
		})
	}
}

// w0closedHint stands for "the problem names the closed session's id",
// which is only known once the session exists.
const w0closedHint = "\x00closed"
