package routing

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veilgw/veil/store"
)

var allocatorSeed = flag.Uint64("allocator.seed", 0, "run TestAllocatorProperty with this seed only")

// TestAllocatorProperty runs random sequences of creates, closes, clock
// moves, sweeps and lookups against an independent model of the open
// sessions, and checks after every step that the Service agrees with it:
//
//   - the core rule holds in memory (ListSessions, every step) and on disk
//     (the index rows the step touched, every step; Check, every 100);
//   - ErrPoolExhausted only when no non-reserved number that carries the
//     mode is free for both participants (a session past its expiry counts
//     as free: the Service closes it lazily);
//   - a successful create picked a number that was free, not reserved, able
//     to carry the mode, in the first participant's country when one there
//     was free, else in the second's when one there was;
//   - every participant's call and message to every proxy number resolves
//     as the model says.
func TestAllocatorProperty(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 0x5eed, 20260101}
	ops := 2000
	switch {
	case testing.Short():
		seeds, ops = seeds[:3], 300
	case raceEnabled:
		seeds = seeds[:4]
	}
	if *allocatorSeed != 0 {
		seeds = []uint64{*allocatorSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			newAllocModel(t, seed).run(ops)
		})
	}
}

type modelSession struct {
	id, a, b, proxy string
	seq             int // creation order: ids are random, the replay must not be
	mode            Mode
	record          bool
	unique          string
	expires         time.Time
	closed          bool // closed through the API, a sweep, or seen closed
}

func (s *modelSession) live(now time.Time) bool { return !s.closed && now.Before(s.expires) }

func (s *modelSession) other(p string) string {
	if p == s.a {
		return s.b
	}
	return s.a
}

type allocModel struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	e     *testEnv
	ctx   context.Context
	op    int
	nums  []*Number
	byNum map[string]*Number
	parts []string

	sessions map[string]*modelSession
	order    []string                  // session ids in creation order
	byPair   map[pairKey]*modelSession // the newest session of each pair
	byUnique map[string]*modelSession  // the newest session of each name
	last     map[pairKey]string        // what sesslast/ holds
	touched  map[pairKey]bool          // pairs of the sessions the step changed
	setup    string                    // the pool and participants, for failure messages
	history  []string                  // recent steps, for failure messages
	stats    map[string]int            // outcome counts, logged at the end
}

const fallbackGlobal = "+18005550100"

func newAllocModel(t *testing.T, seed uint64) *allocModel {
	t.Helper()
	m := &allocModel{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ctx: context.Background(),
		byNum: map[string]*Number{}, sessions: map[string]*modelSession{}, byPair: map[pairKey]*modelSession{},
		byUnique: map[string]*modelSession{}, last: map[pairKey]string{}, touched: map[pairKey]bool{}, stats: map[string]int{},
	}
	m.e = newEnv(t, Options{FallbackNumber: fallbackGlobal, MaxTTL: time.Hour})

	numberFormats := []string{"+1555000%04d", "+4420700%05d", "+3314000%04d"}
	k := 3 + m.rng.IntN(6)
	for i := range k {
		req := AddNumberRequest{
			Number:  fmt.Sprintf(numberFormats[m.rng.IntN(len(numberFormats))], i),
			Carrier: testCarriers[m.rng.IntN(2)],
		}
		switch r := m.rng.IntN(20); {
		case r < 4:
			req.Capabilities = []Capability{CapSMS}
		case r < 6:
			req.Capabilities = []Capability{CapVoice}
		}
		req.Reserved = m.rng.IntN(5) == 0
		if m.rng.IntN(4) == 0 {
			req.FallbackNumber = fmt.Sprintf("+1800555%04d", i)
		}
		n := m.e.addNumber(t, req)
		m.nums = append(m.nums, n)
		m.byNum[n.Number] = n
	}
	partFormats := []string{"+1415555%04d", "+447700900%03d", "+33612%06d", "+49151%07d"}
	for i := range 4 + m.rng.IntN(9) {
		m.parts = append(m.parts, fmt.Sprintf(partFormats[m.rng.IntN(len(partFormats))], i))
	}
	var desc []string
	for _, n := range m.nums {
		desc = append(desc, fmt.Sprintf("%s%v reserved=%v", n.Number, n.Capabilities, n.Reserved))
	}
	m.setup = fmt.Sprintf("pool: %s\nparticipants: %v", strings.Join(desc, ", "), m.parts)
	return m
}

func (m *allocModel) logf(format string, args ...any) {
	m.history = append(m.history, fmt.Sprintf("#%d ", m.op)+fmt.Sprintf(format, args...))
	if len(m.history) > 40 {
		m.history = m.history[len(m.history)-40:]
	}
}

func (m *allocModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d, op %d: %s\n%s\nrecent steps:\n  %s\nrerun with: go test ./routing -run 'TestAllocatorProperty' -allocator.seed=%d",
		m.seed, m.op, fmt.Sprintf(format, args...), m.setup, strings.Join(m.history, "\n  "), m.seed)
}

func (m *allocModel) run(ops int) {
	for m.op = 0; m.op < ops; m.op++ {
		switch r := m.rng.IntN(100); {
		case r < 50:
			m.create()
		case r < 65:
			m.close()
		case r < 80:
			d := time.Duration(m.rng.IntN(6)) * time.Minute
			if m.rng.IntN(2) == 0 {
				d += time.Duration(m.rng.IntN(60)) * time.Second
			}
			m.e.clock.Advance(d)
			m.logf("advance %v", d)
		case r < 86:
			m.sweep()
		default:
			m.get()
		}
		// Every step checks memory and the touched index rows; Check reads
		// every record ever written (and Pebble's tombstones), so after
		// every step it would take minutes: it runs every 100 steps.
		m.verify(m.op%25 == 0, m.op%100 == 0)
	}
	m.e.clock.Advance(2 * time.Hour)
	m.sweep()
	m.verify(true, true)
	if open := listAll(m.t, m.e.svc, SessionFilter{State: StateOpen}); len(open) != 0 {
		m.fatalf("%d sessions still open after every expiry and a sweep", len(open))
	}
	m.t.Logf("outcomes: %v", m.stats)
}

// free reports whether num is free for participant p at now.
func (m *allocModel) free(num, p string, now time.Time) bool {
	h := m.byPair[pairKey{p, num}]
	return h == nil || !h.live(now)
}

func (m *allocModel) create() {
	now := m.e.clock.Now()
	i := m.rng.IntN(len(m.parts))
	j := (i + 1 + m.rng.IntN(len(m.parts)-1)) % len(m.parts)
	a, b := m.parts[i], m.parts[j]
	req := CreateSessionRequest{
		Participants: []string{a, b},
		Mode:         []Mode{ModeVoice, ModeSMS, ModeVoiceSMS}[m.rng.IntN(3)],
		Record:       m.rng.IntN(2) == 0,
		TTL:          time.Duration(1+m.rng.IntN(20)) * time.Minute,
	}
	if m.rng.IntN(10) == 0 {
		req.ProxyNumber = m.nums[m.rng.IntN(len(m.nums))].Number
	}
	if m.rng.IntN(5) == 0 {
		req.UniqueName = fmt.Sprintf("booking-%d", m.rng.IntN(4))
	}
	freeBoth := func(n *Number) bool { return m.free(n.Number, a, now) && m.free(n.Number, b, now) }

	// What the model expects.
	var want error
	var candidates []*Number
	if u := m.byUnique[req.UniqueName]; req.UniqueName != "" && u != nil && u.live(now) {
		want = ErrUniqueNameInUse
	} else if req.ProxyNumber != "" {
		n := m.byNum[req.ProxyNumber]
		switch {
		case !n.supports(req.Mode):
			want = ErrInvalid
		case !freeBoth(n):
			want = ErrProxyNotFree
		default:
			candidates = []*Number{n}
		}
	} else {
		var all []*Number
		for _, n := range m.nums {
			if !n.Reserved && n.supports(req.Mode) && freeBoth(n) {
				all = append(all, n)
			}
		}
		if len(all) == 0 {
			want = ErrPoolExhausted
		}
		// Country preference: the first participant's country, then the
		// second's, then anywhere.
		candidates = all
		for _, p := range []string{a, b} {
			var in []*Number
			for _, n := range all {
				if n.CountryCode == CountryCode(p) {
					in = append(in, n)
				}
			}
			if len(in) > 0 {
				candidates = in
				break
			}
		}
	}

	s, err := m.e.svc.CreateSession(m.ctx, req)
	m.logf("create %s %s mode=%s proxy=%q unique=%q ttl=%v -> %v %v", a, b, req.Mode, req.ProxyNumber, req.UniqueName, req.TTL, sessionDesc(s), err)
	if want != nil {
		m.stats["create:"+want.Error()]++
		if !errors.Is(err, want) {
			m.fatalf("CreateSession = %v, %v; the model expected %v", sessionDesc(s), err, want)
		}
		return
	}
	m.stats["create:ok"]++
	if err != nil {
		var free []string
		for _, n := range candidates {
			free = append(free, n.Number)
		}
		m.fatalf("CreateSession failed with %v, but the model has %v free for both", err, free)
	}
	if !slices.ContainsFunc(candidates, func(n *Number) bool { return n.Number == s.ProxyNumber }) {
		n := m.byNum[s.ProxyNumber]
		switch {
		case n == nil:
			m.fatalf("allocated %s, which is not in the pool", s.ProxyNumber)
		case !freeBoth(n):
			m.fatalf("allocated %s, which a participant already holds in an open session", s.ProxyNumber)
		case n.Reserved && req.ProxyNumber == "":
			m.fatalf("allocated reserved number %s", s.ProxyNumber)
		case !n.supports(req.Mode):
			m.fatalf("allocated %s (%v) to a %s session", s.ProxyNumber, n.Capabilities, req.Mode)
		default:
			m.fatalf("allocated %s (country %s) though a number in a preferred country was free: %v", s.ProxyNumber, n.CountryCode, numbersOf(candidates))
		}
	}
	if s.State != StateOpen || s.Mode != req.Mode || s.Record != req.Record || !s.ExpiresAt.Equal(now.Add(req.TTL)) ||
		len(s.Participants) != 2 || s.Participants[0].Number != a || s.Participants[1].Number != b || s.UniqueName != req.UniqueName {
		m.fatalf("CreateSession returned %+v for %+v", s, req)
	}
	if m.sessions[s.ID] != nil {
		m.fatalf("session id %s handed out twice", s.ID)
	}
	ms := &modelSession{id: s.ID, seq: len(m.order), a: a, b: b, proxy: s.ProxyNumber, mode: req.Mode, record: req.Record, unique: req.UniqueName, expires: s.ExpiresAt}
	m.sessions[s.ID] = ms
	m.order = append(m.order, s.ID)
	for _, p := range []string{a, b} {
		k := pairKey{p, s.ProxyNumber}
		m.byPair[k] = ms
		m.last[k] = s.ID
		m.touched[k] = true
	}
	if ms.unique != "" {
		m.byUnique[ms.unique] = ms
	}
	m.verifyResolve([]string{a, b}, m.nums)
}

func (m *allocModel) touch(ms *modelSession) {
	m.touched[pairKey{ms.a, ms.proxy}] = true
	m.touched[pairKey{ms.b, ms.proxy}] = true
}

func numbersOf(list []*Number) []string {
	var out []string
	for _, n := range list {
		out = append(out, n.Number)
	}
	return out
}

func sessionDesc(s *Session) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s on %s", s.ID, s.ProxyNumber)
}

// pickSession returns a random session, live ones more often.
func (m *allocModel) pickSession() *modelSession {
	if len(m.order) == 0 {
		return nil
	}
	now := m.e.clock.Now()
	if m.rng.IntN(4) != 0 {
		var live []*modelSession
		for _, s := range m.byPair {
			if s.live(now) {
				live = append(live, s)
			}
		}
		if len(live) > 0 {
			slices.SortFunc(live, func(x, y *modelSession) int { return x.seq - y.seq }) // map order is random
			return live[m.rng.IntN(len(live))]
		}
	}
	return m.sessions[m.order[m.rng.IntN(len(m.order))]]
}

func (m *allocModel) close() {
	ms := m.pickSession()
	if ms == nil {
		return
	}
	now := m.e.clock.Now()
	wasLive, wasClosed := ms.live(now), ms.closed
	s, err := m.e.svc.CloseSession(m.ctx, ms.id)
	m.logf("close %s (live=%v) -> %v", ms.id, wasLive, err)
	if err != nil {
		m.fatalf("CloseSession(%s): %v", ms.id, err)
	}
	if s.State != StateClosed || s.ClosedAt == nil || s.ID != ms.id {
		m.fatalf("CloseSession(%s) = %+v", ms.id, s)
	}
	if wasLive && (s.CloseReason != CloseReasonAPI || !s.ClosedAt.Equal(now)) {
		m.fatalf("CloseSession of a live session = %+v, want closed now by the API", s)
	}
	if wasClosed && s.ClosedAt.After(now) {
		m.fatalf("CloseSession of a closed session changed it: %+v", s)
	}
	ms.closed = true
	m.touch(ms)
	m.stats["close"]++
	m.verifyResolve([]string{ms.a, ms.b}, []*Number{m.byNum[ms.proxy]})
}

func (m *allocModel) sweep() {
	now := m.e.clock.Now()
	var due []*modelSession
	for _, ms := range m.sessions {
		if !ms.closed && !ms.live(now) {
			due = append(due, ms)
		}
	}
	n := m.e.svc.SweepExpired(m.ctx)
	m.logf("sweep -> %d (model: %d expired, some maybe closed lazily)", n, len(due))
	if n > len(due) {
		m.fatalf("SweepExpired closed %d sessions, only %d had expired", n, len(due))
	}
	for _, ms := range due {
		ms.closed = true
		m.touch(ms)
		s, err := m.e.svc.loadSession(ms.id)
		if err != nil || s.State != StateClosed || s.CloseReason != CloseReasonExpired {
			m.fatalf("after a sweep expired session %s is stored as %+v, %v", ms.id, s, err)
		}
	}
	live := 0
	for _, ms := range m.sessions {
		if ms.live(now) {
			live++
		}
	}
	if st := m.e.svc.Stats(); st.OpenSessions != live {
		m.fatalf("after a sweep Stats.OpenSessions = %d, the model has %d live sessions", st.OpenSessions, live)
	}
	m.stats["sweep"]++
}

func (m *allocModel) get() {
	ms := m.pickSession()
	if ms == nil {
		return
	}
	now := m.e.clock.Now()
	s, err := m.e.svc.GetSession(m.ctx, ms.id)
	m.logf("get %s -> %v", ms.id, err)
	if err != nil {
		m.fatalf("GetSession(%s): %v", ms.id, err)
	}
	switch {
	case ms.live(now):
		if s.State != StateOpen {
			m.fatalf("GetSession of a live session = %+v", s)
		}
	case !ms.closed: // expired, maybe not yet closed by the Service
		if s.State != StateClosed || s.CloseReason != CloseReasonExpired {
			m.fatalf("GetSession of an expired session = %+v, want closed (expired)", s)
		}
		ms.closed = true
		m.touch(ms)
	default:
		if s.State != StateClosed {
			m.fatalf("GetSession of a closed session = %+v", s)
		}
	}
	m.stats["get"]++
}

// verify checks after a step that the open sessions in memory are the
// model's and obey the core rule, and that the index rows on disk of the
// pairs the step touched are the model's. With allPairs it checks every
// pair's row and resolves every participant against every number; with
// check it runs Check over the whole store (whose cost grows with every
// session ever created).
func (m *allocModel) verify(allPairs, check bool) {
	m.t.Helper()
	now := m.e.clock.Now()
	open := listAll(m.t, m.e.svc, SessionFilter{State: StateOpen, Limit: 1000})
	assertCoreRuleModel(m, open)
	var want []string
	for _, ms := range m.sessions {
		if ms.live(now) {
			want = append(want, ms.id)
		}
	}
	if got := ids(open); !slices.Equal(sortedCopy(got), sortedCopy(want)) {
		m.fatalf("ListSessions(open) = %v, the model has %v", sortedCopy(got), sortedCopy(want))
	}
	// sessidx/ rows, read one by one (a scan would wade through every
	// deleted row): each pair's row names the model's live session of that
	// pair, is gone once that session is closed, and may linger while it is
	// expired but not yet closed. Stray rows are Check's job below.
	for k, h := range m.byPair {
		if !allPairs && !m.touched[k] {
			continue
		}
		v, err := m.e.db.Get(store.Key(store.PrefixSessionIndex, k.participant, k.proxy))
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			m.fatalf("reading the index: %v", err)
		case h.live(now) && string(v) != h.id:
			m.fatalf("index row of %v = %q (%v), want live session %s", k, v, err, h.id)
		case h.closed && err == nil:
			m.fatalf("index row of %v = %q, but its session %s is closed", k, v, h.id)
		case err == nil && string(v) != h.id:
			m.fatalf("index row of %v = %q, want %s or none", k, v, h.id)
		}
	}
	clear(m.touched)
	if allPairs {
		m.verifyResolve(m.parts, m.nums)
	}
	if check {
		problems, err := Check(m.e.db)
		if err != nil || len(problems) > 0 {
			m.fatalf("Check = %v, %v", problems, err)
		}
	}
}

func assertCoreRuleModel(m *allocModel, open []*Session) {
	m.t.Helper()
	held := map[pairKey]string{}
	for _, s := range open {
		for _, p := range s.Participants {
			k := pairKey{p.Number, s.ProxyNumber}
			if other, dup := held[k]; dup {
				m.fatalf("core rule broken: %s holds %s in open sessions %s and %s", p.Number, s.ProxyNumber, other, s.ID)
			}
			held[k] = s.ID
		}
	}
}

func (m *allocModel) verifyResolve(parts []string, nums []*Number) {
	m.t.Helper()
	now := m.e.clock.Now()
	for _, p := range parts {
		for _, n := range nums {
			for _, kind := range []Capability{CapVoice, CapSMS} {
				resolve := m.e.svc.ResolveCall
				if kind == CapSMS {
					resolve = m.e.svc.ResolveMessage
				}
				d, err := resolve(m.ctx, p, n.Number)
				m.checkDecision(p, n, kind, now, d, err)
			}
		}
	}
}

func (m *allocModel) checkDecision(p string, n *Number, kind Capability, now time.Time, d Decision, err error) {
	m.t.Helper()
	what := fmt.Sprintf("%s from %s to %s", kind, p, n.Number)
	fallback := n.FallbackNumber
	if fallback == "" {
		fallback = fallbackGlobal
	}
	wantReason := func(reason error, sessionID string) {
		m.t.Helper()
		var re *ResolveError
		if !errors.As(err, &re) || re.Reason != reason || re.SessionID != sessionID || re.Fallback != fallback || re.Proxy != n.Number {
			m.fatalf("%s = %+v, %v; the model expected %v (session %q, fallback %s)", what, d, err, reason, sessionID, fallback)
		}
	}
	k := pairKey{p, n.Number}
	h := m.byPair[k]
	switch {
	case h != nil && h.live(now) && (!h.mode.Allows(kind) || !n.has(kind)):
		wantReason(ErrModeNotAllowed, h.id)
	case h != nil && h.live(now):
		want := Decision{SessionID: h.id, Proxy: n.Number, CallerID: n.Number, Callee: h.other(p), Record: h.record, Carriers: []string{n.Carrier}}
		if err != nil || !decisionEqual(d, want) {
			m.fatalf("%s = %+v, %v; the model expected %+v", what, d, err, want)
		}
	case m.last[k] != "":
		wantReason(ErrSessionClosed, m.last[k])
	default:
		wantReason(ErrOutOfSession, "")
	}
}
