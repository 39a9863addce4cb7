package smpp

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/veilgw/veil/configs"
)

// rawPDU builds a PDU from its header fields and body bytes.
func rawPDU(cmd uint32, status uint32, seq uint32, body []byte) []byte {
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint32(b[0:], uint32(16+len(body)))
	binary.BigEndian.PutUint32(b[4:], cmd)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return append(b, body...)
}

func marshal(p pdu.PDU) []byte {
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	return buf.Bytes()
}

// testBind is a bind of a Service that is never started, with one link
// over a pipe whose other end the test holds.
func testBind(t *testing.T) (*bind, *link, net.Conn) {
	t.Helper()
	e := newEnv(t)
	s, err := New(Options{DB: e.db, Routing: e.rt, Logger: quiet,
		Carriers: []configs.Carrier{{Name: "c1", SMPP: &configs.CarrierSMPP{Address: "127.0.0.1:1", SystemID: "veil"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := net.Pipe()
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	l := &link{nc: ours, br: bufio.NewReader(ours), bw: bufio.NewWriter(ours)}
	return s.binds["c1"], l, theirs
}

// readPDU reads one PDU from the SMSC's end within 5 s.
func readPDU(t *testing.T, c net.Conn) pdu.PDU {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := pdu.Parse(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return p
}

// TestBrokenPDUGetsGenericNack: an SMSC's PDU that cannot be decoded is
// answered generic_nack with its sequence number and the link goes on
// (SMPP 3.4 §4.3); a command_length that cannot be trusted is answered
// too, and then the link is dropped, since the stream is lost.
func TestBrokenPDUGetsGenericNack(t *testing.T) {
	cases := []struct {
		name   string
		raw    []byte
		status data.CommandStatusType
		fatal  bool
	}{
		{"unknown command", rawPDU(0x00000999, 0, 7, nil), data.ESME_RINVCMDID, false},
		{"unknown command with a body", rawPDU(0x0000ABCD, 0, 8, []byte("junk")), data.ESME_RINVCMDID, false},
		{"deliver_sm truncated", rawPDU(uint32(data.DELIVER_SM), 0, 9, []byte{0, 1}), data.ESME_RSYSERR, false},
		{"deliver_sm with a short_message past the end", rawPDU(uint32(data.DELIVER_SM), 0, 10, append(make([]byte, 15), 200, 'x')), data.ESME_RSYSERR, false},
		{"command_length below 16", func() []byte { b := rawPDU(uint32(data.ENQUIRE_LINK), 0, 11, nil); b[3] = 8; return b }(), data.ESME_RINVCMDLEN, true},
		{"command_length huge", func() []byte { b := rawPDU(uint32(data.ENQUIRE_LINK), 0, 12, nil); b[0] = 0x7f; return b }(), data.ESME_RINVCMDLEN, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, l, smsc := testBind(t)
			done := make(chan error, 1)
			go func() { done <- b.read(1, l) }()
			go func() { _, _ = smsc.Write(tc.raw) }()
			p := readPDU(t, smsc)
			n, ok := p.(*pdu.GenericNack)
			if !ok {
				t.Fatalf("answer %T, want generic_nack", p)
			}
			wantSeq := int32(binary.BigEndian.Uint32(tc.raw[12:]))
			if n.SequenceNumber != wantSeq || n.CommandStatus != tc.status {
				t.Errorf("generic_nack seq %d status %v, want %d %v", n.SequenceNumber, n.CommandStatus, wantSeq, tc.status)
			}
			if tc.fatal {
				select {
				case err := <-done:
					if !errors.Is(err, errFraming) {
						t.Errorf("reader ended with %v, want errFraming", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the reader goes on after a bad command_length")
				}
				return
			}
			// Still alive: an enquire_link is answered.
			go func() { _, _ = smsc.Write(marshal(withSeq(pdu.NewEnquireLink(), 77))) }()
			if r, ok := readPDU(t, smsc).(*pdu.EnquireLinkResp); !ok || r.SequenceNumber != 77 {
				t.Fatalf("after the nack, enquire_link answered %T %+v", r, r)
			}
			smsc.Close()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, errFraming) {
					t.Errorf("reader ended with %v, want the connection's error", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("reader still running after the connection closed")
			}
		})
	}
}

func withSeq(p pdu.PDU, seq int32) pdu.PDU {
	p.SetSequenceNumber(seq)
	return p
}

// FuzzParsePDU feeds arbitrary bytes to what reads the SMSC's stream: the
// framing (link.read), the decoder (parsePDU) and, for a deliver_sm, the
// reading of a receipt or an inbound message. Nothing may panic; a PDU
// that does not decode leaves the header for a generic_nack.
func FuzzParsePDU(f *testing.F) {
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.SourceAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, "15550100101")
	d.DestAddr, _ = pdu.NewAddressWithTonNpiAddr(1, 1, "15550100001")
	_ = d.Message.SetMessageDataWithEncoding([]byte("hello"), data.GSM7BIT)
	d.SetSequenceNumber(3)
	f.Add(marshal(d))
	r := pdu.NewDeliverSM().(*pdu.DeliverSM)
	r.EsmClass = data.SM_SMSC_DLV_RCPT_TYPE
	_ = r.Message.SetMessageDataWithEncoding([]byte("id:a0000000 sub:001 dlvrd:001 submit date:2612041200 done date:2612041201 stat:DELIVRD err:000 text:"), data.GSM7BIT)
	r.RegisterOptionalParam(pdu.Field{Tag: pdu.TagReceiptedMessageID, Data: []byte("a0000000\x00")})
	r.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessageStateOption, Data: []byte{2}})
	f.Add(marshal(r))
	u := pdu.NewDeliverSM().(*pdu.DeliverSM)
	u.EsmClass = data.SM_UDH_GSM
	u.SourceAddr, u.DestAddr = d.SourceAddr, d.DestAddr
	_ = u.Message.SetMessageDataWithEncoding([]byte{0x05, 0x00, 0x03, 0x42, 0x02, 0x01, 'h', 'i'}, data.UCS2)
	f.Add(marshal(u))
	sar := pdu.NewDeliverSM().(*pdu.DeliverSM)
	sar.SourceAddr, sar.DestAddr = d.SourceAddr, d.DestAddr
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarMsgRefNum, Data: []byte{1, 2}})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarTotalSegments, Data: []byte{2}})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarSegmentSeqnum, Data: []byte{1}})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessagePayload, Data: []byte("payload")})
	f.Add(marshal(sar))
	resp := pdu.NewSubmitSMResp().(*pdu.SubmitSMResp)
	resp.MessageID = "12345"
	f.Add(marshal(resp))
	f.Add(marshal(pdu.NewEnquireLink()))
	f.Add(rawPDU(0x999, 0, 1, nil))
	seed, _ := hex.DecodeString("0000001100000005000000000000000100")
	f.Add(seed)

	s := &Service{metrics: newMetrics(nil), now: time.Now, log: quiet, opts: Options{SMS: configs.SMS{ReassemblyTimeout: time.Minute}}}
	b := &bind{s: s, name: "c1", log: quiet}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ours, theirs := net.Pipe()
		defer ours.Close()
		go func() {
			_, _ = theirs.Write(raw)
			theirs.Close()
		}()
		l := &link{nc: ours, br: bufio.NewReader(ours), bw: bufio.NewWriter(io.Discard)}
		for {
			h, p, err := l.read()
			if err != nil {
				if errors.Is(err, errFraming) && (h.CommandLength >= 16 && h.CommandLength <= maxPDU) {
					t.Fatalf("errFraming for a length of %d", h.CommandLength)
				}
				return
			}
			if p == nil {
				continue // answered generic_nack
			}
			if dsm, ok := p.(*pdu.DeliverSM); ok {
				_ = s.receiptOp(b, dsm)
				_ = s.inboundOp(b, dsm)
			}
		}
	})
}

// bindTRXResp is bind_transceiver_resp's command_id (gosmpp's constant
// is a negative int32).
const bindTRXResp = 0x80000009

// TestDialLinkBindResponses: a bind answered with a header-only negative
// response (SMPP 3.4 §4.1.2; gosmpp cannot decode it) fails at once with
// the SMSC's status, not after the timeout; a positive one binds.
func TestDialLinkBindResponses(t *testing.T) {
	cases := []struct {
		name    string
		resp    func(seq uint32) []byte
		wantErr string
	}{
		{"header-only ESME_RINVPASWD", func(seq uint32) []byte {
			return rawPDU(bindTRXResp, uint32(data.ESME_RINVPASWD), seq, nil)
		}, "refused"},
		{"header-only ESME_RBINDFAIL after an enquire_link", func(seq uint32) []byte {
			return append(rawPDU(uint32(data.ENQUIRE_LINK), 0, 1, nil), rawPDU(bindTRXResp, uint32(data.ESME_RBINDFAIL), seq, nil)...)
		}, "refused"},
		{"bound", func(seq uint32) []byte {
			r := pdu.NewBindTransceiverResp().(*pdu.BindResp)
			r.SystemID = "smsc"
			r.SetSequenceNumber(int32(seq))
			return marshal(r)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				req, err := pdu.Parse(c)
				if err != nil {
					return
				}
				_, _ = c.Write(tc.resp(uint32(req.GetSequenceNumber())))
				_, _ = io.Copy(io.Discard, c) // until the client closes
			}()
			l, err := dialLink(t.Context(), ln.Addr().String(), nil, pdu.Transceiver, "veil", "pw", 3*time.Second)
			if l != nil {
				l.close()
			}
			<-served
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("bind failed: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("bind error %v, want one saying %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "pw"):
				t.Errorf("the error names the password: %v", err)
			}
		})
	}
}
