package sip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/veilgw/veil/configs"
)

func carrier(name string, cidrs ...string) configs.Carrier {
	return configs.Carrier{Name: name, SIP: &configs.CarrierSIP{Address: "192.0.2.1:5060", InboundCIDRs: cidrs}}
}

func TestTrunkACLCarrier(t *testing.T) {
	carriers := []configs.Carrier{
		carrier("wide", "10.0.0.0/8"),
		carrier("narrow", "10.1.2.0/24", "2001:db8::/32"),
		carrier("host", "10.1.2.3/32"),
		carrier("outbound-only"),
		{Name: "sms-only", SMPP: &configs.CarrierSMPP{}},
		carrier("mapped", "::ffff:198.51.100.0/120"),
		carrier("sloppy", "203.0.113.77/24"),
	}
	acl, err := NewTrunkACL(carriers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src    string
		want   string
		wantOK bool
	}{
		{"10.9.9.9", "wide", true},
		{"10.1.2.4", "narrow", true},
		{"10.1.2.3", "host", true},
		{"::ffff:10.1.2.3", "host", true},
		{"::ffff:10.1.2.4", "narrow", true},
		{"2001:db8::1", "narrow", true},
		{"fe80::1%eth0", "", false},
		{"198.51.100.9", "mapped", true},
		{"203.0.113.1", "sloppy", true},
		{"11.0.0.1", "", false},
		{"127.0.0.1", "", false},
		{"2001:db9::1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, ok := acl.Carrier(netip.MustParseAddr(tt.src))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Carrier(%s) = %q, %v; want %q, %v", tt.src, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if got, ok := acl.Carrier(netip.Addr{}); ok {
		t.Errorf("Carrier(zero Addr) = %q, true; want no match", got)
	}
	var nilACL *TrunkACL
	if got, ok := nilACL.Carrier(netip.MustParseAddr("10.0.0.1")); ok {
		t.Errorf("nil ACL matched %q", got)
	}
}

func TestNewTrunkACLErrors(t *testing.T) {
	tests := []struct {
		name     string
		carriers []configs.Carrier
		wantErr  string
	}{
		{"bad prefix", []configs.Carrier{carrier("a", "10.0.0.0/33")}, `carrier "a": inbound_cidrs "10.0.0.0/33"`},
		{"not a prefix", []configs.Carrier{carrier("a", "example.com")}, `inbound_cidrs "example.com"`},
		{"same prefix twice", []configs.Carrier{carrier("a", "10.0.0.0/8"), carrier("b", "10.1.0.0/8")}, `is also carrier "a"'s`},
		{"duplicate within one carrier is fine", []configs.Carrier{carrier("a", "10.0.0.0/8", "10.0.0.0/8")}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTrunkACL(tt.carriers)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewTrunkACL: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewTrunkACL error = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// The shipped loopback config must start: its carriers' inbound_cidrs
// make a valid ACL (no prefix under two carriers).
func TestShippedConfigACL(t *testing.T) {
	cfg, err := configs.Load("../configs/veil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrunkACL(cfg.Carriers); err != nil {
		t.Fatalf("configs/veil.yaml: %v", err)
	}
}
