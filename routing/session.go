package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/veilgw/veil/store"
)

// maxUniqueName bounds unique_name, in bytes.
const maxUniqueName = 128

// CreateSessionRequest asks for a new session.
type CreateSessionRequest struct {
	// Participants are the two real numbers, in E.164.
	Participants []string
	// Mode defaults to voice+sms.
	Mode   Mode
	Record bool
	// TTL or ExpiresAt (not both) set the expiry; neither means the
	// default TTL.
	TTL       time.Duration
	ExpiresAt time.Time
	// UniqueName, if set, must be unique among open sessions (a booking id).
	UniqueName string
	// ProxyNumber asks for a specific number (reserved ones included)
	// instead of letting the allocator choose.
	ProxyNumber string
}

func (s *Service) validateCreate(req *CreateSessionRequest, now time.Time) error {
	if len(req.Participants) != 2 {
		return invalidf("a session needs exactly 2 participants, got %d", len(req.Participants))
	}
	for i, p := range req.Participants {
		if _, err := ParseE164(p); err != nil {
			return fmt.Errorf("participants[%d]: %w", i, err)
		}
	}
	if req.Participants[0] == req.Participants[1] {
		return invalidf("participants must be two different numbers")
	}
	if req.Mode == "" {
		req.Mode = ModeVoiceSMS
	}
	if !req.Mode.valid() {
		return invalidf("mode %s: want voice, sms or voice+sms", redactInput(string(req.Mode)))
	}
	switch {
	case req.TTL != 0 && !req.ExpiresAt.IsZero():
		return invalidf("give ttl_seconds or expires_at, not both")
	case req.TTL < 0:
		return invalidf("ttl_seconds must be positive")
	case req.TTL > s.opts.MaxTTL:
		return invalidf("ttl_seconds is over the maximum of %d", int64(s.opts.MaxTTL/time.Second))
	case !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now):
		return invalidf("expires_at is in the past")
	case !req.ExpiresAt.IsZero() && req.ExpiresAt.Sub(now) > s.opts.MaxTTL:
		return invalidf("expires_at is further than the maximum session lifetime (%s)", s.opts.MaxTTL)
	}
	if len(req.UniqueName) > maxUniqueName || !utf8.ValidString(req.UniqueName) ||
		strings.IndexFunc(req.UniqueName, badNameRune) >= 0 {
		return invalidf("unique_name must be valid text of at most %d bytes without control characters", maxUniqueName)
	}
	if req.ProxyNumber != "" {
		if _, err := ParseE164(req.ProxyNumber); err != nil {
			return fmt.Errorf("proxy_number: %w", err)
		}
	}
	return nil
}

// badNameRune reports runes refused in names: control characters, and the
// replacement character, which is what a JSON decoder makes of a lone
// surrogate, so the stored name would not be what the client sent.
func badNameRune(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }

// CreateSession allocates a proxy number free for every participant and
// opens a session; the records are synced before it returns. With no free
// number it returns ErrPoolExhausted and writes nothing.
func (s *Service) CreateSession(ctx context.Context, req CreateSessionRequest) (*Session, error) {
	now := s.now().UTC()
	if err := s.validateCreate(&req, now); err != nil {
		return nil, err
	}
	expires := req.ExpiresAt.UTC()
	if expires.IsZero() {
		ttl := req.TTL
		if ttl == 0 {
			ttl = s.opts.DefaultTTL
		}
		expires = now.Add(ttl)
	}
	// Lazy expiry: sessions past their expiry that would block this one
	// are closed first, so an expired pair is free even between sweeps.
	s.closeExpiredBlocking(ctx, req.Participants, req.UniqueName, now)

	sess := &Session{
		V: recordVersion, ID: newID("ses_", now), Mode: req.Mode, Record: req.Record,
		UniqueName: req.UniqueName, State: StateOpen, CreatedAt: now, ExpiresAt: expires,
	}
	for _, p := range req.Participants {
		sess.Participants = append(sess.Participants, Participant{Number: p})
	}
	o := &openSession{sess: sess, pending: true}

	s.mu.Lock()
	proxy, err := s.reserveLocked(&req)
	if err != nil {
		s.mu.Unlock()
		if errors.Is(err, ErrPoolExhausted) {
			s.stats.poolExhausted.Add(1)
		}
		return nil, err
	}
	sess.ProxyNumber = proxy
	s.idx.add(o)
	s.mu.Unlock()

	b := s.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixSession, sess.ID), sess)
	for _, p := range req.Participants {
		b.Set(store.Key(store.PrefixSessionIndex, p, proxy), []byte(sess.ID))
		b.Set(store.Key(store.PrefixSessionLast, p, proxy), []byte(sess.ID))
		b.Set(store.Key(store.PrefixSessionByPart, p, sess.ID), nil)
	}
	if sess.UniqueName != "" {
		b.Set(store.Key(store.PrefixSessionUnique, sess.UniqueName), []byte(sess.ID))
	}
	err = b.Commit()

	s.mu.Lock()
	if err != nil {
		s.idx.remove(o)
	} else {
		o.pending = false
		s.idx.schedule(sess)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("writing session: %w", err)
	}
	s.stats.created.Add(1)
	s.log.Debug("session opened", "session", sess.ID, "proxy", Mask(proxy))
	return copySession(sess), nil
}

// reserveLocked checks the request against the index and picks the proxy
// number. Caller holds s.mu for writing.
func (s *Service) reserveLocked(req *CreateSessionRequest) (string, error) {
	for i, p := range req.Participants {
		if s.pool.numbers[p] != nil {
			return "", invalidf("participants[%d] is a proxy number of the pool", i)
		}
	}
	if o := s.idx.byUnique[req.UniqueName]; req.UniqueName != "" && o != nil {
		return "", errorf(ErrUniqueNameInUse, "open session %s has it", o.sess.ID)
	}
	held := make(map[string]bool)
	for _, p := range req.Participants {
		for _, o := range s.idx.byParticipant[p] {
			held[o.sess.ProxyNumber] = true
		}
	}
	if req.ProxyNumber != "" {
		pn := s.pool.numbers[req.ProxyNumber]
		switch {
		case pn == nil || pn.adding || pn.deleting:
			return "", ErrNumberNotFound
		case !pn.n.supports(req.Mode):
			return "", invalidf("proxy_number does not support mode %s", req.Mode)
		case held[req.ProxyNumber]:
			return "", ErrProxyNotFree
		}
		return req.ProxyNumber, nil
	}
	proxy, ok := s.pool.pick(req.Participants, req.Mode, held)
	if !ok {
		return "", ErrPoolExhausted
	}
	return proxy, nil
}

// closeExpiredBlocking closes expired sessions that hold a participant's
// pairs or the unique name.
func (s *Service) closeExpiredBlocking(ctx context.Context, participants []string, uniqueName string, now time.Time) {
	var ids []string
	s.mu.RLock()
	expired := func(o *openSession) bool {
		return o != nil && !o.pending && !o.closing && !now.Before(o.sess.ExpiresAt)
	}
	for _, p := range participants {
		for _, o := range s.idx.byParticipant[p] {
			if expired(o) {
				ids = append(ids, o.sess.ID)
			}
		}
	}
	if o := s.idx.byUnique[uniqueName]; uniqueName != "" && expired(o) {
		ids = append(ids, o.sess.ID)
	}
	s.mu.RUnlock()
	for _, id := range ids {
		if _, err := s.closeSession(ctx, id, CloseReasonExpired, true); err != nil {
			s.log.Error("closing expired session", "session", id, "err", err)
		}
	}
}

// CloseSession closes an open session. Closing a closed session returns it
// unchanged.
func (s *Service) CloseSession(ctx context.Context, id string) (*Session, error) {
	return s.closeSession(ctx, id, CloseReasonAPI, false)
}

// closeSession closes session id with reason. With onlyIfExpired it leaves
// a session whose expiry has not passed open (its expiry moved on).
func (s *Service) closeSession(ctx context.Context, id, reason string, onlyIfExpired bool) (*Session, error) {
	s.mu.Lock()
	o := s.idx.byID[id]
	if o == nil || o.pending {
		s.mu.Unlock()
		return s.loadSession(id)
	}
	if o.closing {
		done := o.done
		s.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return s.loadSession(id)
	}
	now := s.now().UTC()
	if onlyIfExpired && now.Before(o.sess.ExpiresAt) {
		s.mu.Unlock()
		return copySession(o.sess), nil
	}
	o.closing = true
	o.done = make(chan struct{})
	s.mu.Unlock()

	closed := copySession(o.sess)
	closed.State = StateClosed
	closed.ClosedAt = &now
	closed.CloseReason = reason
	b := s.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixSession, id), closed)
	for _, p := range closed.Participants {
		b.Delete(store.Key(store.PrefixSessionIndex, p.Number, closed.ProxyNumber))
	}
	if closed.UniqueName != "" {
		b.Delete(store.Key(store.PrefixSessionUnique, closed.UniqueName))
	}
	err := b.Commit()

	s.mu.Lock()
	if err != nil {
		o.closing = false
		s.idx.schedule(o.sess) // the sweeper may have popped it: try again later
	} else {
		s.idx.remove(o)
	}
	close(o.done)
	o.done = nil
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("closing session %s: %w", id, err)
	}
	if reason == CloseReasonExpired {
		s.stats.expired.Add(1)
	} else {
		s.stats.closed.Add(1)
	}
	s.log.Debug("session closed", "session", id, "reason", reason)
	return closed, nil
}

func (s *Service) loadSession(id string) (*Session, error) {
	sess := new(Session)
	err := s.db.GetJSON(store.Key(store.PrefixSession, id), sess)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, err
	}
	return sess, nil
}

func copySession(s *Session) *Session {
	c := *s
	c.Participants = slices.Clone(s.Participants)
	return &c
}

// GetSession returns a session, open or closed. An open session past its
// expiry is closed on the spot.
func (s *Service) GetSession(ctx context.Context, id string) (*Session, error) {
	s.mu.RLock()
	o := s.idx.byID[id]
	var sess *Session
	if o != nil && !o.pending && !o.closing {
		sess = o.sess
	}
	s.mu.RUnlock()
	if sess == nil {
		return s.loadSession(id)
	}
	if !s.now().Before(sess.ExpiresAt) {
		return s.closeSession(ctx, id, CloseReasonExpired, true)
	}
	return copySession(sess), nil
}

// SessionFilter selects sessions for ListSessions. Zero fields match all.
type SessionFilter struct {
	State       State
	Participant string
	UniqueName  string
	ProxyNumber string
	// After is a cursor: only ids greater than it are returned.
	After string
	// Limit bounds the page; 0 means 100, at most 1000.
	Limit int
}

func (f *SessionFilter) match(s *Session, now time.Time) bool {
	state := s.State
	if state == StateOpen && !now.Before(s.ExpiresAt) {
		state = StateClosed // expired, not yet swept
	}
	if f.State != "" && state != f.State {
		return false
	}
	if f.UniqueName != "" && s.UniqueName != f.UniqueName {
		return false
	}
	if f.ProxyNumber != "" && s.ProxyNumber != f.ProxyNumber {
		return false
	}
	if f.Participant != "" && !slices.ContainsFunc(s.Participants, func(p Participant) bool { return p.Number == f.Participant }) {
		return false
	}
	return f.After == "" || s.ID > f.After
}

// ListSessions returns sessions matching f in id (creation) order, and the
// cursor for the next page ("" when this is the last).
func (s *Service) ListSessions(ctx context.Context, f SessionFilter) ([]*Session, string, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	if f.State != "" && f.State != StateOpen && f.State != StateClosed {
		return nil, "", invalidf("state %s: want open or closed", redactInput(string(f.State)))
	}
	now := s.now()
	var out []*Session
	if f.State == StateOpen {
		out = s.listOpen(&f, now)
	} else {
		var err error
		if out, err = s.listStored(ctx, &f, now); err != nil {
			return nil, "", err
		}
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// listOpen serves open sessions from memory: up to f.Limit+1 of them.
func (s *Service) listOpen(f *SessionFilter, now time.Time) []*Session {
	s.mu.RLock()
	var candidates []*openSession
	switch {
	case f.Participant != "":
		candidates = slices.Clone(s.idx.byParticipant[f.Participant])
	case f.UniqueName != "":
		if o := s.idx.byUnique[f.UniqueName]; o != nil {
			candidates = []*openSession{o}
		}
	default:
		candidates = make([]*openSession, 0, len(s.idx.byID))
		for _, o := range s.idx.byID {
			candidates = append(candidates, o)
		}
	}
	var out []*Session
	for _, o := range candidates {
		if !o.pending && !o.closing && f.match(o.sess, now) {
			out = append(out, o.sess)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Session) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > f.Limit+1 {
		out = out[:f.Limit+1]
	}
	for i, sess := range out {
		out[i] = copySession(sess)
	}
	return out
}

// listStored scans the database: by participant through sesspart/, else
// every session record.
func (s *Service) listStored(ctx context.Context, f *SessionFilter, now time.Time) ([]*Session, error) {
	var out []*Session
	add := func(sess *Session) bool {
		if f.match(sess, now) {
			if sess.State == StateOpen && !now.Before(sess.ExpiresAt) {
				// Expired but not swept yet: close it now, as GetSession
				// does, so the list shows what a Get would.
				if closed, err := s.closeSession(ctx, sess.ID, CloseReasonExpired, true); err == nil {
					sess = closed
				}
			}
			out = append(out, sess)
		}
		return len(out) <= f.Limit && ctx.Err() == nil
	}
	if f.Participant != "" {
		prefix := store.Key(store.PrefixSessionByPart, f.Participant, "")
		var start []byte
		if f.After != "" {
			start = store.Key(store.PrefixSessionByPart, f.Participant, f.After+"\x00")
		}
		err := s.db.Scan(prefix, start, func(k, _ []byte) (bool, error) {
			parts, ok := store.SplitKey(k, store.PrefixSessionByPart, 2)
			if !ok {
				return true, nil
			}
			sess, err := s.loadSession(parts[1])
			if err != nil {
				return false, err
			}
			return add(sess), nil
		})
		return out, err
	}
	var start []byte
	if f.After != "" {
		start = store.Key(store.PrefixSession, f.After+"\x00")
	}
	err := s.db.Scan([]byte(store.PrefixSession), start, func(_, v []byte) (bool, error) {
		sess := new(Session)
		if err := decode(v, sess, &sess.V); err != nil {
			return false, err
		}
		return add(sess), nil
	})
	return out, err
}
