package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// raceCreates starts one goroutine per request, releases them together on a
// closed channel and returns each one's result, indexed like reqs.
func raceCreates(tb testing.TB, svc *Service, reqs []CreateSessionRequest) ([]*Session, []error) {
	tb.Helper()
	sessions := make([]*Session, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sessions[i], errs[i] = svc.CreateSession(context.Background(), req)
		}()
	}
	close(start)
	wg.Wait()
	return sessions, errs
}

// TestConcurrentCreates races 50 creates over a pool of 10 numbers in
// scenarios whose best outcome is known exactly, and checks that the
// allocator reaches it without breaking the core rule or leaving anything
// behind for the creates it refused.
func TestConcurrentCreates(t *testing.T) {
	const poolSize = 10
	num := func(i int) string { return fmt.Sprintf("+1555000%04d", i) }
	part := func(i int) string { return fmt.Sprintf("+1415555%04d", i) }

	type scenario struct {
		name string
		reqs []CreateSessionRequest
		// want is the number of creates that must succeed, or -1 when
		// only maximality is checked (see below).
		want int
	}
	var scenarios []scenario

	// One pair asking 50 times: A and B share each number at most once,
	// so exactly poolSize succeed.
	var one []CreateSessionRequest
	for range 50 {
		one = append(one, pair(part(0), part(1)))
	}
	scenarios = append(scenarios, scenario{"one pair", one, poolSize})

	// A hub with 50 different partners: the hub holds each number at most
	// once, so exactly poolSize succeed.
	var hub []CreateSessionRequest
	for i := range 50 {
		hub = append(hub, pair(part(1000), part(i)))
	}
	scenarios = append(scenarios, scenario{"hub", hub, poolSize})

	// 25 disjoint pairs, each asking twice: no participant is in more than
	// two requests, so all 50 succeed.
	var disjoint []CreateSessionRequest
	for i := range 25 {
		r := pair(part(2*i), part(2*i+1))
		disjoint = append(disjoint, r, r)
	}
	scenarios = append(scenarios, scenario{"disjoint pairs", disjoint, 50})

	// Both participants of a pair in the reverse order count as the same
	// pair: 25 requests each way, exactly poolSize succeed.
	var both []CreateSessionRequest
	for i := range 50 {
		if i%2 == 0 {
			both = append(both, pair(part(0), part(1)))
		} else {
			both = append(both, pair(part(1), part(0)))
		}
	}
	scenarios = append(scenarios, scenario{"one pair both ways", both, poolSize})

	// 8 participants, 50 random distinct pairs (fixed seed). The best count
	// depends on the order, so check maximality instead: with no closes,
	// what a participant holds only grows, so a create refused for A and B
	// means no number is free for both at the end either.
	rng := rand.New(rand.NewPCG(42, 7))
	var random []CreateSessionRequest
	for range 50 {
		i := rng.IntN(8)
		j := (i + 1 + rng.IntN(7)) % 8
		random = append(random, pair(part(i), part(j)))
	}
	scenarios = append(scenarios, scenario{"random pairs of 8", random, -1})

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			for i := range poolSize {
				e.addNumbers(t, num(i))
			}
			sessions, errs := raceCreates(t, e.svc, sc.reqs)

			ok := 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
					if sessions[i] == nil || sessions[i].ProxyNumber == "" {
						t.Fatalf("request %d: success without a session", i)
					}
				case !errors.Is(err, ErrPoolExhausted):
					t.Fatalf("request %d: %v, want success or ErrPoolExhausted", i, err)
				}
			}
			if sc.want >= 0 && ok != sc.want {
				t.Fatalf("%d creates succeeded, want exactly %d", ok, sc.want)
			}

			open := listAll(t, e.svc, SessionFilter{State: StateOpen})
			stored := listAll(t, e.svc, SessionFilter{})
			if len(open) != ok || len(stored) != ok {
				t.Fatalf("%d successes but %d open and %d stored sessions", ok, len(open), len(stored))
			}
			if st := e.svc.Stats(); st.OpenSessions != ok || st.Created != uint64(ok) || st.PoolExhausted != uint64(len(sc.reqs)-ok) {
				t.Fatalf("Stats = %+v with %d successes", st, ok)
			}
			assertCoreRule(t, open)
			checkClean(t, e.db)

			held := map[pairKey]bool{}
			for _, s := range open {
				for _, p := range s.Participants {
					held[pairKey{p.Number, s.ProxyNumber}] = true
				}
			}
			for i, err := range errs {
				if err == nil {
					continue
				}
				a, b := sc.reqs[i].Participants[0], sc.reqs[i].Participants[1]
				for n := range poolSize {
					if !held[pairKey{a, num(n)}] && !held[pairKey{b, num(n)}] {
						t.Fatalf("request %d (%s, %s) was refused, but %s is free for both", i, a, b, num(n))
					}
				}
			}
			// Every success resolves both ways.
			for i, s := range sessions {
				if s == nil {
					continue
				}
				a, b := sc.reqs[i].Participants[0], sc.reqs[i].Participants[1]
				d, err := e.svc.ResolveCall(context.Background(), a, s.ProxyNumber)
				if err != nil || d.SessionID != s.ID || d.Callee != b {
					t.Fatalf("ResolveCall(%s, %s) = %+v, %v; want session %s", a, s.ProxyNumber, d, err, s.ID)
				}
			}
		})
	}
}

// TestConcurrentMixed runs creates, closes, lookups, lists and sweeps at
// once, for the race detector and the core rule; the clock moves too.
func TestConcurrentMixed(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 6 {
		e.addNumbers(t, fmt.Sprintf("+1555000%04d", i))
	}
	parts := make([]string, 8)
	for i := range parts {
		parts[i] = fmt.Sprintf("+1415555%04d", i)
	}
	const workers, rounds = 8, 60
	start := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			<-start
			var mine []string
			for range rounds {
				i := rng.IntN(len(parts))
				j := (i + 1 + rng.IntN(len(parts)-1)) % len(parts)
				switch r := rng.IntN(10); {
				case r < 4:
					s, err := e.svc.CreateSession(ctx, CreateSessionRequest{Participants: []string{parts[i], parts[j]}, TTL: time.Duration(1+rng.IntN(5)) * time.Minute})
					if err == nil {
						mine = append(mine, s.ID)
					} else if !errors.Is(err, ErrPoolExhausted) {
						errc <- err
						return
					}
				case r < 6 && len(mine) > 0:
					if _, err := e.svc.CloseSession(ctx, mine[rng.IntN(len(mine))]); err != nil {
						errc <- err
						return
					}
				case r < 7:
					e.clock.Advance(time.Minute)
					e.svc.SweepExpired(ctx)
				case r < 8:
					if _, _, err := e.svc.ListSessions(ctx, SessionFilter{State: StateOpen, Participant: parts[i]}); err != nil {
						errc <- err
						return
					}
				default:
					e.svc.ResolveCall(ctx, parts[i], fmt.Sprintf("+1555000%04d", rng.IntN(6)))
					e.svc.ResolveMessage(ctx, parts[j], fmt.Sprintf("+1555000%04d", rng.IntN(6)))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	assertCoreRule(t, listAll(t, e.svc, SessionFilter{State: StateOpen}))
	checkClean(t, e.db)
	e.clock.Advance(time.Hour)
	e.svc.SweepExpired(context.Background())
	if open := listAll(t, e.svc, SessionFilter{State: StateOpen}); len(open) != 0 || e.svc.Stats().OpenSessions != 0 {
		t.Fatalf("%d sessions open after every expiry and a sweep", len(open))
	}
	checkClean(t, e.db)
}
