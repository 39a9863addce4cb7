package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp"
	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// Self-tests of the SMSC simulator, with gosmpp as the ESME. They check
// the content of what it sends (ids, receipt text, TLVs, UDH, encodings)
// against gosmpp's own decoding, so a broken simulator fails here rather
// than in a Veil test.

const smscWait = 5 * time.Second

// esme is a gosmpp connection bound to the simulator, read by a goroutine:
// deliver_sm and enquire_link are answered there, and every PDU received is
// passed on, in order, to in.
type esme struct {
	conn *gosmpp.Connection
	in   chan pdu.PDU
	done chan struct{} // closed when the connection is gone
	// deliverStatus is the command_status of each deliver_sm_resp; -1
	// leaves deliver_sm unanswered.
	deliverStatus atomic.Int64
}

// bindESME binds to addr as bindType and starts reading.
func bindESME(t testing.TB, addr string, bindType pdu.BindingType, systemID, password string) (*esme, error) {
	t.Helper()
	dial := func(addr string) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", addr, smscWait)
		if err == nil {
			err = c.SetDeadline(time.Now().Add(smscWait)) // bounds the bind
		}
		return c, err
	}
	auth := gosmpp.Auth{SMSC: addr, SystemID: systemID, Password: password}
	var connector gosmpp.Connector
	switch bindType {
	case pdu.Transmitter:
		connector = gosmpp.TXConnector(dial, auth)
	case pdu.Receiver:
		connector = gosmpp.RXConnector(dial, auth)
	default:
		connector = gosmpp.TRXConnector(dial, auth)
	}
	conn, err := connector.Connect()
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	e := &esme{conn: conn, in: make(chan pdu.PDU, 1024), done: make(chan struct{})}
	go e.read()
	t.Cleanup(func() {
		conn.Close()
		<-e.done
	})
	return e, nil
}

// mustBind is bindESME as a transceiver that fails the test on error.
func mustBind(t testing.TB, s *smsc) *esme {
	t.Helper()
	e, err := bindESME(t, s.Addr(), pdu.Transceiver, "veil", "secret")
	if err != nil {
		t.Fatalf("bind_transceiver: %v", err)
	}
	return e
}

func (e *esme) read() {
	defer close(e.done)
	for {
		p, err := pdu.Parse(e.conn)
		if err != nil {
			return
		}
		switch pd := p.(type) {
		case *pdu.DeliverSM:
			if st := e.deliverStatus.Load(); st >= 0 {
				resp := pd.GetResponse()
				resp.(*pdu.DeliverSMResp).CommandStatus = data.CommandStatusType(st)
				if _, err := e.conn.WritePDU(resp); err != nil {
					return
				}
			}
		case *pdu.EnquireLink:
			if _, err := e.conn.WritePDU(pd.GetResponse()); err != nil {
				return
			}
		}
		e.in <- p
	}
}

// send writes PDUs in one write (so the simulator reads them together) and
// returns their sequence numbers.
func (e *esme) send(t testing.TB, ps ...pdu.PDU) []int32 {
	t.Helper()
	var buf bytes.Buffer
	seqs := make([]int32, len(ps))
	for i, p := range ps {
		b := pdu.NewBuffer(nil)
		p.Marshal(b)
		buf.Write(b.Bytes())
		seqs[i] = p.GetSequenceNumber()
	}
	if _, err := e.conn.Write(buf.Bytes()); err != nil {
		t.Fatalf("writing to the SMSC: %v", err)
	}
	return seqs
}

// next returns the next PDU received.
func (e *esme) next(t testing.TB) pdu.PDU {
	t.Helper()
	select {
	case p := <-e.in:
		return p
	case <-e.done:
		select {
		case p := <-e.in:
			return p
		default:
		}
		t.Fatal("SMSC connection closed")
	case <-time.After(smscWait):
		t.Fatalf("no PDU from the SMSC in %s", smscWait)
	}
	return nil
}

func (e *esme) nextResp(t testing.TB, seq int32) *pdu.SubmitSMResp {
	t.Helper()
	p := e.next(t)
	r, ok := p.(*pdu.SubmitSMResp)
	if !ok || r.SequenceNumber != seq {
		t.Fatalf("got %T %+v, want submit_sm_resp seq %d", p, p.GetHeader(), seq)
	}
	return r
}

func (e *esme) nextDeliver(t testing.TB) *pdu.DeliverSM {
	t.Helper()
	p := e.next(t)
	d, ok := p.(*pdu.DeliverSM)
	if !ok {
		t.Fatalf("got %T %+v, want deliver_sm", p, p.GetHeader())
	}
	return d
}

// waitClosed waits until the simulator has closed the connection.
func (e *esme) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-e.done:
	case <-time.After(smscWait):
		t.Fatalf("connection still open after %s", smscWait)
	}
}

func newSubmit(t testing.TB, from, to, text string, registered byte) *pdu.SubmitSM {
	t.Helper()
	sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
	var err error
	if sm.SourceAddr, err = pdu.NewAddressWithTonNpiAddr(1, 1, from); err != nil {
		t.Fatal(err)
	}
	if sm.DestAddr, err = pdu.NewAddressWithTonNpiAddr(1, 1, to); err != nil {
		t.Fatal(err)
	}
	if err := sm.Message.SetMessageWithEncoding(text, data.GSM7BIT); err != nil {
		t.Fatal(err)
	}
	sm.RegisteredDelivery = registered
	return sm
}

// rawMessage is a deliver_sm's short_message as on the wire (UDH + data).
func rawMessage(t testing.TB, d *pdu.DeliverSM) []byte {
	t.Helper()
	body, _ := d.Message.GetMessageData()
	if udh := d.Message.UDH(); len(udh) > 0 {
		h, err := udh.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return append(h, body...)
	}
	return body
}

func tlv(d *pdu.DeliverSM, tag pdu.Tag) ([]byte, bool) {
	f, ok := d.OptionalParameters[tag]
	return f.Data, ok
}

// receiptRE is the SMPP 3.4 appendix B receipt text, in any letter case.
var receiptRE = regexp.MustCompile(`(?i)^id:(\S+) sub:(\d{3}) dlvrd:(\d{3}) submit date:(\d{10}) done date:(\d{10}) stat:(\w+) err:(\d{3}) text:(.*)$`)

type receipt struct{ id, sub, dlvrd, submitDate, doneDate, stat, err, text string }

func parseReceipt(t testing.TB, d *pdu.DeliverSM) receipt {
	t.Helper()
	if d.EsmClass != 0x04 {
		t.Fatalf("receipt esm_class = %#x, want 0x04", d.EsmClass)
	}
	body, _ := d.Message.GetMessageData()
	m := receiptRE.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("receipt text %q does not parse", body)
	}
	return receipt{m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]}
}

func TestSMSCBind(t *testing.T) {
	s := startSMSC(t, smscConfig{})
	var bindErr gosmpp.BindError

	trx := mustBind(t, s)
	if _, err := bindESME(t, s.Addr(), pdu.Receiver, "veil", "secret"); err != nil {
		t.Fatalf("bind_receiver: %v", err)
	}
	for _, c := range []struct {
		id, pw string
		want   data.CommandStatusType
	}{
		{"veil", "wrong", data.ESME_RINVPASWD},
		{"other", "secret", data.ESME_RINVSYSID},
	} {
		_, err := bindESME(t, s.Addr(), pdu.Transmitter, c.id, c.pw)
		if !errors.As(err, &bindErr) || bindErr.CommandStatus != c.want {
			t.Errorf("bind_transmitter %s/%s: %v, want %v", c.id, c.pw, err, c.want)
		}
	}
	// A failed bind_*_resp has no body (SMPP 3.4 4.1; the npm library sends
	// the header only). gosmpp v0.3.1 still reads system_id from a failed
	// bind_transceiver_resp, so it reports a read error, not a BindError:
	// Veil must treat any failed bind as a bind failure.
	_, err := bindESME(t, s.Addr(), pdu.Transceiver, "veil", "wrong")
	if err == nil || errors.As(err, &bindErr) {
		t.Errorf("bind_transceiver with a wrong password, empty body: %v, want a non-BindError error", err)
	}
	// bind_error_body: the carrier variant that keeps system_id.
	s.Config(t, map[string]any{"bind_error_body": true, "bind_fail_status": 0x0D})
	_, err = bindESME(t, s.Addr(), pdu.Transceiver, "veil", "wrong")
	if !errors.As(err, &bindErr) || bindErr.CommandStatus != data.ESME_RBINDFAIL {
		t.Errorf("bind_transceiver with a wrong password, with body: %v, want ESME_RBINDFAIL", err)
	}

	// enquire_link is answered, an unknown command gets generic_nack.
	el := pdu.NewEnquireLink()
	seq := trx.send(t, el)[0]
	if p := trx.next(t); p.GetHeader().CommandID != data.ENQUIRE_LINK_RESP || p.GetSequenceNumber() != seq {
		t.Fatalf("enquire_link answered with %+v", p.GetHeader())
	}
	if _, err := trx.conn.Write([]byte{0, 0, 0, 16, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0x12, 0x34}); err != nil {
		t.Fatal(err)
	}
	if p := trx.next(t); !p.IsGNack() || p.GetSequenceNumber() != 0x1234 || p.GetHeader().CommandStatus != data.ESME_RINVCMDID {
		t.Fatalf("unknown command answered with %T %+v, want generic_nack ESME_RINVCMDID", p, p.GetHeader())
	}

	st := s.Stats(t)
	if st.BindsActive != 2 || st.BindsTotal != 2 || st.BindFailures != 4 || st.EnquireLinks != 1 || st.GenericNacks != 1 {
		t.Errorf("stats = %+v, want 2 binds active, 2 total, 4 failures, 1 enquire_link, 1 generic_nack", st)
	}
}

func TestSMSCSubmitReceipt(t *testing.T) {
	s := startSMSC(t, smscConfig{})
	e := mustBind(t, s)

	// Default: hex ids, text receipt when registered_delivery asks.
	const text = "Hello {world} €"
	sm := newSubmit(t, "15550001111", "15550002222", text, 1)
	before := time.Now().UTC()
	seq := e.send(t, sm)[0]
	resp := e.nextResp(t, seq)
	if resp.CommandStatus != data.ESME_ROK || !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(resp.MessageID) {
		t.Fatalf("submit_sm_resp = %v %q, want ESME_ROK and a hex id", resp.CommandStatus, resp.MessageID)
	}
	d := e.nextDeliver(t)
	r := parseReceipt(t, d)
	date := before.Format("0601021504")
	if r.id != resp.MessageID || r.sub != "001" || r.dlvrd != "001" || r.stat != "DELIVRD" || r.err != "000" ||
		r.text != "Hello {world} ?" || r.submitDate < date || r.doneDate < r.submitDate {
		t.Errorf("receipt %+v, want id %s, DELIVRD, text \"Hello {world} ?\", dates from %s", r, resp.MessageID, date)
	}
	if d.SourceAddr.Address() != "15550002222" || d.DestAddr.Address() != "15550001111" || d.SourceAddr.Ton() != 1 {
		t.Errorf("receipt from %s to %s, want from the destination to the source", d.SourceAddr, d.DestAddr)
	}
	if _, ok := tlv(d, pdu.TagReceiptedMessageID); ok {
		t.Error("text mode receipt has receipted_message_id")
	}

	subs := s.Submits(t, 0)
	wantSM, _ := data.GSM7BIT.Encode(text)
	if len(subs) != 1 {
		t.Fatalf("%d submits recorded, want 1", len(subs))
	}
	got := subs[0]
	if got.Seq != 1 || got.Bind != "veil" || got.SourceAddr != "15550001111" || got.SourceAddrTON != 1 || got.SourceAddrNPI != 1 ||
		got.DestinationAddr != "15550002222" || got.DestAddrTON != 1 || got.DestAddrNPI != 1 || got.DataCoding != 0 ||
		got.RegisteredDelivery != 1 || !bytes.Equal(got.ShortMessage, wantSM) || got.MessagePayload != nil ||
		got.MessageID == nil || *got.MessageID != resp.MessageID || got.Status != 0 || got.SARRef != nil ||
		got.At < before.UnixMilli() {
		t.Errorf("recorded submit %+v, want the submit_sm sent (short_message %x)", got, wantSM)
	}
	s.WaitStats(t, smscWait, "1 receipt acked", func(st smscStats) bool { return st.ReceiptsAcked == 1 })

	// Decimal ids in the resp, hex in the receipt, text and TLVs, a
	// per-destination status.
	s.Config(t, map[string]any{
		"id_format": "decimal", "receipt_id_format": "hex",
		"receipts": map[string]any{"mode": "both", "stat_by_dest": map[string]any{"+15550003333": "EXPIRED"}},
	})
	seq = e.send(t, newSubmit(t, "15550001111", "15550003333", "second", 1))[0]
	resp = e.nextResp(t, seq)
	n, err := strconv.ParseUint(resp.MessageID, 10, 64)
	if err != nil {
		t.Fatalf("decimal id %q: %v", resp.MessageID, err)
	}
	d = e.nextDeliver(t)
	r = parseReceipt(t, d)
	wantID := strconv.FormatUint(n, 16)
	if r.id != wantID || r.stat != "EXPIRED" || r.dlvrd != "000" || r.err != "001" || r.text != "second" {
		t.Errorf("receipt %+v, want id %s (hex of %s), EXPIRED", r, wantID, resp.MessageID)
	}
	if v, _ := tlv(d, pdu.TagReceiptedMessageID); string(bytes.TrimRight(v, "\x00")) != wantID {
		t.Errorf("receipted_message_id = %q, want %q", v, wantID)
	}
	if v, _ := tlv(d, pdu.TagMessageStateOption); !bytes.Equal(v, []byte{3}) {
		t.Errorf("message_state = %x, want 03 (EXPIRED)", v)
	}

	// TLV only, lower case, upper-case keys.
	for _, c := range []struct {
		receipts map[string]any
		prefix   string
	}{
		{map[string]any{"mode": "tlv"}, ""},
		{map[string]any{"mode": "text", "lowercase": true}, "id:"},
		{map[string]any{"lowercase": false, "uppercase_keys": true}, "ID:"},
	} {
		s.Config(t, map[string]any{"id_format": "hex", "receipt_id_format": "same", "receipts": c.receipts})
		seq = e.send(t, newSubmit(t, "15550001111", "15550002222", "x", 1))[0]
		resp = e.nextResp(t, seq)
		d = e.nextDeliver(t)
		body, _ := d.Message.GetMessageData()
		if c.prefix == "" {
			v, _ := tlv(d, pdu.TagReceiptedMessageID)
			st, _ := tlv(d, pdu.TagMessageStateOption)
			if len(body) != 0 || string(bytes.TrimRight(v, "\x00")) != resp.MessageID || !bytes.Equal(st, []byte{2}) {
				t.Errorf("tlv receipt: text %q, id %q, state %x; want no text, id %s, state 02", body, v, st, resp.MessageID)
			}
			continue
		}
		r = parseReceipt(t, d)
		if !strings.HasPrefix(string(body), c.prefix) || r.id != resp.MessageID || !strings.EqualFold(r.stat, "DELIVRD") {
			t.Errorf("receipt %q, want prefix %q and id %s", body, c.prefix, resp.MessageID)
		}
		if c.receipts["lowercase"] == true && r.stat != "delivrd" {
			t.Errorf("lowercase receipt stat %q", r.stat)
		}
	}

	// A concatenated submit (UDH, then SAR with message_payload): fail_part
	// fails part 2 of each.
	s.Reset(t)
	s.Config(t, map[string]any{"receipts": map[string]any{"uppercase_keys": false, "fail_part": 2}})
	var udhParts []pdu.PDU
	for i := byte(1); i <= 2; i++ {
		sm := newSubmit(t, "15550001111", "15550002222", fmt.Sprint("part ", i), 1)
		sm.Message.SetUDH(pdu.UDH{pdu.NewIEConcatMessage(2, i, 0x42)})
		sm.EsmClass = data.SM_UDH_GSM
		udhParts = append(udhParts, sm)
	}
	sar := newSubmit(t, "15550001111", "15550002222", "", 1)
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessagePayload, Data: []byte("payload")})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarMsgRefNum, Data: []byte{0x01, 0x02}})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarTotalSegments, Data: []byte{3}})
	sar.RegisterOptionalParam(pdu.Field{Tag: pdu.TagSarSegmentSeqnum, Data: []byte{2}})
	for i, p := range append(udhParts, sar) {
		seq := e.send(t, p)[0]
		resp := e.nextResp(t, seq)
		r := parseReceipt(t, e.nextDeliver(t))
		want := map[int]string{0: "DELIVRD", 1: "UNDELIV", 2: "UNDELIV"}[i]
		if r.id != resp.MessageID || r.stat != want {
			t.Errorf("concatenated submit %d: receipt %+v, want id %s, %s", i, r, resp.MessageID, want)
		}
	}
	subs = s.Submits(t, 0)
	if len(subs) != 3 {
		t.Fatalf("%d submits after reset, want 3", len(subs))
	}
	if c := subs[1].Concat; c == nil || c.Type != "udh8" || c.Ref != 0x42 || c.Total != 2 || c.Seq != 2 ||
		!bytes.HasPrefix(subs[1].ShortMessage, []byte{5, 0, 3, 0x42, 2, 2}) || subs[1].ESMClass != 0x40 {
		t.Errorf("UDH submit recorded as %+v (concat %+v)", subs[1], c)
	}
	if sub := subs[2]; sub.SARRef == nil || *sub.SARRef != 0x0102 || *sub.SARTotal != 3 || *sub.SARSeq != 2 ||
		string(sub.MessagePayload) != "payload" || len(sub.ShortMessage) != 0 || sub.Concat == nil || sub.Concat.Type != "sar" {
		t.Errorf("SAR submit recorded as %+v", sub)
	}

	// No receipt unless asked: the enquire_link_resp comes next.
	seq = e.send(t, newSubmit(t, "15550001111", "15550002222", "quiet", 0))[0]
	e.nextResp(t, seq)
	seq = e.send(t, pdu.NewEnquireLink())[0]
	if p := e.next(t); p.GetHeader().CommandID != data.ENQUIRE_LINK_RESP || p.GetSequenceNumber() != seq {
		t.Fatalf("after a submit without registered_delivery got %T %+v, want enquire_link_resp", p, p.GetHeader())
	}
}

func TestSMSCReceiptBeforeResp(t *testing.T) {
	s := startSMSC(t, smscConfig{Config: map[string]any{"resp_delay_ms": 50, "receipts": map[string]any{"before_resp": true}}})
	e := mustBind(t, s)
	seq := e.send(t, newSubmit(t, "15550001111", "15550002222", "race", 1))[0]
	r := parseReceipt(t, e.nextDeliver(t))
	resp := e.nextResp(t, seq)
	if r.id != resp.MessageID || resp.MessageID == "" {
		t.Errorf("receipt id %q before resp id %q, want the same", r.id, resp.MessageID)
	}
}

func TestSMSCThrottle(t *testing.T) {
	s := startSMSC(t, smscConfig{})
	e := mustBind(t, s)
	submit := func(n int) []data.CommandStatusType {
		t.Helper()
		ps := make([]pdu.PDU, n)
		for i := range ps {
			ps[i] = newSubmit(t, "15550001111", "15550002222", fmt.Sprint("m", i), 0)
		}
		seqs := e.send(t, ps...)
		got := map[int32]data.CommandStatusType{}
		for range seqs {
			p := e.next(t)
			if _, ok := p.(*pdu.SubmitSMResp); !ok {
				t.Fatalf("got %T, want submit_sm_resp", p)
			}
			got[p.GetSequenceNumber()] = p.GetHeader().CommandStatus
		}
		out := make([]data.CommandStatusType, n)
		for i, seq := range seqs {
			out[i] = got[seq]
		}
		return out
	}
	check := func(what string, got []data.CommandStatusType, want ...data.CommandStatusType) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: statuses %v, want %v", what, got, want)
		}
	}
	const ok, thr, qf = data.ESME_ROK, data.ESME_RTHROTTLED, data.ESME_RMSGQFUL

	s.Config(t, map[string]any{"throttle": map[string]any{"every": 3}})
	check("every 3", submit(6), ok, ok, thr, ok, ok, thr)
	s.Config(t, map[string]any{"throttle": map[string]any{"every": 0, "first": 2, "status": 0x14}})
	check("first 2", submit(3), qf, qf, ok)
	// 10 submits in one write: 5 in the second, the rest throttled.
	s.Config(t, map[string]any{"throttle": map[string]any{"status": nil}, "max_tps": 5})
	got := submit(10)
	okCount := 0
	for _, st := range got {
		if st == ok {
			okCount++
		} else if st != thr {
			t.Errorf("max_tps answered %v", st)
		}
	}
	if okCount != 5 {
		t.Errorf("max_tps 5: %d of 10 accepted (%v), want 5", okCount, got)
	}

	subs := s.Submits(t, 0)
	if len(subs) != 19 {
		t.Fatalf("%d submits recorded, want 19", len(subs))
	}
	for _, sub := range subs {
		if (sub.Status == 0) != (sub.MessageID != nil) {
			t.Errorf("submit %d: status %#x with message_id %v", sub.Seq, sub.Status, sub.MessageID)
		}
	}
	if subs[2].Status != int(thr) || subs[6].Status != int(qf) || subs[8].Status != 0 {
		t.Errorf("recorded statuses %#x %#x %#x, want 0x58 0x14 0", subs[2].Status, subs[6].Status, subs[8].Status)
	}
	if st := s.Stats(t); st.Submits != 19 || st.Throttled != 2+2+5 || st.SubmitsOK != 10 {
		t.Errorf("stats %+v, want 19 submits, 9 throttled, 10 ok", st)
	}

	// window_check: with answers held back, the third submit in flight is
	// refused at once.
	s.Reset(t)
	s.Config(t, map[string]any{"max_tps": nil, "resp_delay_ms": 300, "window_check": 2})
	ps := []pdu.PDU{newSubmit(t, "1", "2", "a", 0), newSubmit(t, "1", "2", "b", 0), newSubmit(t, "1", "2", "c", 0)}
	seqs := e.send(t, ps...)
	if r := e.nextResp(t, seqs[2]); r.CommandStatus != qf {
		t.Errorf("third submit in a window of 2: %v, want ESME_RMSGQFUL", r.CommandStatus)
	}
	e.nextResp(t, seqs[0])
	e.nextResp(t, seqs[1])
	if st := s.Stats(t); st.WindowViolations != 1 || st.MaxInflight != 2 || st.Submits != 3 {
		t.Errorf("stats after reset %+v, want 3 submits, 1 window violation, max inflight 2", st)
	}
}

func TestSMSCMO(t *testing.T) {
	s := startSMSC(t, smscConfig{})
	e := mustBind(t, s)

	// Single GSM message with the extension table.
	text := "Hi {x} €5 [ok] ~^|\\ @£ ΩßÉ"
	if st := s.MO(t, smscMO{From: "15557770000", To: "15550002222", Text: text}); fmt.Sprint(st) != "[0]" {
		t.Fatalf("MO statuses %v, want [0]", st)
	}
	d := e.nextDeliver(t)
	raw := rawMessage(t, d)
	want, _ := data.GSM7BIT.Encode(text)
	dec, _ := data.GSM7BIT.Decode(raw)
	if d.EsmClass != 0 || d.Message.Encoding().DataCoding() != 0 || !bytes.Equal(raw, want) || dec != text ||
		!bytes.Contains(raw, []byte{0x1B, 0x65, '5'}) {
		t.Errorf("GSM MO esm %#x dc %d %x (%q), want %x", d.EsmClass, d.Message.Encoding().DataCoding(), raw, dec, want)
	}
	if d.SourceAddr.Address() != "15557770000" || d.DestAddr.Address() != "15550002222" || d.SourceAddr.Ton() != 1 || d.SourceAddr.Npi() != 1 {
		t.Errorf("MO from %v to %v", d.SourceAddr, d.DestAddr)
	}

	// Single UCS-2 message with a surrogate pair.
	text = "héllo 😀 мир"
	s.MO(t, smscMO{From: "15557770000", To: "15550002222", Text: text, Coding: "ucs2"})
	d = e.nextDeliver(t)
	raw = rawMessage(t, d)
	dec, _ = data.UCS2.Decode(raw)
	if d.Message.Encoding().DataCoding() != data.UCS2Coding || dec != text || !bytes.Contains(raw, []byte{0xD8, 0x3D, 0xDE, 0x00}) {
		t.Errorf("UCS-2 MO dc %d %x (%q), want %q", d.Message.Encoding().DataCoding(), raw, dec, text)
	}

	// 8-bit UDH, GSM, parts out of order; '€' (2 septets) at septets
	// 152-153 must move to part 2.
	long := strings.Repeat("a", 152) + "€" + strings.Repeat("0123456789", 25)
	ref := 0x7B
	st := s.MO(t, smscMO{From: "15557770000", To: "15550002222", Text: long, Concat: "udh8", Ref: &ref, PartsOrder: []int{3, 1, 2}})
	if fmt.Sprint(st) != "[0 0 0]" {
		t.Fatalf("udh8 MO statuses %v", st)
	}
	parts := map[int][]byte{}
	var order []int
	for range 3 {
		d := e.nextDeliver(t)
		raw := rawMessage(t, d)
		if d.EsmClass != 0x40 || len(raw) < 6 || !bytes.Equal(raw[:5], []byte{5, 0, 3, 0x7B, 3}) || len(raw)-6 > 153 {
			t.Fatalf("udh8 part: esm %#x %x", d.EsmClass, raw)
		}
		order = append(order, int(raw[5]))
		parts[int(raw[5])] = raw[6:]
	}
	if fmt.Sprint(order) != "[3 1 2]" || len(parts[1]) != 152 {
		t.Errorf("udh8 parts sent in order %v, part 1 has %d septets; want [3 1 2] and 152", order, len(parts[1]))
	}
	dec, _ = data.GSM7BIT.Decode(append(append(append([]byte{}, parts[1]...), parts[2]...), parts[3]...))
	if dec != long {
		t.Errorf("udh8 reassembled %q, want %q", dec, long)
	}

	// 16-bit UDH, UCS-2: 66 units a part, the emoji at units 66-67 moves.
	long = strings.Repeat("ж", 65) + "😀" + strings.Repeat("z", 70)
	ref = 0x1234
	s.MO(t, smscMO{From: "15557770000", To: "15550002222", Text: long, Coding: "ucs2", Concat: "udh16", Ref: &ref})
	var all []byte
	for i := 1; i <= 3; i++ {
		raw := rawMessage(t, e.nextDeliver(t))
		if len(raw) < 7 || !bytes.Equal(raw[:7], []byte{6, 8, 4, 0x12, 0x34, 3, byte(i)}) || len(raw)-7 > 132 {
			t.Fatalf("udh16 part %d: %x", i, raw)
		}
		if i == 1 && len(raw)-7 != 130 {
			t.Errorf("udh16 part 1 has %d octets, want 130 (the pair moves to part 2)", len(raw)-7)
		}
		all = append(all, raw[7:]...)
	}
	if dec, _ = data.UCS2.Decode(all); dec != long {
		t.Errorf("udh16 reassembled %q, want %q", dec, long)
	}

	// SAR TLVs, part 1 omitted.
	long = strings.Repeat("b", 200)
	ref = 0x0102
	st = s.MO(t, smscMO{From: "15557770000", To: "15550002222", Text: long, Concat: "sar", Ref: &ref, OmitParts: []int{1}})
	if fmt.Sprint(st) != "[0]" {
		t.Fatalf("sar MO statuses %v, want [0]", st)
	}
	d = e.nextDeliver(t)
	refTLV, _ := tlv(d, pdu.TagSarMsgRefNum)
	total, _ := tlv(d, pdu.TagSarTotalSegments)
	seqTLV, _ := tlv(d, pdu.TagSarSegmentSeqnum)
	if raw := rawMessage(t, d); d.EsmClass != 0 || !bytes.Equal(refTLV, []byte{1, 2}) || !bytes.Equal(total, []byte{2}) ||
		!bytes.Equal(seqTLV, []byte{2}) || string(raw) != strings.Repeat("b", 47) {
		t.Errorf("sar part: esm %#x ref %x total %x seq %x %q", d.EsmClass, refTLV, total, seqTLV, raw)
	}

	// Raw bytes, and a refusal by the ESME.
	e.deliverStatus.Store(int64(data.ESME_RSYSERR))
	st = s.MO(t, smscMO{From: "1", To: "2", Raw: &smscRawMO{ShortMessageHex: "0500030902016869", ESMClass: 0x40, DataCoding: 4}})
	if fmt.Sprint(st) != "[8]" {
		t.Errorf("nacked MO statuses %v, want [8]", st)
	}
	d = e.nextDeliver(t)
	if raw := rawMessage(t, d); fmt.Sprintf("%x", raw) != "0500030902016869" || d.EsmClass != 0x40 || d.Message.Encoding().DataCoding() != 4 {
		t.Errorf("raw MO %x esm %#x", raw, d.EsmClass)
	}

	stats := s.Stats(t)
	if stats.MOSent != 10 || stats.MOAcked != 9 || stats.MONacked != 1 {
		t.Errorf("stats %+v, want 10 MO parts sent, 9 acked, 1 nacked", stats)
	}

	// Text outside GSM 03.38 is refused, not sent as something else.
	if status, body, _ := s.call(http.MethodPost, "/mo", smscMO{From: "1", To: "2", Text: "ж"}, nil); status != http.StatusBadRequest {
		t.Errorf("non-GSM text: %d %s, want 400", status, body)
	}
	// No receiver bound: 409.
	e.conn.Close()
	e.waitClosed(t)
	if _, err := bindESME(t, s.Addr(), pdu.Transmitter, "veil", "secret"); err != nil {
		t.Fatal(err)
	}
	s.WaitStats(t, smscWait, "no receiver", func(st smscStats) bool { return st.ReceiversActive == 0 && st.BindsActive == 1 })
	if status, body, _ := s.call(http.MethodPost, "/mo", smscMO{From: "1", To: "2", Text: "x"}, nil); status != http.StatusConflict {
		t.Errorf("MO without a receiver: %d %s, want 409", status, body)
	}
}

func TestSMSCDropRebind(t *testing.T) {
	s := startSMSC(t, smscConfig{})
	e := mustBind(t, s)

	// Drop, refusing binds with ESME_RBINDFAIL for a while.
	s.mustCall(t, http.MethodPost, "/drop", map[string]any{"refuse_binds_ms": 500, "refuse_mode": "bindfail"}, nil)
	e.waitClosed(t)
	if st := s.Stats(t); st.Drops != 1 || st.BindsActive != 0 {
		t.Errorf("after drop: %+v, want 1 drop, no bind", st)
	}
	var bindErr gosmpp.BindError
	if _, err := bindESME(t, s.Addr(), pdu.Transmitter, "veil", "secret"); !errors.As(err, &bindErr) || bindErr.CommandStatus != data.ESME_RBINDFAIL {
		t.Errorf("bind during the refusal: %v, want ESME_RBINDFAIL", err)
	}
	// Rebind as soon as it is accepted again.
	deadline := time.Now().Add(smscWait)
	for {
		var err error
		if e, err = bindESME(t, s.Addr(), pdu.Transceiver, "veil", "secret"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rebind in %s: %v", smscWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An unanswered receipt is sent again on the next bind, after a drop
	// that closes new connections at once.
	e.deliverStatus.Store(-1)
	seq := e.send(t, newSubmit(t, "15550001111", "15550002222", "again", 1))[0]
	resp := e.nextResp(t, seq)
	if r := parseReceipt(t, e.nextDeliver(t)); r.id != resp.MessageID {
		t.Fatalf("receipt id %s, want %s", r.id, resp.MessageID)
	}
	s.Drop(t, 300)
	e.waitClosed(t)
	if _, err := bindESME(t, s.Addr(), pdu.Transceiver, "veil", "secret"); err == nil {
		t.Error("bind accepted during the refusal")
	}
	// A receipt for a submit made while no receiver is bound waits too.
	deadline = time.Now().Add(smscWait)
	var tx *esme
	for {
		var err error
		if tx, err = bindESME(t, s.Addr(), pdu.Transmitter, "veil", "secret"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rebind in %s: %v", smscWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	seq = tx.send(t, newSubmit(t, "15550001111", "15550002222", "queued", 1))[0]
	resp2 := tx.nextResp(t, seq)
	if st := s.Stats(t); st.ReceiptsQueued != 2 || st.ReceiptsRequeued != 1 || st.Drops < 2 || st.ConnectionsRefused < 1 {
		t.Errorf("stats %+v, want 2 receipts queued (1 requeued), 2 drops or more, a refused connection", st)
	}
	rx, err := bindESME(t, s.Addr(), pdu.Receiver, "veil", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := parseReceipt(t, rx.nextDeliver(t)), parseReceipt(t, rx.nextDeliver(t)); a.id != resp.MessageID || b.id != resp2.MessageID {
		t.Errorf("receipts after rebind for %s, %s; want %s, %s", a.id, b.id, resp.MessageID, resp2.MessageID)
	}
	s.WaitStats(t, smscWait, "2 receipts acked", func(st smscStats) bool { return st.ReceiptsAcked == 2 && st.ReceiptsQueued == 0 })
	subs := s.Submits(t, 0)
	if len(subs) != 2 || subs[0].Conn == subs[1].Conn || subs[1].Bind != "veil" {
		t.Errorf("submits %+v, want 2 on different connections", subs)
	}
}

// BenchmarkSMSCSubmit measures the simulator with a gosmpp transceiver:
// submit_sm with receipts, a window of 100 (go test -run '^$' -bench
// SMSC ./e2e/).
func BenchmarkSMSCSubmit(b *testing.B) {
	s := startSMSC(b, smscConfig{})
	e := mustBind(b, s)
	const window = 100
	sent, answered, receipts := 0, 0, 0
	b.ResetTimer()
	start := time.Now()
	for answered < b.N || receipts < b.N {
		for sent < b.N && sent-answered < window {
			e.send(b, newSubmit(b, "15550001111", "15550002222", "benchmark message", 1))
			sent++
		}
		switch p := e.next(b).(type) {
		case *pdu.SubmitSMResp:
			if p.CommandStatus != data.ESME_ROK {
				b.Fatalf("submit_sm_resp %v", p.CommandStatus)
			}
			answered++
		case *pdu.DeliverSM:
			receipts++
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "submits/s")
}
