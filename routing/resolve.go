package routing

import (
	"context"
	"errors"

	"github.com/veilgw/veil/store"
)

// ResolveCall answers "from called the proxy number to": the session, the
// callee, the caller ID to present and the carriers to try. Errors are
// *ResolveError values unwrapping to ErrUnknownNumber, ErrOutOfSession,
// ErrSessionClosed or ErrModeNotAllowed. The hit path takes a read lock and
// does no I/O.
func (s *Service) ResolveCall(ctx context.Context, from, to string) (Decision, error) {
	return s.resolve(from, to, CapVoice)
}

// ResolveMessage is ResolveCall for an SMS from "from" to the proxy number
// "to".
func (s *Service) ResolveMessage(ctx context.Context, from, to string) (Decision, error) {
	return s.resolve(from, to, CapSMS)
}

func (s *Service) resolve(from, to string, kind Capability) (Decision, error) {
	now := s.now()
	s.mu.RLock()
	pn := s.pool.numbers[to]
	if pn == nil || pn.adding {
		s.mu.RUnlock()
		return Decision{}, &ResolveError{Reason: ErrUnknownNumber}
	}
	o := s.idx.byPair[pairKey{from, to}]
	if o == nil || o.pending || o.closing {
		s.mu.RUnlock()
		return Decision{}, s.missing(from, pn.n)
	}
	sess := o.sess
	var carriers []string
	callee := sess.other(from)
	if callee != "" {
		carriers = s.carriersForLocked(callee, pn)
	}
	s.mu.RUnlock()

	if !now.Before(sess.ExpiresAt) {
		s.kickSweeper()
		return Decision{}, &ResolveError{Reason: ErrSessionClosed, Proxy: to, SessionID: sess.ID, Fallback: s.fallback(pn.n)}
	}
	if !sess.Mode.Allows(kind) || !pn.n.has(kind) {
		return Decision{}, &ResolveError{Reason: ErrModeNotAllowed, Proxy: to, SessionID: sess.ID, Fallback: s.fallback(pn.n)}
	}
	return Decision{
		SessionID: sess.ID,
		Proxy:     to,
		CallerID:  to,
		Callee:    callee,
		Record:    sess.Record,
		Carriers:  carriers,
	}, nil
}

// missing explains a miss: a closed session of the pair, or none at all.
func (s *Service) missing(from string, n *Number) error {
	e := &ResolveError{Reason: ErrOutOfSession, Proxy: n.Number, Fallback: s.fallback(n)}
	id, err := s.db.Get(store.Key(store.PrefixSessionLast, from, n.Number))
	if err == nil {
		e.Reason = ErrSessionClosed
		e.SessionID = string(id)
	} else if !errors.Is(err, store.ErrNotFound) {
		s.log.Error("reading last session of a pair", "err", err)
	}
	return e
}

func (s *Service) fallback(n *Number) string {
	if n.FallbackNumber != "" {
		return n.FallbackNumber
	}
	return s.opts.FallbackNumber
}
