package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/veilgw/veil/store"
)

// testCall is a complete, answered call of session sessionID from pA to
// pB, started at start.
func testCall(id, sessionID string, start time.Time) *CallRecord {
	answered := start.Add(3 * time.Second)
	return &CallRecord{
		ID: id, SessionID: sessionID, Proxy: proxy1, From: pA, To: pB,
		Attempts: []CallAttempt{
			{Carrier: "alpha", Status: 503},
			{Carrier: "beta", Reason: "ring_timeout"},
			{Carrier: "gamma", Status: 200},
		},
		Status: 200, StartedAt: start, AnsweredAt: &answered, EndedAt: answered.Add(61500 * time.Millisecond),
		PostDialDelayMS: 1200, EndReason: "callee_hangup",
		Media: &CallMedia{
			CallerToCallee: MediaDirection{Packets: 3075, Bytes: 529000, Lost: 2, Jitter: 40},
			CalleeToCaller: MediaDirection{Packets: 3070, Bytes: 528040, Lost: -1, Jitter: 12},
		},
	}
}

func (e *testEnv) record(tb testing.TB, c *CallRecord) {
	tb.Helper()
	if err := e.svc.RecordCall(context.Background(), c); err != nil {
		tb.Fatalf("RecordCall(%s): %v", c.ID, err)
	}
}

func TestRecordCallRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t)
	sess := e.create(t, CreateSessionRequest{Participants: []string{pA, pB}, ProxyNumber: proxy1})
	in := testCall("call_1", sess.ID, epoch.Add(time.Minute).In(time.FixedZone("CET", 3600)))
	before, _ := json.Marshal(in)
	e.record(t, in)
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Errorf("RecordCall modified its argument:\n%s\n%s", before, after)
	}

	got, err := e.svc.GetCall(ctx, "call_1")
	if err != nil {
		t.Fatal(err)
	}
	answered := epoch.Add(time.Minute + 3*time.Second).UTC()
	want := &CallRecord{
		V: recordVersion, ID: "call_1", SessionID: sess.ID, Proxy: proxy1, From: Mask(pA), To: Mask(pB),
		Attempts: in.Attempts, Status: 200,
		StartedAt: epoch.Add(time.Minute).UTC(), AnsweredAt: &answered, EndedAt: answered.Add(61500 * time.Millisecond),
		DurationMS: 61500, PostDialDelayMS: 1200, EndReason: "callee_hangup", Media: in.Media,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetCall =\n%+v\nwant\n%+v", got, want)
	}

	// The JSON shape: snake_case, empty lists as [], no full number.
	e.record(t, &CallRecord{ID: "call_2", Proxy: proxy1, From: pC, Status: 404, StartedAt: epoch, EndedAt: epoch, EndReason: "out_of_session"})
	got, err = e.svc.GetCall(ctx, "call_2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	for _, s := range []string{`"attempts":[]`, `"duration_ms":0`, `"from":"+1***103"`, `"to":""`, `"end_reason":"out_of_session"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("call_2 JSON %s: want %s", b, s)
		}
	}
	for _, s := range []string{"session_id", "answered_at", "media", "fallback", "post_dial_delay_ms"} {
		if strings.Contains(string(b), `"`+s+`"`) {
			t.Errorf("call_2 JSON %s: want no %s", b, s)
		}
	}
	b, _ = json.Marshal(want.Media)
	if string(b) != `{"caller_to_callee":{"packets":3075,"bytes":529000,"lost":2,"jitter":40},"callee_to_caller":{"packets":3070,"bytes":528040,"lost":-1,"jitter":12}}` {
		t.Errorf("media JSON = %s", b)
	}

	for _, id := range []string{"call_404", "", "a/b", strings.Repeat("x", 65)} {
		if _, err := e.svc.GetCall(ctx, id); !errors.Is(err, ErrCallNotFound) {
			t.Errorf("GetCall(%q) = %v, want ErrCallNotFound", id, err)
		}
	}
	checkClean(t, e.db)
}

func TestRecordCallMasks(t *testing.T) {
	tests := []struct{ in, want string }{
		{pA, "+1***101"}, // full E.164: masked
		{"+442071234567", "+44***567"},
		{"+35312345678", "+353***678"},
		{"+1***101", "+1***101"}, // already masked: kept
		{"+353***678", "+353***678"},
		{"***", "***"},
		{"", ""},
		{"14155550101", "***"}, // a number without +: hidden
		{"anonymous", "***"},   // not a number at all
		{"+1***10123", "***"},  // not Mask's shape
		{"sip:+14155550101@x", "***"},
	}
	e := newResolveEnv(t)
	for i, tt := range tests {
		id := fmt.Sprintf("call_%d", i)
		c := &CallRecord{ID: id, Proxy: proxy1, From: tt.in, To: tt.in, StartedAt: epoch, EndedAt: epoch, EndReason: "failed", Status: 480}
		e.record(t, c)
		got, err := e.svc.GetCall(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.From != tt.want || got.To != tt.want {
			t.Errorf("stored From/To for %q = %q/%q, want %q", tt.in, got.From, got.To, tt.want)
		}
	}
	// Nothing on disk holds a full participant number.
	err := e.db.Scan([]byte(store.PrefixCall), nil, func(k, v []byte) (bool, error) {
		if strings.Contains(string(v), "4155550101") {
			t.Errorf("%s holds a full number: %s", k, v)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecordCallValidation(t *testing.T) {
	e := newResolveEnv(t)
	sess := e.create(t, pair(pA, pB))
	tests := []struct {
		name   string
		change func(c *CallRecord)
		want   error
	}{
		{"valid", func(c *CallRecord) {}, nil},
		{"no id", func(c *CallRecord) { c.ID = "" }, ErrInvalid},
		{"id with /", func(c *CallRecord) { c.ID = "a/b" }, ErrInvalid},
		{"id too long", func(c *CallRecord) { c.ID = strings.Repeat("x", 65) }, ErrInvalid},
		{"id with control character", func(c *CallRecord) { c.ID = "a\nb" }, ErrInvalid},
		{"session id with /", func(c *CallRecord) { c.SessionID = "ses/x" }, ErrInvalid},
		{"unknown session", func(c *CallRecord) { c.SessionID = "ses_nope" }, ErrSessionNotFound},
		{"proxy not E.164", func(c *CallRecord) { c.Proxy = "15550000001" }, ErrInvalid},
		{"no proxy", func(c *CallRecord) { c.Proxy = "" }, ErrInvalid},
		{"status 180", func(c *CallRecord) { c.Status = 180 }, ErrInvalid},
		{"status 700", func(c *CallRecord) { c.Status = 700 }, ErrInvalid},
		{"status 0", func(c *CallRecord) { c.Status = 0; c.AnsweredAt = nil }, nil},
		{"attempt without carrier", func(c *CallRecord) { c.Attempts[0].Carrier = "" }, ErrInvalid},
		{"attempt status 100", func(c *CallRecord) { c.Attempts[0].Status = 100 }, ErrInvalid},
		{"attempt reason with spaces", func(c *CallRecord) { c.Attempts[1].Reason = "ring timeout" }, ErrInvalid},
		{"too many attempts", func(c *CallRecord) { c.Attempts = make([]CallAttempt, 33) }, ErrInvalid},
		{"no end reason", func(c *CallRecord) { c.EndReason = "" }, ErrInvalid},
		{"end reason upper case", func(c *CallRecord) { c.EndReason = "BUSY" }, ErrInvalid},
		{"end reason too long", func(c *CallRecord) { c.EndReason = strings.Repeat("x", 65) }, ErrInvalid},
		{"no start", func(c *CallRecord) { c.StartedAt = time.Time{} }, ErrInvalid},
		{"start before 1970", func(c *CallRecord) { c.StartedAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrInvalid},
		{"end before start", func(c *CallRecord) { c.EndedAt = c.StartedAt.Add(-time.Second) }, ErrInvalid},
		{"answered before start", func(c *CallRecord) { a := c.StartedAt.Add(-time.Second); c.AnsweredAt = &a }, ErrInvalid},
		{"answered after end", func(c *CallRecord) { a := c.EndedAt.Add(time.Second); c.AnsweredAt = &a }, ErrInvalid},
		{"negative post-dial delay", func(c *CallRecord) { c.PostDialDelayMS = -1 }, ErrInvalid},
		{"post-dial delay rounded up past an instant answer", func(c *CallRecord) {
			c.EndedAt, c.AnsweredAt, c.PostDialDelayMS = c.StartedAt, &c.StartedAt, 1
		}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCall(fmt.Sprintf("call_%d", i), sess.ID, epoch)
			tt.change(c)
			err := e.svc.RecordCall(context.Background(), c)
			wantErr(t, "RecordCall", err, tt.want)
			if err != nil && c.ID != "" && !strings.Contains(c.ID, "/") && len(c.ID) <= 64 {
				if _, gerr := e.svc.GetCall(context.Background(), c.ID); !errors.Is(gerr, ErrCallNotFound) {
					t.Errorf("a refused call was stored: %v", gerr)
				}
			}
		})
	}
	wantErr(t, "RecordCall(nil)", e.svc.RecordCall(context.Background(), nil), ErrInvalid)
	checkClean(t, e.db)
}

func TestRecordCallDuration(t *testing.T) {
	e := newResolveEnv(t)
	c := testCall("call_1", "", epoch)
	c.DurationMS = 5 // wrong: RecordCall derives it
	e.record(t, c)
	got, _ := e.svc.GetCall(context.Background(), "call_1")
	if got.DurationMS != 61500 {
		t.Errorf("DurationMS = %d, want 61500 (ended - answered)", got.DurationMS)
	}
	c = testCall("call_2", "", epoch)
	c.AnsweredAt, c.DurationMS, c.Status = nil, 99, 486
	e.record(t, c)
	if got, _ := e.svc.GetCall(context.Background(), "call_2"); got.DurationMS != 0 {
		t.Errorf("unanswered DurationMS = %d, want 0", got.DurationMS)
	}
	// time.Now readings: the duration follows the monotonic clock, the
	// stored times are UTC without it.
	start := time.Now()
	c = testCall("call_3", "", start)
	answered := start.Add(time.Second)
	c.AnsweredAt, c.EndedAt = &answered, start.Add(3*time.Second)
	e.record(t, c)
	got, _ = e.svc.GetCall(context.Background(), "call_3")
	if got.DurationMS != 2000 || got.StartedAt.Location() != time.UTC || !got.StartedAt.Equal(start) {
		t.Errorf("call_3 = %+v, want duration 2000 and UTC times", got)
	}
}

func TestListInteractionsOrder(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t)
	s1 := e.create(t, pair(pA, pB))
	s2 := e.create(t, pair(pC, pD))
	s3 := e.create(t, pair(pA, pE)) // no calls
	// Recorded out of order, across sessions; two calls start at the same
	// instant (ordered by id), one started in another year, one in a
	// time zone whose wall clock sorts differently.
	calls := []struct {
		id, sess string
		at       time.Time
	}{
		{"c5", s1.ID, epoch.Add(5 * time.Hour)},
		{"c1", s1.ID, epoch.Add(-400 * 24 * time.Hour)},
		{"x9", s2.ID, epoch.Add(2 * time.Hour)},
		{"c3b", s1.ID, epoch.Add(3 * time.Hour)},
		{"c3a", s1.ID, epoch.Add(3 * time.Hour)},
		{"c2", s1.ID, epoch.Add(2*time.Hour + 30*time.Minute).In(time.FixedZone("west", -10*3600))},
		{"x1", s2.ID, epoch.Add(time.Hour)},
		{"c4", s1.ID, epoch.Add(4*time.Hour - time.Nanosecond)},
		{"oos", "", epoch.Add(time.Hour)},
	}
	for _, c := range calls {
		e.record(t, testCall(c.id, c.sess, c.at))
	}
	for _, tt := range []struct {
		sess string
		want []string
	}{
		{s1.ID, []string{"c1", "c2", "c3a", "c3b", "c4", "c5"}},
		{s2.ID, []string{"x1", "x9"}},
		{s3.ID, []string{}},
	} {
		list, err := e.svc.ListInteractions(ctx, tt.sess)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, it := range list {
			got = append(got, it.ID)
			if it.Kind != KindCall || it.SessionID != tt.sess || it.Call == nil || it.Call.ID != it.ID || !it.CreatedAt.Equal(it.Call.StartedAt) {
				t.Errorf("interaction %+v", it)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListInteractions(%s) = %v, want %v", tt.sess, got, tt.want)
		}
		if list == nil {
			t.Errorf("ListInteractions(%s) = nil, want an empty list", tt.sess)
		}
	}
	// A closed session keeps its history; an unknown one is not found.
	e.close(t, s1.ID)
	if list, err := e.svc.ListInteractions(ctx, s1.ID); err != nil || len(list) != 6 {
		t.Errorf("closed session: %d interactions, %v", len(list), err)
	}
	_, err := e.svc.ListInteractions(ctx, "ses_unknown")
	wantErr(t, "unknown session", err, ErrSessionNotFound)
	checkClean(t, e.db)
}

func TestCallsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := newFakeClock()
	opts := testOptions(Options{}, clock)
	db1 := openMemStore(t, fs)
	svc1, err := New(db1, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{svc: svc1, db: db1, clock: clock}
	e.addNumbers(t, proxy1)
	sess := e.create(t, pair(pA, pB))
	e.record(t, testCall("c1", sess.ID, epoch))
	e.record(t, testCall("c2", sess.ID, epoch.Add(time.Minute)))
	e.record(t, testCall("oos", "", epoch))
	want, err := svc1.ListInteractions(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := db1.Close(); err != nil {
		t.Fatal(err)
	}

	db2 := openMemStore(t, fs)
	svc2, err := New(db2, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc2.ListInteractions(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Errorf("after restart:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := svc2.GetCall(ctx, "oos"); err != nil {
		t.Errorf("GetCall(oos) after restart: %v", err)
	}
	checkClean(t, db2)
}

func TestCheckCalls(t *testing.T) {
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
		corrupt func(db *store.DB, sess string)
		want    string
	}{
		{"dangling index row", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Delete(store.Key(store.PrefixCall, "c1")) })
		}, "names call c1, which has no record"},
		{"index row of a call never recorded", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set(interactionKey(sess, epoch, "ghost"), []byte(KindCall)) })
		}, "names call ghost"},
		{"call without its row", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Delete(interactionKey(sess, epoch, "c1")) })
		}, "call c1 of session " + "%s" + " has no interaction row"},
		{"row under the wrong time", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) {
				b.Delete(interactionKey(sess, epoch, "c1"))
				b.Set(interactionKey(sess, epoch.Add(time.Second), "c1"), []byte(KindCall))
			})
		}, "does not match call c1"},
		{"row under another session", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set(interactionKey("ses_other", epoch, "c1"), []byte(KindCall)) })
		}, "does not match call c1"},
		{"unknown kind", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set(interactionKey(sess, epoch, "c1"), []byte("fax")) })
		}, "unknown kind"},
		{"malformed row", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set([]byte(store.PrefixInteraction+"nosep"), []byte(KindCall)) })
		}, "malformed interaction key"},
		{"undecodable call", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set(store.Key(store.PrefixCall, "bad"), []byte("{")) })
		}, "call/bad"},
		{"call from the future", func(db *store.DB, sess string) {
			raw(t, db, func(b *store.Batch) { b.Set(store.Key(store.PrefixCall, "v9"), []byte(`{"v":9,"id":"v9"}`)) })
		}, "newer than this build"},
		{"call naming a missing session", func(db *store.DB, sess string) {
			c, _ := json.Marshal(testCall("c9", "ses_gone", epoch))
			raw(t, db, func(b *store.Batch) {
				b.Set(store.Key(store.PrefixCall, "c9"), c)
				b.Set(interactionKey("ses_gone", epoch, "c9"), []byte(KindCall))
			})
		}, "names session ses_gone, which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newResolveEnv(t)
			sess := e.create(t, pair(pA, pB))
			e.record(t, testCall("c1", sess.ID, epoch))
			e.record(t, testCall("oos", "", epoch))
			checkClean(t, e.db)
			tt.corrupt(e.db, sess.ID)
			problems, err := Check(e.db)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, sess.ID)
			}
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p, want)
				if strings.Contains(p, pA) || strings.Contains(p, pB) {
					t.Errorf("problem %q shows a full participant number", p)
				}
			}
			if !found {
				t.Fatalf("Check = %q, want a problem mentioning %q", problems, want)
			}
		})
	}
}

func TestCarriersFor(t *testing.T) {
	ctx := context.Background()
	e := newResolveEnv(t) // proxy1 on alpha, proxy2 on beta
	const fallback = "+442071234567"
	if got := e.svc.CarriersFor(fallback, proxy2); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("no routes: %v, want the proxy's own carrier", got)
	}
	if got := e.svc.CarriersFor(fallback, "+15559999999"); got != nil {
		t.Errorf("no routes, proxy not in the pool: %v, want nil", got)
	}
	if _, err := e.svc.SetRoute(ctx, "+", []string{"delta"}); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.CarriersFor(fallback, proxy1); !slices.Equal(got, []string{"delta"}) {
		t.Errorf("catch-all: %v", got)
	}
	if got := e.svc.CarriersFor(fallback, "+15559999999"); !slices.Equal(got, []string{"delta"}) {
		t.Errorf("catch-all, proxy not in the pool: %v", got)
	}
	if _, err := e.svc.SetRoute(ctx, "+44", []string{"gamma", "beta"}); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.CarriersFor(fallback, proxy1); !slices.Equal(got, []string{"gamma", "beta"}) {
		t.Errorf("longest prefix: %v", got)
	}
	// The same answer a Decision gives for that destination.
	e.create(t, CreateSessionRequest{Participants: []string{pA, fallback}, ProxyNumber: proxy1})
	d, err := e.svc.ResolveCall(ctx, pA, proxy1)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.svc.CarriersFor(fallback, proxy1); !slices.Equal(got, d.Carriers) {
		t.Errorf("CarriersFor = %v, Decision.Carriers = %v", got, d.Carriers)
	}
}
