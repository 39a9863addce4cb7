package sip

import (
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// FuzzInboundRequest feeds what sipgo parses out of arbitrary bytes to
// every piece of Veil that reads an inbound message: the numbers of an
// INVITE, the dialog key of an in-dialog request, the remote target and
// route set, and the CANCEL built from an INVITE. None may panic, and the
// numbers read must be E.164.
func FuzzInboundRequest(f *testing.F) {
	f.Add([]byte("INVITE sip:+15550100001@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:+15550100101@127.0.0.3>;tag=a\r\nTo: <sip:+15550100001@127.0.0.1>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.3:5060>\r\n" +
		"Record-Route: <sip:p1@127.0.0.9;lr>, <sip:p2@127.0.0.8;lr>\r\n" +
		"P-Asserted-Identity: \"A\" <tel:+15550100101>\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\n" +
		"From: <sip:b@h>;tag=b\r\nTo: <sip:a@h>;tag=veil\r\nCall-ID: c2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INVITE tel:15550100001 SIP/2.0\r\nFrom: sip:anonymous@anonymous.invalid\r\nTo: <>\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sipmsg.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sipmsg.Request)
		if !ok {
			return
		}
		call := &InboundCall{}
		if err := readNumbers(req, call); err == nil {
			for _, n := range []string{call.Dialled, call.Caller} {
				if !strings.HasPrefix(n, "+") || len(n) < 9 || len(n) > 16 {
					t.Fatalf("read number %q is not E.164", n)
				}
			}
		}
		_ = requestDialogKey(req)
		_ = contactOf(req)
		_ = recordRoutes(req)
		d := &dialog{}
		d.acceptRequest(req)
		d.updateTarget(req)
		if req.IsInvite() && req.CSeq() != nil {
			_ = newCancel(req)
		}
	})
}
