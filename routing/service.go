package routing

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veilgw/veil/store"
)

// Options configure a Service. The zero value means defaults.
type Options struct {
	// Carriers are the names of the configured carriers; numbers and
	// routes may only name these.
	Carriers []string
	// DefaultTTL is a session's lifetime when the request gives none;
	// 0 means 24h.
	DefaultTTL time.Duration
	// MaxTTL bounds any session's lifetime; 0 means one year.
	MaxTTL time.Duration
	// SweepInterval is how often Run closes expired sessions; 0 means 1s.
	SweepInterval time.Duration
	// FallbackNumber receives out-of-session traffic when the proxy
	// number names none; empty means reject it.
	FallbackNumber string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Service answers questions about numbers, routes and sessions. It is safe
// for concurrent use.
type Service struct {
	db       *store.DB
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	carriers map[string]bool

	mu     sync.RWMutex
	idx    index
	pool   pool
	routes map[string]*Route

	kick  chan struct{} // size 1: a lazy check found an expired session
	stats counters
}

type counters struct {
	created, closed, expired, poolExhausted atomic.Uint64
}

// Stats is a snapshot of the Service's counters.
type Stats struct {
	OpenSessions  int
	Numbers       int
	Routes        int
	Created       uint64 // sessions created since start
	Closed        uint64 // sessions closed through the API since start
	Expired       uint64 // sessions closed by expiry since start
	PoolExhausted uint64 // creates refused with ErrPoolExhausted since start
	ExpiryBacklog int    // entries waiting in the expiry schedule
}

// New loads numbers, routes and open sessions from db.
func New(db *store.DB, opts Options) (*Service, error) {
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = 24 * time.Hour
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 365 * 24 * time.Hour
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	s := &Service{
		db:       db,
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		carriers: make(map[string]bool),
		idx:      newIndex(),
		pool:     newPool(),
		routes:   make(map[string]*Route),
		kick:     make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, c := range opts.Carriers {
		s.carriers[c] = true
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) load() error {
	err := s.db.Scan([]byte(store.PrefixNumber), nil, func(_, v []byte) (bool, error) {
		n := new(Number)
		if err := decode(v, n, &n.V); err != nil {
			return false, err
		}
		if !s.carriers[n.Carrier] {
			s.log.Warn("proxy number names a carrier that is not configured", "number", Mask(n.Number), "carrier", n.Carrier)
		}
		s.pool.add(&poolNumber{n: n})
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("loading numbers: %w", err)
	}
	err = s.db.Scan([]byte(store.PrefixRoute), nil, func(_, v []byte) (bool, error) {
		r := new(Route)
		if err := decode(v, r, &r.V); err != nil {
			return false, err
		}
		s.routes[r.Prefix] = r
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("loading routes: %w", err)
	}
	// The index rows name the open sessions. Their records are read in one
	// ordered scan from the oldest open id (ids sort by creation time),
	// which at 1M sessions is about twice as fast as a Get per id.
	ids := make(map[string]bool)
	oldest := ""
	err = s.db.Scan([]byte(store.PrefixSessionIndex), nil, func(_, v []byte) (bool, error) {
		id := string(v)
		ids[id] = true
		if oldest == "" || id < oldest {
			oldest = id
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("loading session index: %w", err)
	}
	s.idx.presize(len(ids))
	if len(ids) > 0 {
		err = s.db.Scan([]byte(store.PrefixSession), store.Key(store.PrefixSession, oldest), func(k, v []byte) (bool, error) {
			parts, _ := store.SplitKey(k, store.PrefixSession, 1)
			if !ids[parts[0]] {
				return true, nil
			}
			delete(ids, parts[0])
			sess := new(Session)
			if err := decode(v, sess, &sess.V); err != nil {
				return false, fmt.Errorf("open session %s: %w", parts[0], err)
			}
			if sess.State != StateOpen {
				s.log.Error("session index names a closed session; run veild check", "session", sess.ID)
				return len(ids) > 0, nil
			}
			s.idx.add(&openSession{sess: sess})
			s.idx.schedule(sess)
			return len(ids) > 0, nil
		})
		if err != nil {
			return fmt.Errorf("loading open sessions: %w", err)
		}
		for id := range ids {
			s.log.Error("session index names a missing session; run veild check", "session", id)
		}
	}
	s.log.Info("routing state loaded", "numbers", len(s.pool.numbers), "routes", len(s.routes), "open_sessions", len(s.idx.byID))
	return nil
}

// decode reads a versioned JSON record, refusing versions from the future.
func decode(data []byte, v any, version *int) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if *version > recordVersion {
		return fmt.Errorf("record version %d is newer than this build (%d)", *version, recordVersion)
	}
	return nil
}

// Run closes expired sessions until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.kick:
		}
		s.SweepExpired(ctx)
	}
}

// SweepExpired closes every open session whose expiry has passed and
// returns how many it closed.
func (s *Service) SweepExpired(ctx context.Context) int {
	s.mu.Lock()
	ids := s.idx.due(s.now())
	s.mu.Unlock()
	n := 0
	for i, id := range ids {
		if ctx.Err() != nil {
			s.reschedule(ids[i:])
			break
		}
		closed, err := s.closeSession(ctx, id, CloseReasonExpired, true)
		if err != nil {
			s.log.Error("closing expired session", "session", id, "err", err)
			continue
		}
		if closed != nil && closed.CloseReason == CloseReasonExpired {
			n++
		}
	}
	return n
}

// reschedule puts sessions that a sweep popped but did not close back on
// the expiry schedule, so a cancelled sweep loses none.
func (s *Service) reschedule(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if o := s.idx.byID[id]; o != nil && !o.closing {
			s.idx.schedule(o.sess)
		}
	}
}

func (s *Service) kickSweeper() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.RLock()
	st := Stats{
		OpenSessions:  len(s.idx.byID),
		Numbers:       len(s.pool.numbers),
		Routes:        len(s.routes),
		ExpiryBacklog: s.idx.expiry.Len(),
	}
	s.mu.RUnlock()
	st.Created = s.stats.created.Load()
	st.Closed = s.stats.closed.Load()
	st.Expired = s.stats.expired.Load()
	st.PoolExhausted = s.stats.poolExhausted.Load()
	return st
}

// newID returns a prefixed id that sorts by creation time: 8 bytes of
// nanoseconds then 8 random bytes, in hex.
func newID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	rand.Read(b[8:])
	return prefix + hex.EncodeToString(b[:])
}
