package routing

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

// testCarriers are the carriers every test Service is configured with.
var testCarriers = []string{"alpha", "beta", "gamma", "delta"}

// epoch is where every fake clock starts.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is an injected clock that only moves when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// testEnv is a Service on an in-memory store with a fake clock.
type testEnv struct {
	svc   *Service
	db    *store.DB
	clock *fakeClock
}

// newEnv opens a Service on a fresh in-memory store. Zero fields of opts
// get test defaults: the test carriers, a fake clock, a silent logger.
func newEnv(tb testing.TB, opts Options) *testEnv {
	tb.Helper()
	db := storetest.Open(tb)
	clock := newFakeClock()
	opts = testOptions(opts, clock)
	svc, err := New(db, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return &testEnv{svc: svc, db: db, clock: clock}
}

func testOptions(opts Options, clock *fakeClock) Options {
	if opts.Carriers == nil {
		opts.Carriers = testCarriers
	}
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

// openMemStore opens (or reopens) the database "veil" on fs.
func openMemStore(tb testing.TB, fs vfs.FS) *store.DB {
	tb.Helper()
	db, err := store.Open("veil", store.Options{FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("opening store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// addNumber adds a proxy number or fails the test.
func (e *testEnv) addNumber(tb testing.TB, req AddNumberRequest) *Number {
	tb.Helper()
	if req.Carrier == "" {
		req.Carrier = "alpha"
	}
	n, err := e.svc.AddNumber(context.Background(), req)
	if err != nil {
		tb.Fatalf("AddNumber(%s): %v", req.Number, err)
	}
	return n
}

// addNumbers adds plain (voice+sms, not reserved) numbers on carrier alpha.
func (e *testEnv) addNumbers(tb testing.TB, nums ...string) {
	tb.Helper()
	for _, n := range nums {
		e.addNumber(tb, AddNumberRequest{Number: n})
	}
}

// create opens a session or fails the test.
func (e *testEnv) create(tb testing.TB, req CreateSessionRequest) *Session {
	tb.Helper()
	s, err := e.svc.CreateSession(context.Background(), req)
	if err != nil {
		tb.Fatalf("CreateSession(%v): %v", req.Participants, err)
	}
	return s
}

// pair is shorthand for a CreateSessionRequest between a and b.
func pair(a, b string) CreateSessionRequest {
	return CreateSessionRequest{Participants: []string{a, b}}
}

func (e *testEnv) close(tb testing.TB, id string) *Session {
	tb.Helper()
	s, err := e.svc.CloseSession(context.Background(), id)
	if err != nil {
		tb.Fatalf("CloseSession(%s): %v", id, err)
	}
	return s
}

// listAll pages through ListSessions with f and returns every session.
func listAll(tb testing.TB, svc *Service, f SessionFilter) []*Session {
	tb.Helper()
	var out []*Session
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tb.Fatalf("ListSessions(%+v): cursor never ends", f)
		}
		page, next, err := svc.ListSessions(context.Background(), f)
		if err != nil {
			tb.Fatalf("ListSessions(%+v): %v", f, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if len(page) == 0 || next != page[len(page)-1].ID {
			tb.Fatalf("ListSessions(%+v): cursor %q is not the last id of the page", f, next)
		}
		f.After = next
	}
}

func ids(list []*Session) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

// checkClean fails the test when routing.Check reports any problem.
func checkClean(tb testing.TB, db *store.DB) {
	tb.Helper()
	problems, err := Check(db)
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	if len(problems) > 0 {
		tb.Fatalf("Check found %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// assertCoreRule fails when two sessions of list share a participant on one
// proxy number.
func assertCoreRule(tb testing.TB, list []*Session) {
	tb.Helper()
	held := make(map[pairKey]string)
	for _, s := range list {
		for _, p := range s.Participants {
			k := pairKey{p.Number, s.ProxyNumber}
			if other, dup := held[k]; dup {
				tb.Fatalf("core rule broken: sessions %s and %s both give %s proxy %s", other, s.ID, p.Number, s.ProxyNumber)
			}
			held[k] = s.ID
		}
	}
}

// wantErr fails unless err matches want (nil means success expected).
func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// resolveErr checks that err is a *ResolveError with the given reason and
// returns it.
func resolveErr(tb testing.TB, what string, err, reason error) *ResolveError {
	tb.Helper()
	var re *ResolveError
	if !errors.As(err, &re) {
		tb.Fatalf("%s: error %v (%T), want a *ResolveError", what, err, err)
	}
	if !errors.Is(err, reason) || re.Reason != reason {
		tb.Fatalf("%s: reason %v, want %v", what, re.Reason, reason)
	}
	return re
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
