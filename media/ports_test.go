package media

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock that moves only when told to. It is safe
// for concurrent use.
type fakeClock struct {
	ns atomic.Int64
}

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestPool builds a pool on ports min..max with a 2 s drain on clk.
func newTestPool(tb testing.TB, min, max int, clk *fakeClock) *PortPool {
	tb.Helper()
	p, err := NewPortPool(PortPoolOptions{Min: min, Max: max, Drain: 2 * time.Second, Now: clk.Now})
	if err != nil {
		tb.Fatalf("NewPortPool(%d, %d): %v", min, max, err)
	}
	return p
}

// mustAcquire acquires a pair or fails the test.
func mustAcquire(tb testing.TB, p *PortPool) Pair {
	tb.Helper()
	pair, err := p.Acquire()
	if err != nil {
		tb.Fatalf("Acquire: %v", err)
	}
	return pair
}

// checkStats compares the pool's stats with want.
func checkStats(tb testing.TB, p *PortPool, want PortStats) {
	tb.Helper()
	if got := p.Stats(); got != want {
		tb.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNewPortPoolOptions(t *testing.T) {
	tests := []struct {
		name      string
		opts      PortPoolOptions
		wantPairs int
		wantErrs  []string // substrings of the error; nil means no error
	}{
		{name: "zero value is the default range", wantPairs: 5000},
		{name: "smallest range", opts: PortPoolOptions{Min: 40000, Max: 40001}, wantPairs: 1},
		{name: "even max leaves its port unused", opts: PortPoolOptions{Min: 40000, Max: 40004}, wantPairs: 2},
		{name: "top of the port space", opts: PortPoolOptions{Min: 65534, Max: 65535}, wantPairs: 1},
		{name: "bottom of the port space", opts: PortPoolOptions{Min: 1024, Max: 1025}, wantPairs: 1},
		{name: "odd min", opts: PortPoolOptions{Min: 20001, Max: 20010},
			wantErrs: []string{"min 20001 is odd"}},
		{name: "min equals max: one port", opts: PortPoolOptions{Min: 20000, Max: 20000},
			wantErrs: []string{"max 20000 is not above min 20000"}},
		{name: "min above max", opts: PortPoolOptions{Min: 30000, Max: 20001},
			wantErrs: []string{"max 20001 is not above min 30000"}},
		{name: "only min set, above default max", opts: PortPoolOptions{Min: 40000},
			wantErrs: []string{"max 29999 is not above min 40000"}},
		{name: "privileged min", opts: PortPoolOptions{Min: 1022, Max: 2000},
			wantErrs: []string{"min 1022 is not within 1024..65535"}},
		{name: "negative min", opts: PortPoolOptions{Min: -2, Max: 2000},
			wantErrs: []string{"min -2 is not within"}},
		{name: "max past 65535", opts: PortPoolOptions{Min: 60000, Max: 65536},
			wantErrs: []string{"max 65536 is not within 1024..65535"}},
		{name: "every problem reported", opts: PortPoolOptions{Min: 80001, Max: 70000, Drain: -time.Second, BindAttempts: -1},
			wantErrs: []string{"min 80001", "max 70000", "drain -1s is negative", "bind attempts -1 is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPortPool(tt.opts)
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatalf("NewPortPool(%+v): %v", tt.opts, err)
				}
				if got := p.Stats().Total; got != tt.wantPairs {
					t.Errorf("Total = %d, want %d", got, tt.wantPairs)
				}
				return
			}
			if !errors.Is(err, ErrBadPortOptions) {
				t.Fatalf("NewPortPool(%+v) error = %v, want ErrBadPortOptions", tt.opts, err)
			}
			if p != nil {
				t.Errorf("NewPortPool returned a pool with an error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestPortPoolAcquireAllThenExhausted(t *testing.T) {
	clk := newFakeClock()
	p := newTestPool(t, 40000, 40007, clk) // 4 pairs
	var got []Pair
	for range 4 {
		got = append(got, mustAcquire(t, p))
	}
	want := []Pair{{40000, 40001}, {40002, 40003}, {40004, 40005}, {40006, 40007}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pairs = %v, want %v", got, want)
	}
	for range 2 {
		if pair, err := p.Acquire(); !errors.Is(err, ErrPortsExhausted) {
			t.Fatalf("Acquire on a full pool = %v, %v; want ErrPortsExhausted", pair, err)
		}
	}
	checkStats(t, p, PortStats{Total: 4, InUse: 4, Exhausted: 2})
}

func TestPortPoolDrain(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration // after the release
		reused  bool
	}{
		{"right after release", 0, false},
		{"just before the drain passes", 2*time.Second - time.Nanosecond, false},
		{"when the drain passes", 2 * time.Second, true},
		{"long after", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPool(t, 40000, 40001, clk) // 1 pair
			pair := mustAcquire(t, p)
			p.Release(pair)
			clk.Advance(tt.advance)
			got, err := p.Acquire()
			if !tt.reused {
				if !errors.Is(err, ErrPortsExhausted) {
					t.Fatalf("Acquire while draining = %v, %v; want ErrPortsExhausted", got, err)
				}
				checkStats(t, p, PortStats{Total: 1, Draining: 1, Exhausted: 1})
				return
			}
			if err != nil || got != pair {
				t.Fatalf("Acquire after drain = %v, %v; want %v", got, err, pair)
			}
			checkStats(t, p, PortStats{Total: 1, InUse: 1})
		})
	}
}

func TestPortPoolSpreadsUse(t *testing.T) {
	clk := newFakeClock()
	p := newTestPool(t, 40000, 40007, clk) // 4 pairs: A B C D
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	p.Release(b)
	clk.Advance(time.Second)
	p.Release(a)
	clk.Advance(5 * time.Second) // both drained, b first
	checkStats(t, p, PortStats{Total: 4, Free: 4})
	var got []int
	for range 4 {
		got = append(got, mustAcquire(t, p).RTP)
	}
	// Never-used C and D first, then B and A in release order.
	if want := []int{40004, 40006, 40002, 40000}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RTP ports = %v, want %v", got, want)
	}
}

func TestPortPoolDrainFIFO(t *testing.T) {
	clk := newFakeClock()
	p := newTestPool(t, 40000, 40005, clk) // 3 pairs
	a, _, c := mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)
	p.Release(c)
	clk.Advance(time.Second)
	p.Release(a)
	clk.Advance(time.Second) // c drained, a not yet
	if got := mustAcquire(t, p); got != c {
		t.Errorf("first Acquire = %v, want %v", got, c)
	}
	if got, err := p.Acquire(); !errors.Is(err, ErrPortsExhausted) {
		t.Errorf("second Acquire = %v, %v; want ErrPortsExhausted (a still draining)", got, err)
	}
	clk.Advance(time.Second)
	if got := mustAcquire(t, p); got != a {
		t.Errorf("third Acquire = %v, want %v", got, a)
	}
	checkStats(t, p, PortStats{Total: 3, InUse: 3, Exhausted: 1})
}

func TestPortPoolIgnoredReleases(t *testing.T) {
	held := Pair{40000, 40001} // the first pair acquired
	tests := []struct {
		name    string
		release Pair
		double  bool // release held once before
	}{
		{name: "double release", release: held, double: true},
		{name: "never acquired", release: Pair{40002, 40003}},
		{name: "zero pair", release: Pair{}},
		{name: "below the range", release: Pair{39998, 39999}},
		{name: "above the range", release: Pair{40004, 40005}},
		{name: "odd RTP port", release: Pair{40001, 40002}},
		{name: "RTCP not RTP+1", release: Pair{40000, 40003}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPool(t, 40000, 40003, clk) // 2 pairs
			if got := mustAcquire(t, p); got != held {
				t.Fatalf("Acquire = %v, want %v", got, held)
			}
			if tt.double {
				p.Release(held)
			}
			want := p.Stats()
			want.IgnoredReleases++
			p.Release(tt.release)
			checkStats(t, p, want)

			// The state is intact: each pair comes out at most once.
			clk.Advance(time.Hour)
			wantPairs := []Pair{{40002, 40003}}
			if tt.double {
				wantPairs = append(wantPairs, held)
			}
			for _, w := range wantPairs {
				if got := mustAcquire(t, p); got != w {
					t.Errorf("Acquire = %v, want %v", got, w)
				}
			}
			if got, err := p.Acquire(); !errors.Is(err, ErrPortsExhausted) {
				t.Errorf("Acquire = %v, %v; want ErrPortsExhausted", got, err)
			}
		})
	}
}

func TestPortPoolAcquireBound(t *testing.T) {
	errInUse := errors.New("address already in use")
	tests := []struct {
		name         string
		attempts     int
		busy         map[int]bool // RTP ports whose bind fails
		want         Pair
		wantErr      []error
		wantFailures uint64
	}{
		{name: "first pair binds", busy: nil, want: Pair{40000, 40001}},
		{name: "skips busy pairs", busy: map[int]bool{40000: true, 40002: true},
			want: Pair{40004, 40005}, wantFailures: 2},
		{name: "gives up after BindAttempts", attempts: 2, busy: map[int]bool{40000: true, 40002: true},
			wantErr: []error{ErrPortsUnbindable, errInUse}, wantFailures: 2},
		{name: "runs out of pairs", busy: map[int]bool{40000: true, 40002: true, 40004: true, 40006: true},
			wantErr: []error{ErrPortsExhausted}, wantFailures: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p, err := NewPortPool(PortPoolOptions{Min: 40000, Max: 40007, BindAttempts: tt.attempts, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			var tried []int
			got, err := p.AcquireBound(func(pair Pair) error {
				tried = append(tried, pair.RTP)
				if tt.busy[pair.RTP] {
					return errInUse
				}
				return nil
			})
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("AcquireBound error = %v, want it to wrap %v", err, want)
				}
			}
			if tt.wantErr == nil && (err != nil || got != tt.want) {
				t.Fatalf("AcquireBound = %v, %v; want %v (tried %v)", got, err, tt.want, tried)
			}
			inUse, failed := 0, int(tt.wantFailures)
			if tt.wantErr == nil {
				inUse = 1
			}
			var exhausted uint64
			if errors.Is(err, ErrPortsExhausted) {
				exhausted = 1
			}
			checkStats(t, p, PortStats{Total: 4, InUse: inUse, Draining: failed,
				Free: 4 - inUse - failed, BindFailures: tt.wantFailures, Exhausted: exhausted})

			// The pairs that failed to bind are not leaked: they come back
			// once drained.
			clk.Advance(DefaultPortDrain)
			st := p.Stats()
			if st.Draining != 0 || st.Free != 4-inUse {
				t.Errorf("after drain Stats() = %+v, want %d free and none draining", st, 4-inUse)
			}
		})
	}
}

// TestPortPoolConcurrent has 16 goroutines acquire and release pairs of a
// small pool; no pair may be held by two of them at once. Run it with -race.
func TestPortPoolConcurrent(t *testing.T) {
	const (
		workers = 16
		rounds  = 2000
	)
	var clk fakeClock
	p, err := NewPortPool(PortPoolOptions{Min: 40000, Max: 40015, Drain: 3 * time.Millisecond, Now: func() time.Time {
		// Every reading moves the clock on, so drains pass as the test runs.
		return time.Unix(0, clk.ns.Add(int64(time.Millisecond)))
	}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		holders  sync.Map // RTP port -> worker id
		acquired atomic.Int64
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				pair, err := p.Acquire()
				if errors.Is(err, ErrPortsExhausted) {
					continue
				}
				if err != nil {
					t.Errorf("worker %d: Acquire: %v", w, err)
					return
				}
				acquired.Add(1)
				if other, dup := holders.LoadOrStore(pair.RTP, w); dup {
					t.Errorf("pair %v handed to worker %d while worker %v holds it", pair, w, other)
					return
				}
				holders.Delete(pair.RTP)
				p.Release(pair)
			}
		})
	}
	wg.Wait()
	if acquired.Load() == 0 {
		t.Fatal("no Acquire succeeded")
	}
	st := p.Stats()
	if st.InUse != 0 || st.IgnoredReleases != 0 || st.Total != 8 || st.Free+st.Draining != 8 {
		t.Errorf("Stats() = %+v after all releases", st)
	}
}

func BenchmarkPortPoolAcquireRelease(b *testing.B) {
	var clk fakeClock
	p, err := NewPortPool(PortPoolOptions{Now: func() time.Time {
		return time.Unix(0, clk.ns.Add(int64(time.Millisecond)))
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		pair, err := p.Acquire()
		if err != nil {
			b.Fatal(err)
		}
		p.Release(pair)
	}
}
