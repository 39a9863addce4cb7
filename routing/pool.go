package routing

import "slices"

// poolNumber is a proxy number in memory. Guarded by Service.mu.
type poolNumber struct {
	n *Number // immutable; replaced, never modified
	// adding: its record is being written; deleting: its removal is.
	// Neither is allocatable.
	adding, deleting bool
	// ownerRoute is []string{n.Carrier}, the route when no prefix matches.
	ownerRoute []string
}

// pool is the set of proxy numbers, grouped by country for allocation.
type pool struct {
	numbers   map[string]*poolNumber
	byCountry map[string][]string // sorted
	all       []string            // sorted
	cursor    uint64              // rotates where scans start, to spread load
}

func newPool() pool {
	return pool{numbers: make(map[string]*poolNumber), byCountry: make(map[string][]string)}
}

func (p *pool) add(pn *poolNumber) {
	num := pn.n.Number
	pn.ownerRoute = []string{pn.n.Carrier}
	p.numbers[num] = pn
	cc := pn.n.CountryCode
	p.byCountry[cc] = insertSorted(p.byCountry[cc], num)
	p.all = insertSorted(p.all, num)
}

func (p *pool) remove(num string) {
	pn := p.numbers[num]
	if pn == nil {
		return
	}
	delete(p.numbers, num)
	cc := pn.n.CountryCode
	p.byCountry[cc] = removeSorted(p.byCountry[cc], num)
	if len(p.byCountry[cc]) == 0 {
		delete(p.byCountry, cc)
	}
	p.all = removeSorted(p.all, num)
}

func insertSorted(list []string, s string) []string {
	i, found := slices.BinarySearch(list, s)
	if found {
		return list
	}
	return slices.Insert(list, i, s)
}

func removeSorted(list []string, s string) []string {
	i, found := slices.BinarySearch(list, s)
	if !found {
		return list
	}
	return slices.Delete(list, i, i+1)
}

// pick returns a number free for every participant that can carry mode:
// first in the first participant's country, then the next participant's,
// then anywhere. Reserved numbers are never picked. Held lists the numbers
// the participants already hold in open sessions.
func (p *pool) pick(participants []string, mode Mode, held map[string]bool) (string, bool) {
	p.cursor++
	ok := func(num string) bool {
		pn := p.numbers[num]
		return !held[num] && !pn.adding && !pn.deleting && !pn.n.Reserved && pn.n.supports(mode)
	}
	scan := func(list []string) (string, bool) {
		n := len(list)
		if n == 0 {
			return "", false
		}
		start := int(p.cursor % uint64(n))
		for i := range n {
			if num := list[(start+i)%n]; ok(num) {
				return num, true
			}
		}
		return "", false
	}
	var tried []string
	for _, part := range participants {
		cc := CountryCode(part)
		if slices.Contains(tried, cc) {
			continue
		}
		tried = append(tried, cc)
		if num, found := scan(p.byCountry[cc]); found {
			return num, true
		}
	}
	return scan(p.all)
}
