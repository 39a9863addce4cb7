package routing

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/veilgw/veil/store"
)

// maxRouteCarriers bounds a route's failover list.
const maxRouteCarriers = 10

// SetRoute creates or replaces the route for prefix ("+" then up to 15
// digits; "+" alone matches every destination).
func (s *Service) SetRoute(ctx context.Context, prefix string, carriers []string) (*Route, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	if len(carriers) == 0 || len(carriers) > maxRouteCarriers {
		return nil, invalidf("a route needs 1 to %d carriers", maxRouteCarriers)
	}
	for i, c := range carriers {
		if !s.carriers[c] {
			return nil, fmt.Errorf("%w: %w %q", ErrInvalid, ErrUnknownCarrier, c)
		}
		if slices.Contains(carriers[:i], c) {
			return nil, invalidf("carrier %q listed twice", c)
		}
	}
	r := &Route{V: recordVersion, Prefix: prefix, Carriers: slices.Clone(carriers), CreatedAt: s.now().UTC()}
	b := s.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixRoute, prefix), r)
	// Routes change rarely: writing under the lock keeps the table and the
	// disk in the same order without a reservation scheme.
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.Commit(); err != nil {
		return nil, err
	}
	s.routes[prefix] = r
	return r, nil
}

func validPrefix(p string) error {
	if len(p) < 1 || len(p) > 16 || p[0] != '+' || (len(p) > 1 && p[1] == '0') {
		return invalidf("route prefix %s: want + then up to 15 digits, not starting with 0", redactInput(p))
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return invalidf("route prefix %s: want + then up to 15 digits", redactInput(p))
		}
	}
	return nil
}

// DeleteRoute removes the route for prefix.
func (s *Service) DeleteRoute(ctx context.Context, prefix string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routes[prefix] == nil {
		return ErrRouteNotFound
	}
	b := s.db.NewBatch()
	b.Delete(store.Key(store.PrefixRoute, prefix))
	if err := b.Commit(); err != nil {
		return err
	}
	delete(s.routes, prefix)
	return nil
}

// ListRoutes returns the routes sorted by prefix.
func (s *Service) ListRoutes() []*Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Route) int { return cmp.Compare(a.Prefix, b.Prefix) })
	return out
}

// carriersForLocked returns the carriers for dest: the longest matching
// route, else the carrier owning the proxy number. Caller holds s.mu.
func (s *Service) carriersForLocked(dest string, owner *poolNumber) []string {
	for l := len(dest); l >= 1; l-- {
		if r := s.routes[dest[:l]]; r != nil {
			return r.Carriers
		}
	}
	return owner.ownerRoute
}
