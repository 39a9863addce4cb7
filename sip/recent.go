package sip

import (
	"sync"
	"time"
)

// recentCalls remembers the INVITEs that a 2xx answered, for 64*T1
// (32 s) after the 2xx, so that a late copy of one never starts a second
// call once its server transaction is gone.
//
// RFC 6026 keeps an answered INVITE's server transaction for Timer L
// (64*T1) to absorb such copies; a transaction holds the INVITE and its
// answer, about 10 KB parsed, and sipgo keeps a terminated transaction on
// the heap until its Timer L fires anyway (v1.7.3 and v1.7.4 do not stop
// it), so at 1,500 calls a second Timer L alone holds hundreds of
// megabytes. TuneSipgoTimers shortens Timer L; this set (a hundred bytes a
// call) keeps the protection for the full 64*T1.
//
// Safe for concurrent use.
type recentCalls struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	keys map[string]time.Time // key -> when it may be forgotten
	fifo []recentEntry        // keys in the order added, oldest at head
	head int
}

type recentEntry struct {
	key     string
	expires time.Time
}

func newRecentCalls(ttl time.Duration, now func() time.Time) *recentCalls {
	if now == nil {
		now = time.Now
	}
	return &recentCalls{ttl: ttl, now: now, keys: make(map[string]time.Time)}
}

// add remembers key for the TTL and forgets keys whose time is up.
func (r *recentCalls) add(key string) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	exp := now.Add(r.ttl)
	r.keys[key] = exp
	r.fifo = append(r.fifo, recentEntry{key, exp})
}

// has reports whether key was added less than the TTL ago.
func (r *recentCalls) has(key string) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.keys[key]
	return ok && now.Before(exp)
}

// len is the number of keys remembered (for tests).
func (r *recentCalls) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// expire drops entries whose time is up; r.mu is held.
func (r *recentCalls) expire(now time.Time) {
	for r.head < len(r.fifo) && !now.Before(r.fifo[r.head].expires) {
		e := r.fifo[r.head]
		// A key added twice has a later deadline in the map: keep it.
		if exp, ok := r.keys[e.key]; ok && !now.Before(exp) {
			delete(r.keys, e.key)
		}
		r.fifo[r.head] = recentEntry{}
		r.head++
	}
	// Reclaim the consumed front once it is most of the slice.
	if r.head > 1024 && r.head*2 > len(r.fifo) {
		n := copy(r.fifo, r.fifo[r.head:])
		clear(r.fifo[n:])
		r.fifo = r.fifo[:n]
		r.head = 0
	}
}
