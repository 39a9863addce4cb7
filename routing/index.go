package routing

import (
	"container/heap"
	"slices"
	"time"
)

// pairKey identifies the open session of a participant on a proxy number.
type pairKey struct{ participant, proxy string }

// openSession is the in-memory entry of a session that is open, or being
// created (pending) or closed (closing).
type openSession struct {
	sess    *Session // immutable while in the index
	pending bool     // reserved; its batch is not committed yet
	closing bool     // its close batch is being written
	done    chan struct{}
}

// index holds every open session. Guarded by Service.mu.
type index struct {
	byID          map[string]*openSession
	byPair        map[pairKey]*openSession
	byParticipant map[string][]*openSession
	byUnique      map[string]*openSession
	perProxy      map[string]int
	expiry        expiryHeap
}

func newIndex() index {
	return index{
		byID:          make(map[string]*openSession),
		byPair:        make(map[pairKey]*openSession),
		byParticipant: make(map[string][]*openSession),
		byUnique:      make(map[string]*openSession),
		perProxy:      make(map[string]int),
	}
}

// presize makes the maps for n sessions; only on an empty index, at start.
func (x *index) presize(n int) {
	if n == 0 {
		return
	}
	x.byID = make(map[string]*openSession, n)
	x.byPair = make(map[pairKey]*openSession, 2*n)
	x.byParticipant = make(map[string][]*openSession, 2*n)
	x.expiry = make(expiryHeap, 0, n)
}

func (x *index) add(o *openSession) {
	s := o.sess
	x.byID[s.ID] = o
	for _, p := range s.Participants {
		x.byPair[pairKey{p.Number, s.ProxyNumber}] = o
		x.byParticipant[p.Number] = append(x.byParticipant[p.Number], o)
	}
	if s.UniqueName != "" {
		x.byUnique[s.UniqueName] = o
	}
	x.perProxy[s.ProxyNumber]++
}

func (x *index) remove(o *openSession) {
	s := o.sess
	if x.byID[s.ID] != o {
		return
	}
	delete(x.byID, s.ID)
	for _, p := range s.Participants {
		delete(x.byPair, pairKey{p.Number, s.ProxyNumber})
		list := slices.DeleteFunc(x.byParticipant[p.Number], func(e *openSession) bool { return e == o })
		if len(list) == 0 {
			delete(x.byParticipant, p.Number)
		} else {
			x.byParticipant[p.Number] = list
		}
	}
	if s.UniqueName != "" && x.byUnique[s.UniqueName] == o {
		delete(x.byUnique, s.UniqueName)
	}
	if x.perProxy[s.ProxyNumber]--; x.perProxy[s.ProxyNumber] <= 0 {
		delete(x.perProxy, s.ProxyNumber)
	}
}

// expiryEntry schedules a check of session id at time at. Entries are never
// removed early: a session closed through the API leaves a stale entry that
// the sweeper drops when it pops it.
type expiryEntry struct {
	at time.Time
	id string
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (x *index) schedule(s *Session) {
	heap.Push(&x.expiry, expiryEntry{at: s.ExpiresAt, id: s.ID})
}

// due pops the ids of open sessions whose expiry is at or before now.
func (x *index) due(now time.Time) []string {
	var ids []string
	for x.expiry.Len() > 0 && !x.expiry[0].at.After(now) {
		e := heap.Pop(&x.expiry).(expiryEntry)
		if o := x.byID[e.id]; o != nil && !o.pending && !o.closing && o.sess.ExpiresAt.Equal(e.at) {
			ids = append(ids, e.id)
		}
	}
	return ids
}
