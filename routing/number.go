package routing

import (
	"context"
	"fmt"
	"slices"

	"github.com/veilgw/veil/store"
)

// AddNumberRequest adds a proxy number to the pool.
type AddNumberRequest struct {
	Number  string
	Carrier string
	// Capabilities default to voice and sms.
	Capabilities   []Capability
	Reserved       bool
	FallbackNumber string
}

// AddNumber validates and adds a proxy number; the write is synced before
// it returns.
func (s *Service) AddNumber(ctx context.Context, req AddNumberRequest) (*Number, error) {
	num, err := ParseE164(req.Number)
	if err != nil {
		return nil, err
	}
	if !s.carriers[req.Carrier] {
		return nil, fmt.Errorf("%w: %w %q", ErrInvalid, ErrUnknownCarrier, req.Carrier)
	}
	caps := req.Capabilities
	if len(caps) == 0 {
		caps = []Capability{CapVoice, CapSMS}
	}
	for _, c := range caps {
		if c != CapVoice && c != CapSMS {
			return nil, invalidf("capability %q: want voice or sms", c)
		}
	}
	caps = slices.Clone(caps)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	if req.FallbackNumber != "" {
		if _, err := ParseE164(req.FallbackNumber); err != nil {
			return nil, err
		}
		if req.FallbackNumber == num {
			return nil, invalidf("fallback_number cannot be the number itself")
		}
	}
	n := &Number{
		V: recordVersion, Number: num, CountryCode: CountryCode(num), Carrier: req.Carrier,
		Capabilities: caps, Reserved: req.Reserved, FallbackNumber: req.FallbackNumber,
		CreatedAt: s.now().UTC(),
	}
	pn := &poolNumber{n: n, adding: true}
	s.mu.Lock()
	if s.pool.numbers[num] != nil {
		s.mu.Unlock()
		return nil, ErrNumberExists
	}
	if len(s.idx.byParticipant[num]) > 0 {
		s.mu.Unlock()
		return nil, errorf(ErrNumberInUse, "%s is a participant of an open session", Mask(num))
	}
	s.pool.add(pn)
	s.mu.Unlock()

	b := s.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixNumber, num), n)
	err = b.Commit()
	s.mu.Lock()
	if err != nil {
		s.pool.remove(num)
	} else {
		pn.adding = false
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.log.Info("proxy number added", "number", Mask(num), "carrier", n.Carrier)
	return n, nil
}

// GetNumber returns a proxy number of the pool and its use.
func (s *Service) GetNumber(num string) (NumberUsage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pn := s.pool.numbers[num]
	if pn == nil || pn.adding {
		return NumberUsage{}, ErrNumberNotFound
	}
	return NumberUsage{Number: pn.n, OpenSessions: s.idx.perProxy[num]}, nil
}

// NumberUsage is a proxy number with how many open sessions use it.
type NumberUsage struct {
	*Number
	OpenSessions int `json:"open_sessions"`
}

// ListNumbers returns the pool sorted by number.
func (s *Service) ListNumbers() []NumberUsage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]NumberUsage, 0, len(s.pool.all))
	for _, num := range s.pool.all {
		pn := s.pool.numbers[num]
		if pn.adding {
			continue
		}
		out = append(out, NumberUsage{Number: pn.n, OpenSessions: s.idx.perProxy[num]})
	}
	return out
}

// UpdateNumberRequest changes a proxy number; nil fields stay as they are.
type UpdateNumberRequest struct {
	// Reserved true takes the number out of automatic allocation (the way
	// to retire a number: reserve it, let its sessions end, delete it).
	Reserved *bool
	// FallbackNumber; "" removes the number's own fallback.
	FallbackNumber *string
}

// UpdateNumber changes a proxy number's reserved flag or fallback; the
// write is synced before it returns. Open sessions keep the number.
func (s *Service) UpdateNumber(ctx context.Context, num string, req UpdateNumberRequest) (*Number, error) {
	if req.FallbackNumber != nil && *req.FallbackNumber != "" {
		if _, err := ParseE164(*req.FallbackNumber); err != nil {
			return nil, err
		}
		if *req.FallbackNumber == num {
			return nil, invalidf("fallback_number cannot be the number itself")
		}
	}
	// Number updates are rare: writing under the lock keeps memory and
	// disk in the same order without a reservation scheme.
	s.mu.Lock()
	defer s.mu.Unlock()
	pn := s.pool.numbers[num]
	if pn == nil || pn.adding || pn.deleting {
		return nil, ErrNumberNotFound
	}
	n := *pn.n
	if req.Reserved != nil {
		n.Reserved = *req.Reserved
	}
	if req.FallbackNumber != nil {
		n.FallbackNumber = *req.FallbackNumber
	}
	b := s.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixNumber, num), &n)
	if err := b.Commit(); err != nil {
		return nil, err
	}
	pn.n = &n
	return &n, nil
}

// DeleteNumber removes a proxy number; it fails with ErrNumberInUse while
// an open session uses it.
func (s *Service) DeleteNumber(ctx context.Context, num string) error {
	s.mu.Lock()
	pn := s.pool.numbers[num]
	if pn == nil || pn.adding || pn.deleting {
		s.mu.Unlock()
		return ErrNumberNotFound
	}
	if n := s.idx.perProxy[num]; n > 0 {
		s.mu.Unlock()
		return errorf(ErrNumberInUse, "%d open sessions use it; close them first", n)
	}
	pn.deleting = true
	s.mu.Unlock()

	b := s.db.NewBatch()
	b.Delete(store.Key(store.PrefixNumber, num))
	err := b.Commit()
	s.mu.Lock()
	if err != nil {
		pn.deleting = false
	} else {
		s.pool.remove(num)
	}
	s.mu.Unlock()
	if err == nil {
		s.log.Info("proxy number removed", "number", Mask(num))
	}
	return err
}
