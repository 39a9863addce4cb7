package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// Fixture shape. A participant may hold one open session per proxy number,
// so N sessions need pool size x participants >= 2N pairs; with 1,000
// numbers and N participants each in about two sessions, the allocator
// always finds a free number at once and never reports ErrPoolExhausted.
const (
	usProxies = 700 // +1 206 555 0000..0699
	ukProxies = 300 // +44 20 7946 0000..0299

	// loadWorkers create fixture sessions concurrently: enough to keep both
	// cores busy while one goroutine waits on Pebble's commit pipeline.
	loadWorkers = 4
	// sampleSize is how many random (participant, proxy) pairs a lookup
	// benchmark cycles through; a power of two so the index is a mask.
	sampleSize = 1 << 18
	// createParallelism is passed to b.SetParallelism: 16 goroutines per
	// GOMAXPROCS, so 32 concurrent creates on this 2-core machine, enough
	// for Pebble to group many commits behind one fsync.
	createParallelism = 16
	// sessionTTL is far beyond any run, so nothing expires mid-benchmark.
	sessionTTL = 30 * 24 * time.Hour
)

var (
	carriers = []string{"carrier1", "carrier2"}
	quiet    = slog.New(slog.DiscardHandler)
	// tmpRoot holds every fixture's database; TestMain removes it.
	tmpRoot string
	// freshSeq numbers the participants of sessions created by
	// BenchmarkSessionCreate; shared by every size so they never repeat.
	freshSeq atomic.Int64
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "veil-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: creating temp dir:", err)
		os.Exit(2)
	}
	tmpRoot = dir
	code := m.Run()
	closeFixtures()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: removing temp dir:", err)
	}
	os.Exit(code)
}

// benchSizes returns the fixture sizes to run, from VEIL_BENCH_SIZES
// ("10k,100k,1M" by default; plain integers work too).
func benchSizes(tb testing.TB) []int {
	tb.Helper()
	spec := os.Getenv("VEIL_BENCH_SIZES")
	if spec == "" {
		spec = "10k,100k,1M"
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := parseSize(strings.TrimSpace(f))
		if err != nil {
			tb.Fatalf("VEIL_BENCH_SIZES=%q: %v", spec, err)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1_000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n*mult > 5_000_000 {
		return 0, fmt.Errorf("size %q: want a positive count up to 5M, like 10k or 1M", s)
	}
	return n * mult, nil
}

// sizeLabel is the sub-benchmark name of a size: 10k, 100k, 1M.
func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return "open=" + strconv.Itoa(n/1_000_000) + "M"
	case n%1_000 == 0:
		return "open=" + strconv.Itoa(n/1_000) + "k"
	}
	return "open=" + strconv.Itoa(n)
}

// proxyNumber is proxy number i of the pool (fictional ranges: NANP 555
// and Ofcom's drama range).
func proxyNumber(i int) string {
	if i < usProxies {
		return fmt.Sprintf("+1206555%04d", i)
	}
	return fmt.Sprintf("+44207946%04d", i-usProxies)
}

// participant is the real number of fixture participant k: 70% NANP, 30%
// UK mobiles. With outsider it is instead k's odd neighbour, a number that
// is in no session but sorts among the ones that are, so a lookup of it
// really searches Pebble's key space.
func participant(k int, outsider bool) string {
	d := 2 * k
	if outsider {
		d++
	}
	if k%10 < 7 {
		return fmt.Sprintf("+1%010d", 2_020_000_000+d)
	}
	return fmt.Sprintf("+44%010d", 7_400_000_000+d)
}

// sessionParticipants are the two participants of fixture session i of n:
// k = i and a permutation of i, so every participant is in about two
// sessions with different partners.
func sessionParticipants(i, n int) (a, b string) {
	j := (i*7919 + n/2) % n
	if j == i {
		j = (i + 1) % n
	}
	return participant(i, false), participant(j, false)
}

// freshPair returns two numbers never used before in this process.
func freshPair() (a, b string) {
	k := freshSeq.Add(1)
	return fmt.Sprintf("+1%010d", 7_770_000_000+2*k), fmt.Sprintf("+1%010d", 7_770_000_001+2*k)
}

// pair is a (caller, dialled proxy number) question for ResolveCall.
type pair struct{ from, to string }

// fixture is a Service with n open sessions, loaded from disk.
type fixture struct {
	n   int
	db  *store.DB
	svc *routing.Service
	// hits are random pairs with an open session; outsiders are pairs
	// whose caller has no session at all.
	hits, outsiders []pair
	err             error
}

var fixtures struct {
	mu sync.Mutex
	m  map[int]*fixture
}

// getFixture returns the fixture of n open sessions, building it on first
// use. `go test -bench` calls a benchmark function several times with
// growing b.N, so the fixture is built once per process and size; callers
// reset the timer after it.
func getFixture(b *testing.B, n int) *fixture {
	b.Helper()
	fixtures.mu.Lock()
	defer fixtures.mu.Unlock()
	if fixtures.m == nil {
		fixtures.m = make(map[int]*fixture)
	}
	f := fixtures.m[n]
	if f == nil {
		f = buildFixture(b, n)
		fixtures.m[n] = f
	}
	if f.err != nil {
		b.Fatalf("fixture of %d sessions: %v", n, f.err)
	}
	return f
}

func closeFixtures() {
	fixtures.mu.Lock()
	defer fixtures.mu.Unlock()
	for _, f := range fixtures.m {
		if f.db != nil {
			f.db.Close()
		}
	}
	pebbleBase.mu.Lock()
	defer pebbleBase.mu.Unlock()
	if pebbleBase.db != nil {
		pebbleBase.db.Close()
	}
}

func serviceOptions() routing.Options {
	return routing.Options{Carriers: carriers, DefaultTTL: sessionTTL, Logger: quiet}
}

// buildFixture bulk-loads n sessions through CreateSession on an unsynced
// store, then reopens it synced and loads a new Service from disk. Errors
// are kept in the fixture so that every benchmark using it fails.
func buildFixture(b *testing.B, n int) *fixture {
	f := &fixture{n: n}
	dir := filepath.Join(tmpRoot, fmt.Sprintf("open-%d", n))
	start := time.Now()
	proxyOf, err := bulkLoad(dir, n)
	if err != nil {
		f.err = err
		return f
	}
	loaded := time.Since(start)
	runtime.GC()

	start = time.Now()
	db, err := store.Open(dir, store.Options{Logger: quiet})
	if err != nil {
		f.err = err
		return f
	}
	f.db = db
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	startNew := time.Now()
	svc, err := routing.New(db, serviceOptions())
	if err != nil {
		f.err = err
		return f
	}
	newTook := time.Since(startNew)
	reopened := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := svc.Stats().OpenSessions; got != n {
		f.err = fmt.Errorf("reloaded service has %d open sessions, want %d", got, n)
		return f
	}
	f.svc = svc

	rng := rand.New(rand.NewPCG(1, uint64(n)))
	f.hits = make([]pair, sampleSize)
	for j := range f.hits {
		i := rng.IntN(n)
		a, bb := sessionParticipants(i, n)
		if rng.IntN(2) == 1 {
			a = bb
		}
		f.hits[j] = pair{a, proxyNumber(int(proxyOf[i]))}
	}
	f.outsiders = make([]pair, sampleSize)
	for j := range f.outsiders {
		f.outsiders[j] = pair{participant(rng.IntN(n), true), proxyNumber(rng.IntN(usProxies + ukProxies))}
	}

	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	b.Logf("fixture open=%d: bulk load %v (%.0f creates/s unsynced), reopen %v (routing.New %v); "+
		"Go heap in use %.0f MiB, routing index %.0f MiB = %.0f B/open session; process RSS %s",
		n, loaded.Round(time.Millisecond), float64(n)/loaded.Seconds(), reopened.Round(time.Millisecond),
		newTook.Round(time.Millisecond), float64(after.HeapInuse)/(1<<20), float64(grew)/(1<<20),
		float64(grew)/float64(n), rss())
	return f
}

// bulkLoad creates the pool, the routes and n sessions in dir through an
// unsynced store, closes it and returns each session's proxy number index.
func bulkLoad(dir string, n int) ([]uint16, error) {
	db, err := store.Open(dir, store.Options{NoSync: true, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	svc, err := routing.New(db, serviceOptions())
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	index := make(map[string]uint16, usProxies+ukProxies)
	for i := range usProxies + ukProxies {
		num := proxyNumber(i)
		if _, err := svc.AddNumber(ctx, routing.AddNumberRequest{Number: num, Carrier: carriers[i%2]}); err != nil {
			return nil, err
		}
		index[num] = uint16(i)
	}
	if _, err := svc.SetRoute(ctx, "+1", []string{"carrier1", "carrier2"}); err != nil {
		return nil, err
	}
	if _, err := svc.SetRoute(ctx, "+44", []string{"carrier2", "carrier1"}); err != nil {
		return nil, err
	}

	proxyOf := make([]uint16, n)
	var (
		next int64 = -1
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range loadWorkers {
		wg.Go(func() {
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= n {
					return
				}
				a, b := sessionParticipants(i, n)
				s, err := svc.CreateSession(ctx, routing.CreateSessionRequest{Participants: []string{a, b}})
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("session %d: %w", i, err))
					mu.Unlock()
					atomic.StoreInt64(&next, int64(n)) // stop every worker
					return
				}
				proxyOf[i] = index[s.ProxyNumber]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return proxyOf, db.Close()
}

// rss is the process's resident set size as /proc reports it.
func rss() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

// reportLatency sorts the per-op latencies and reports percentiles.
func reportLatency(b *testing.B, lat []int64) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[min(len(lat)-1, int(float64(len(lat))*q))]) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
	b.ReportMetric(at(0.999), "p999-ns")
}

// BenchmarkResolveCall measures the hit path of a call: a caller dialling
// the proxy number of one of its open sessions. One goroutine, so the
// percentiles are latencies rather than queueing; each op is timed on its
// own (time.Now costs about 20-40 ns and is included, as it is in the
// baseline).
func BenchmarkResolveCall(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(sizeLabel(n), func(b *testing.B) {
			f := getFixture(b, n)
			benchResolve(b, f.svc, f.hits, nil)
		})
	}
}

func benchResolve(b *testing.B, svc *routing.Service, sample []pair, wantErr error) {
	ctx := context.Background()
	lat := make([]int64, b.N)
	mask := len(sample) - 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := &sample[i&mask]
		t0 := time.Now()
		d, err := svc.ResolveCall(ctx, p.from, p.to)
		lat[i] = int64(time.Since(t0))
		if wantErr == nil && (err != nil || d.Callee == "") {
			b.Fatalf("ResolveCall(%s, %s) = %+v, %v; want a decision", p.from, p.to, d, err)
		}
		if wantErr != nil && !errors.Is(err, wantErr) {
			b.Fatalf("ResolveCall(%s, %s) error %v, want %v", p.from, p.to, err, wantErr)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// mapBase caches the baseline maps per size.
var mapBase struct {
	mu sync.Mutex
	m  map[int]*mapFixture
}

type mapFixture struct {
	m    map[string]string
	keys []string
}

// BenchmarkBaselineMapLookup is ResolveCall's anchor: a hit in a plain
// map[string]string holding as many keys as the routing index has
// (participant, proxy) pairs at that size (2 per session), timed the same
// way. ResolveCall's extra cost over it is the read lock, the clock, the
// route lookup and building the Decision.
func BenchmarkBaselineMapLookup(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(sizeLabel(n), func(b *testing.B) {
			mf := getMapFixture(n)
			lat := make([]int64, b.N)
			mask := len(mf.keys) - 1
			var found int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := mf.keys[i&mask]
				t0 := time.Now()
				v, ok := mf.m[k]
				lat[i] = int64(time.Since(t0))
				if ok && v != "" {
					found++
				}
			}
			b.StopTimer()
			if found != b.N {
				b.Fatalf("found %d of %d keys", found, b.N)
			}
			reportLatency(b, lat)
		})
	}
}

func getMapFixture(n int) *mapFixture {
	mapBase.mu.Lock()
	defer mapBase.mu.Unlock()
	if mapBase.m == nil {
		mapBase.m = make(map[int]*mapFixture)
	}
	if mf := mapBase.m[n]; mf != nil {
		return mf
	}
	mf := &mapFixture{m: make(map[string]string, 2*n), keys: make([]string, sampleSize)}
	id := make([]string, usProxies+ukProxies)
	for i := range id {
		id[i] = proxyNumber(i)
	}
	key := func(i, side int) string {
		a, b := sessionParticipants(i, n)
		if side == 1 {
			a = b
		}
		return a + "/" + id[i%len(id)]
	}
	for i := range n {
		v := fmt.Sprintf("ses_%032x", i)
		mf.m[key(i, 0)] = v
		mf.m[key(i, 1)] = v
	}
	rng := rand.New(rand.NewPCG(2, uint64(n)))
	for j := range mf.keys {
		mf.keys[j] = key(rng.IntN(n), rng.IntN(2))
	}
	mapBase.m[n] = mf
	return mf
}

// BenchmarkResolveCallMiss measures a call from a number with no session:
// the out-of-session path, which asks Pebble for the pair's last session.
func BenchmarkResolveCallMiss(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(sizeLabel(n), func(b *testing.B) {
			f := getFixture(b, n)
			benchResolve(b, f.svc, f.outsiders, routing.ErrOutOfSession)
		})
	}
}

// BenchmarkSessionCreate measures synced creates on the reopened store:
// 32 goroutines, each creating sessions between two numbers never seen
// before, so every create succeeds and the store grows by b.N sessions
// (open=N is the count when the size's first run starts).
func BenchmarkSessionCreate(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(sizeLabel(n), func(b *testing.B) {
			f := getFixture(b, n)
			ctx := context.Background()
			lat := make([]int64, b.N)
			var done atomic.Int64
			b.SetParallelism(createParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a, c := freshPair()
					req := routing.CreateSessionRequest{Participants: []string{a, c}}
					t0 := time.Now()
					_, err := f.svc.CreateSession(ctx, req)
					lat[done.Add(1)-1] = int64(time.Since(t0))
					if err != nil {
						b.Errorf("CreateSession(%s, %s): %v", a, c, err)
						return
					}
				}
			})
			elapsed := b.Elapsed()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
			reportLatency(b, lat[:done.Load()])
		})
	}
}

// pebbleBase is the store of BenchmarkBaselinePebbleSyncedBatch, opened
// once with the same store.Open defaults as the fixtures' synced store.
var pebbleBase struct {
	mu  sync.Mutex
	db  *store.DB
	seq atomic.Int64
}

// BenchmarkBaselinePebbleSyncedBatch is SessionCreate's anchor: raw synced
// batches of the same keys and value sizes as a session create (the
// session record, and per participant its sessidx, sesslast and sesspart
// rows: 7 keys), at the same parallelism, on a fresh store. What a create
// costs above it is routing's own work: validation, the index lock, the
// allocator and JSON encoding.
func BenchmarkBaselinePebbleSyncedBatch(b *testing.B) {
	pebbleBase.mu.Lock()
	if pebbleBase.db == nil {
		db, err := store.Open(filepath.Join(tmpRoot, "pebble-baseline"), store.Options{Logger: quiet})
		if err != nil {
			pebbleBase.mu.Unlock()
			b.Fatal(err)
		}
		pebbleBase.db = db
	}
	db := pebbleBase.db
	pebbleBase.mu.Unlock()

	lat := make([]int64, b.N)
	var done atomic.Int64
	b.SetParallelism(createParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			batch := sessionLikeBatch(db, pebbleBase.seq.Add(1))
			t0 := time.Now()
			err := batch.Commit()
			lat[done.Add(1)-1] = int64(time.Since(t0))
			if err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
	elapsed := b.Elapsed()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
	reportLatency(b, lat[:done.Load()])
}

// sessionLikeBatch builds the batch CreateSession would write for a
// session between two fresh numbers, without routing.
func sessionLikeBatch(db *store.DB, k int64) *store.Batch {
	now := time.Now().UTC()
	a, c := fmt.Sprintf("+1%010d", 3_000_000_000+2*k), fmt.Sprintf("+44%010d", 7_900_000_001+2*k)
	sess := routing.Session{
		V: 1, ID: fmt.Sprintf("ses_%016x%016x", now.UnixNano(), k), ProxyNumber: proxyNumber(int(k % usProxies)),
		Participants: []routing.Participant{{Number: a}, {Number: c}}, Mode: routing.ModeVoiceSMS,
		State: routing.StateOpen, CreatedAt: now, ExpiresAt: now.Add(sessionTTL),
	}
	val, _ := json.Marshal(&sess)
	batch := db.NewBatch()
	batch.Set(store.Key(store.PrefixSession, sess.ID), val)
	for _, p := range []string{a, c} {
		batch.Set(store.Key(store.PrefixSessionIndex, p, sess.ProxyNumber), []byte(sess.ID))
		batch.Set(store.Key(store.PrefixSessionLast, p, sess.ProxyNumber), []byte(sess.ID))
		batch.Set(store.Key(store.PrefixSessionByPart, p, sess.ID), nil)
	}
	return batch
}

// TestSessionLikeBatchSize logs the bytes a session create writes, so the
// README can say what the Pebble baseline commits. It is not timed.
func TestSessionLikeBatchSize(t *testing.T) {
	n := 0
	now := time.Now().UTC()
	a, c := participant(1, false), participant(7, false)
	sess := routing.Session{
		V: 1, ID: fmt.Sprintf("ses_%016x%016x", now.UnixNano(), 1), ProxyNumber: proxyNumber(1),
		Participants: []routing.Participant{{Number: a}, {Number: c}}, Mode: routing.ModeVoiceSMS,
		State: routing.StateOpen, CreatedAt: now, ExpiresAt: now.Add(sessionTTL),
	}
	val, err := json.Marshal(&sess)
	if err != nil {
		t.Fatal(err)
	}
	n += len(store.Key(store.PrefixSession, sess.ID)) + len(val)
	for _, p := range []string{a, c} {
		n += len(store.Key(store.PrefixSessionIndex, p, sess.ProxyNumber)) + len(sess.ID)
		n += len(store.Key(store.PrefixSessionLast, p, sess.ProxyNumber)) + len(sess.ID)
		n += len(store.Key(store.PrefixSessionByPart, p, sess.ID))
	}
	t.Logf("a session create writes 7 keys, %d bytes of keys and values (record %d bytes)", n, len(val))
	if n < 300 || n > 1500 {
		t.Errorf("session batch of %d bytes: the baseline no longer matches a create", n)
	}
}
