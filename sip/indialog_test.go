package sip

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/media"
	"github.com/veilgw/veil/routing"
)

type stubRouter struct{}

func (stubRouter) ResolveCall(context.Context, string, string) (routing.Decision, error) {
	return routing.Decision{}, errors.New("stub")
}
func (stubRouter) CarriersFor(string, string) []string                   { return nil }
func (stubRouter) RecordCall(context.Context, *routing.CallRecord) error { return nil }

// startB2BUA starts a server with a B2BUA over two carriers: "near", whose
// sources include 127.0.0.1 (the test client), and "far", whose do not.
func startB2BUA(t *testing.T) (*testServer, *B2BUA) {
	t.Helper()
	carriers := []configs.Carrier{
		{Name: "near", SIP: &configs.CarrierSIP{Address: "127.0.0.1:5999", InboundCIDRs: []string{"127.0.0.0/8"}}},
		{Name: "far", SIP: &configs.CarrierSIP{Address: "192.0.2.10:5060", InboundCIDRs: []string{"192.0.2.0/24"}}},
	}
	b, err := NewB2BUA(B2BUAOptions{
		Router:   stubRouter{},
		Media:    MediaFunc(func() (Bridge, error) { return nil, errors.New("no media") }),
		Carriers: carriers,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := NewTrunkACL(carriers)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, acl, b), b
}

// fakeCall registers a call's leg under a dialog key, its in-dialog
// requests allowed from carrier's sources, and runs handle on each event
// it receives until the test ends.
func fakeCall(t *testing.T, b *B2BUA, key string, leg media.Leg, carrier string, handle func(*call, inEvent)) (*call, chan sipmsg.RequestMethod) {
	t.Helper()
	c := &call{
		b:        b,
		log:      slog.New(slog.DiscardHandler),
		events:   make(chan inEvent, eventsCap),
		finished: make(chan struct{}),
		legA:     &dialog{},
		legB:     &dialog{},
	}
	b.register(key, &legRef{c: c, leg: leg, allow: b.allowedSources(leg, carrier)})
	got := make(chan sipmsg.RequestMethod, 8)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); b.unregister(key) })
	go func() {
		for {
			select {
			case ev := <-c.events:
				got <- ev.req.Method
				handle(c, ev)
			case <-stop:
				return
			}
		}
	}()
	return c, got
}

func inDialogRequest(t *testing.T, method, addr, callID, toTag string) *sipmsg.Request {
	return parseRequest(t, `
`+method+` sip:veil@`+addr+` SIP/2.0
From: <sip:peer@127.0.0.1>;tag=peer1
To: <sip:veil@`+addr+`>;tag=`+toTag+`
Call-ID: `+callID+`
CSeq: 2 `+method+`
Max-Forwards: 70
Content-Length: 0

`)
}

// An in-dialog request from a source outside the leg's carrier is refused
// 403 and never reaches the call; from the carrier it does.
func TestInDialogRequestSourceChecked(t *testing.T) {
	ts, b := startB2BUA(t)
	c := newClient(t)
	answer := func(c *call, ev inEvent) {
		var pend *pending
		c.confirmedEvent(ev, &pend)
	}
	for _, tc := range []struct {
		name    string
		leg     media.Leg
		carrier string
		method  string
		want    int
	}{
		{"caller leg, other carrier's BYE", media.LegA, "far", "BYE", 403},
		{"callee leg, other carrier's BYE", media.LegB, "far", "BYE", 403},
		{"callee leg, other carrier's re-INVITE", media.LegB, "far", "INVITE", 403},
		{"callee leg, other carrier's UPDATE", media.LegB, "far", "UPDATE", 403},
		{"caller leg, own carrier's BYE", media.LegA, "near", "BYE", 200},
		{"callee leg, own carrier's BYE", media.LegB, "near", "BYE", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callID := "src-" + sipmsg.GenerateTagN(10)
			_, got := fakeCall(t, b, dialogKey(callID, "veiltag"), tc.leg, tc.carrier, answer)
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			res, err := c.Do(ctx, inDialogRequest(t, tc.method, ts.udp, callID, "veiltag"))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
			select {
			case m := <-got:
				if tc.want == 403 {
					t.Errorf("the call received the refused %s", m)
				}
			case <-time.After(50 * time.Millisecond):
				if tc.want != 403 {
					t.Error("the call did not receive the request")
				}
			}
		})
	}
}

// In-dialog INFO and PRACK in a live dialog are answered by the call (405
// with Allow, early or confirmed), never 481; 481 only without a dialog.
func TestInDialogInfo(t *testing.T) {
	ts, b := startB2BUA(t)
	c := newClient(t)
	for _, tc := range []struct {
		name   string
		method string
		live   bool
		early  bool
		want   int
	}{
		{"INFO, confirmed dialog", "INFO", true, false, 405},
		{"INFO, early dialog", "INFO", true, true, 405},
		{"PRACK, early dialog", "PRACK", true, true, 405},
		{"INFO, no dialog", "INFO", false, false, 481},
		{"PRACK, no dialog", "PRACK", false, false, 481},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callID := "info-" + sipmsg.GenerateTagN(10)
			if tc.live {
				fakeCall(t, b, dialogKey(callID, "veiltag"), media.LegA, "near", func(c *call, ev inEvent) {
					if tc.early {
						c.earlyEvent(ev)
						return
					}
					var pend *pending
					c.confirmedEvent(ev, &pend)
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			res, err := c.Do(ctx, inDialogRequest(t, tc.method, ts.udp, callID, "veiltag"))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == 405 && res.GetHeader("Allow") == nil {
				t.Error("405 without Allow")
			}
		})
	}
}
