package media

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of [PortPoolOptions]; they match the media section of the
// configuration (media.port_min, media.port_max).
const (
	// DefaultPortMin is the lowest port of the pool when Min is zero.
	DefaultPortMin = 20000
	// DefaultPortMax is the highest port of the pool when Max is zero.
	DefaultPortMax = 29999
	// DefaultPortDrain is how long a released pair stays out of use when
	// Drain is zero.
	DefaultPortDrain = 2 * time.Second
	// DefaultBindAttempts is how many pairs [PortPool.AcquireBound] tries
	// when BindAttempts is zero.
	DefaultBindAttempts = 16
)

// Bounds of a media port range: below 1024 are privileged ports.
const (
	minMediaPort = 1024
	maxMediaPort = 65535
)

// PortPoolOptions configures [NewPortPool]. The zero value is the default
// pool: ports 20000 to 29999 (5000 pairs), a 2 s drain, the system clock.
// Each zero field takes its own default.
type PortPoolOptions struct {
	// Min is the lowest port of the range, the RTP port of the first pair.
	// It must be even (RTP on the even port, RTCP on the odd one above it,
	// RFC 3550 §11) and within 1024..65535. Default 20000.
	Min int
	// Max is the highest port of the range, inclusive, within 1024..65535
	// and greater than Min. When Max is even, it is left unused: a pair
	// needs Max+1 for its RTCP port. Default 29999.
	Max int
	// Drain is how long a released pair stays out of use, so that late RTP
	// and RTCP from the call that held it never reach the next call given
	// those ports. It must not be negative. Default 2 s.
	Drain time.Duration
	// BindAttempts is how many pairs [PortPool.AcquireBound] tries before
	// it gives up. It must not be negative. Default 16.
	BindAttempts int
	// Now is the clock that times the drain. Default time.Now.
	Now func() time.Time
}

// Pair is the two UDP ports of one media stream: RTP on an even port and
// RTCP on the next port up (RFC 3550 §11). When the stream negotiates
// rtcp-mux (RFC 5761) RTCP shares the RTP port and the relay leaves the
// RTCP port unbound; the pair still reserves it, so that a later re-INVITE
// without rtcp-mux finds it free. The zero Pair is no pair.
type Pair struct {
	// RTP is the even port carrying RTP (and RTCP under rtcp-mux).
	RTP int
	// RTCP is RTP+1.
	RTCP int
}

// String returns the pair as "rtp/rtcp", for example "20000/20001".
func (p Pair) String() string {
	return strconv.Itoa(p.RTP) + "/" + strconv.Itoa(p.RTCP)
}

// PortStats is a snapshot of a [PortPool]. Total = InUse + Draining + Free.
type PortStats struct {
	// Total is the number of pairs in the range.
	Total int
	// InUse is the number of pairs acquired and not yet released.
	InUse int
	// Draining is the number of released pairs whose drain has not passed.
	Draining int
	// Free is the number of pairs that Acquire may hand out now.
	Free int
	// Exhausted counts the Acquire calls answered with [ErrPortsExhausted]
	// since the pool was built.
	Exhausted uint64
	// BindFailures counts the pairs that [PortPool.AcquireBound] acquired,
	// failed to bind and released.
	BindFailures uint64
	// IgnoredReleases counts Release calls that changed nothing: a pair
	// released twice, never acquired, or not of this pool. Each one is a
	// bug in the caller.
	IgnoredReleases uint64
}

// Pair states, indexed by pair number in PortPool.state.
const (
	pairFree uint8 = iota
	pairInUse
	pairDraining
)

// drainEntry is a released pair waiting for its drain to pass.
type drainEntry struct {
	until time.Time
	idx   int32
}

// PortPool hands out the RTP/RTCP port pairs of a port range, one pair per
// media stream, and takes them back when the call ends.
//
// The pool only hands out numbers: it binds no socket. The relay binds both
// ports of the pair it gets; when a bind fails because another process holds
// one of them, it releases the pair and tries the next one. [AcquireBound]
// does that loop.
//
// Free pairs wait in a ring in the order they became free; Acquire takes the
// head and a pair that has drained joins the tail. A released pair first
// waits in a FIFO of draining pairs, ordered by release time, and moves to
// the free ring lazily, on the next Acquire or Stats after its drain has
// passed. Use therefore spreads over the whole range and a port is reused as
// late as possible. No goroutine is involved; Acquire and Release are O(1)
// (amortised) and do not allocate.
//
//	Acquire <-- [free ring: head ... tail] <-- drained --- [drain FIFO] <-- Release
//
// A PortPool is safe for concurrent use. One mutex guards its state; the
// clock is read before taking it and nothing else is called under it.
// Because of that, two Releases racing each other may enter the drain FIFO
// slightly out of time order; the later entry then waits behind the earlier
// one, which only lengthens its drain.
type PortPool struct {
	min          int
	drain        time.Duration
	bindAttempts int
	now          func() time.Time

	mu sync.Mutex
	// state is the pairFree/pairInUse/pairDraining state of each pair.
	state []uint8
	// free is a ring of free pair numbers: freeLen of them from freeHead.
	free     []int32
	freeHead int
	freeLen  int
	// draining is a ring of released pairs, oldest first.
	draining  []drainEntry
	drainHead int
	drainLen  int
	inUse     int

	exhausted       uint64
	bindFailures    uint64
	ignoredReleases uint64
}

// NewPortPool returns a pool of the pairs of opts' port range, all free. It
// returns an error wrapping [ErrBadPortOptions] that names every problem of
// opts.
func NewPortPool(opts PortPoolOptions) (*PortPool, error) {
	orDefault(&opts.Min, DefaultPortMin)
	orDefault(&opts.Max, DefaultPortMax)
	orDefault(&opts.Drain, DefaultPortDrain)
	orDefault(&opts.BindAttempts, DefaultBindAttempts)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := (opts.Max - opts.Min + 1) / 2
	p := &PortPool{
		min:          opts.Min,
		drain:        opts.Drain,
		bindAttempts: opts.BindAttempts,
		now:          opts.Now,
		state:        make([]uint8, n),
		free:         make([]int32, n),
		freeLen:      n,
		draining:     make([]drainEntry, n),
	}
	for i := range p.free {
		p.free[i] = int32(i)
	}
	return p, nil
}

// validate reports every problem of opts, defaults applied.
func (o *PortPoolOptions) validate() error {
	var probs []string
	minOK := o.Min >= minMediaPort && o.Min <= maxMediaPort
	maxOK := o.Max >= minMediaPort && o.Max <= maxMediaPort
	if !minOK {
		probs = append(probs, fmt.Sprintf("min %d is not within %d..%d", o.Min, minMediaPort, maxMediaPort))
	} else if o.Min%2 != 0 {
		probs = append(probs, fmt.Sprintf("min %d is odd (RTP takes the even port)", o.Min))
	}
	if !maxOK {
		probs = append(probs, fmt.Sprintf("max %d is not within %d..%d", o.Max, minMediaPort, maxMediaPort))
	}
	if minOK && maxOK && o.Max <= o.Min {
		probs = append(probs, fmt.Sprintf("max %d is not above min %d (a pair needs two ports)", o.Max, o.Min))
	}
	if o.Drain < 0 {
		probs = append(probs, fmt.Sprintf("drain %v is negative", o.Drain))
	}
	if o.BindAttempts < 0 {
		probs = append(probs, fmt.Sprintf("bind attempts %d is negative", o.BindAttempts))
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", strings.Join(probs, "; "), ErrBadPortOptions)
}

// Acquire returns a free pair, the one that has been free the longest. It
// never returns a pair whose drain has not passed. It returns
// [ErrPortsExhausted] when every pair is in use or draining.
func (p *PortPool) Acquire() (Pair, error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reclaim(now)
	if p.freeLen == 0 {
		p.exhausted++
		return Pair{}, ErrPortsExhausted
	}
	idx := p.free[p.freeHead]
	p.freeHead = p.next(p.freeHead)
	p.freeLen--
	p.state[idx] = pairInUse
	p.inUse++
	rtp := p.min + 2*int(idx)
	return Pair{RTP: rtp, RTCP: rtp + 1}, nil
}

// Release gives back a pair returned by Acquire. The pair drains for the
// pool's drain time before Acquire hands it out again. Releasing a pair that
// is not in use (a second release, a pair never acquired, a pair of another
// range) changes nothing; it is counted in [PortStats].IgnoredReleases.
func (p *PortPool) Release(pair Pair) {
	p.release(pair, false)
}

// release is Release; bindFailed counts the release as a bind failure.
func (p *PortPool) release(pair Pair, bindFailed bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, ok := p.index(pair)
	if !ok || p.state[idx] != pairInUse {
		p.ignoredReleases++
		return
	}
	if bindFailed {
		p.bindFailures++
	}
	p.state[idx] = pairDraining
	p.inUse--
	// draining has room for every pair and a pair is in it at most once.
	p.draining[(p.drainHead+p.drainLen)%len(p.draining)] = drainEntry{until: now.Add(p.drain), idx: idx}
	p.drainLen++
}

// AcquireBound acquires a pair and calls bind with it, outside the pool's
// lock. bind binds both ports (only the RTP port under rtcp-mux) and returns
// an error when it cannot, for example because another process holds one of
// them. AcquireBound then releases that pair, so it drains and returns to
// the pool later, and tries the next pair, up to the pool's BindAttempts
// pairs. It returns the first pair that bound. It returns an error wrapping
// [ErrPortsExhausted] when the pool runs out of pairs, and one wrapping
// [ErrPortsUnbindable] and the last bind error when no attempt bound. In
// both cases it holds no pair. bind must not panic: the pair it was given
// would stay in use.
func (p *PortPool) AcquireBound(bind func(Pair) error) (Pair, error) {
	var last error
	for i := range p.bindAttempts {
		pair, err := p.Acquire()
		if err != nil {
			if last != nil {
				return Pair{}, fmt.Errorf("%d pairs failed to bind, last: %v: %w", i, last, err)
			}
			return Pair{}, err
		}
		if last = bind(pair); last == nil {
			return pair, nil
		}
		last = fmt.Errorf("binding %v: %w", pair, last)
		p.release(pair, true)
	}
	return Pair{}, fmt.Errorf("%w after %d pairs: %w", ErrPortsUnbindable, p.bindAttempts, last)
}

// Stats returns a snapshot of the pool.
func (p *PortPool) Stats() PortStats {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reclaim(now)
	return PortStats{
		Total:           len(p.state),
		InUse:           p.inUse,
		Draining:        p.drainLen,
		Free:            p.freeLen,
		Exhausted:       p.exhausted,
		BindFailures:    p.bindFailures,
		IgnoredReleases: p.ignoredReleases,
	}
}

// reclaim moves the pairs whose drain has passed by now from the head of
// the drain FIFO to the tail of the free ring. p.mu is held.
func (p *PortPool) reclaim(now time.Time) {
	for p.drainLen > 0 {
		e := &p.draining[p.drainHead]
		if now.Before(e.until) {
			return
		}
		p.free[(p.freeHead+p.freeLen)%len(p.free)] = e.idx
		p.freeLen++
		p.state[e.idx] = pairFree
		*e = drainEntry{}
		p.drainHead = p.next(p.drainHead)
		p.drainLen--
	}
}

// next returns the ring position after i; both rings have one slot per pair.
func (p *PortPool) next(i int) int {
	if i++; i == len(p.state) {
		return 0
	}
	return i
}

// index returns the pair number of pair, or false if pair is not a pair of
// this pool's range.
func (p *PortPool) index(pair Pair) (int32, bool) {
	off := pair.RTP - p.min
	if off < 0 || off%2 != 0 || off/2 >= len(p.state) || pair.RTCP != pair.RTP+1 {
		return 0, false
	}
	return int32(off / 2), true
}
