package sip

import (
	"fmt"
	"net/netip"

	"github.com/veilgw/veil/configs"
)

// TrunkACL maps the source address of an inbound INVITE to the carrier it
// came from, using each carrier's sip.inbound_cidrs. It is immutable once
// built and safe for concurrent use; a nil *TrunkACL matches nothing.
type TrunkACL struct {
	entries []aclEntry
}

type aclEntry struct {
	prefix  netip.Prefix
	carrier string
}

// NewTrunkACL builds the ACL from the configured carriers. Carriers without
// a sip section or without inbound_cidrs accept no inbound calls and are
// skipped. Prefixes are masked ("192.0.2.7/24" is 192.0.2.0/24) and
// IPv4-mapped IPv6 prefixes are unmapped. A prefix that does not parse is
// an error (configs.Validate reports it first in practice); the same prefix
// under two carriers is an error too, since a source would be ambiguous.
func NewTrunkACL(carriers []configs.Carrier) (*TrunkACL, error) {
	a := &TrunkACL{}
	owner := make(map[netip.Prefix]string)
	for _, c := range carriers {
		if c.SIP == nil {
			continue
		}
		for _, s := range c.SIP.InboundCIDRs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("carrier %q: inbound_cidrs %q: %w", c.Name, s, err)
			}
			p = normalisePrefix(p)
			if prev, ok := owner[p]; ok {
				if prev == c.Name {
					continue
				}
				return nil, fmt.Errorf("carrier %q: inbound_cidrs %s is also carrier %q's", c.Name, p, prev)
			}
			owner[p] = c.Name
			a.entries = append(a.entries, aclEntry{prefix: p, carrier: c.Name})
		}
	}
	return a, nil
}

// normalisePrefix unmaps an IPv4-mapped IPv6 prefix (::ffff:192.0.2.0/120
// becomes 192.0.2.0/24) and masks the host bits.
func normalisePrefix(p netip.Prefix) netip.Prefix {
	addr := p.Addr()
	bits := p.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	return netip.PrefixFrom(addr, bits).Masked()
}

// Carrier returns the name of the carrier whose inbound_cidrs contain src
// and true, or "" and false when none does. When several prefixes contain
// src, the longest wins. An IPv4-mapped IPv6 source (::ffff:192.0.2.1, as a
// dual-stack socket reports IPv4 peers) is matched as IPv4; a zone is
// ignored.
func (a *TrunkACL) Carrier(src netip.Addr) (name string, ok bool) {
	if a == nil || !src.IsValid() {
		return "", false
	}
	src = src.Unmap().WithZone("")
	best := -1
	for _, e := range a.entries {
		if e.prefix.Bits() > best && e.prefix.Contains(src) {
			best, name = e.prefix.Bits(), e.carrier
		}
	}
	return name, best >= 0
}
