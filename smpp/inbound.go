package smpp

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// moPart is one part of a concatenated inbound message, kept (in memory
// and at mopart/) until the rest arrives.
type moPart struct {
	Seq        int       `json:"seq"`
	Total      int       `json:"total"`
	DataCoding byte      `json:"data_coding"`
	Payload    []byte    `json:"payload"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	At         time.Time `json:"at"`
}

// moGroup is the parts of one concatenated inbound message so far.
type moGroup struct {
	carrier string
	key     string // store key part: from/to/ref
	total   int
	first   time.Time
	parts   map[int]moPart
}

// inboundOp reads an inbound deliver_sm: the sender A, the proxy number
// P, the text (reassembled when concatenated by UDH or SAR TLVs). nil
// means the message cannot be read (the SMSC is told so).
func (s *Service) inboundOp(b *bind, p *pdu.DeliverSM) *op {
	from := e164(p.SourceAddr)
	to := e164(p.DestAddr)
	dc := byte(0xFF)
	if enc := p.Message.Encoding(); enc != nil {
		dc = enc.DataCoding()
	}
	payload, _ := p.Message.GetMessageData()
	if f, ok := p.OptionalParameters[pdu.TagMessagePayload]; ok && len(payload) == 0 {
		payload = f.Data
	}
	var ref, total, seq int
	if udh := p.Message.UDH(); len(udh) > 0 {
		raw, err := udh.MarshalBinary()
		if err != nil {
			return nil
		}
		h, _, err := ParseUDH(append(raw, payload...))
		if err != nil {
			return nil
		}
		if h.Concat {
			ref, total, seq = int(h.Ref), int(h.Total), int(h.Seq)
		}
	}
	if f, ok := p.OptionalParameters[pdu.TagSarMsgRefNum]; ok && total == 0 {
		ts, sq := p.OptionalParameters[pdu.TagSarTotalSegments], p.OptionalParameters[pdu.TagSarSegmentSeqnum]
		if len(f.Data) == 2 && len(ts.Data) == 1 && len(sq.Data) == 1 && ts.Data[0] > 0 && sq.Data[0] > 0 && sq.Data[0] <= ts.Data[0] {
			ref, total, seq = int(f.Data[0])<<8|int(f.Data[1]), int(ts.Data[0]), int(sq.Data[0])
		}
	}
	if _, err := Decode(dc, payload); err != nil {
		s.metrics.inbound.WithLabelValues(b.name, "unreadable").Inc()
		return nil
	}
	if from == "" || to == "" {
		s.metrics.inbound.WithLabelValues(b.name, "bad_address").Inc()
		return nil
	}
	now := s.now()
	if total <= 1 {
		text, _ := Decode(dc, payload)
		return &op{apply: func(c *commit) { c.s.relayInbound(c, b.name, from, to, text, 1, false) }}
	}
	part := moPart{Seq: seq, Total: total, DataCoding: dc, Payload: append([]byte(nil), payload...), From: from, To: to, At: now}
	// The part count is in the key: parts that disagree on it are not
	// one message.
	key := from + "/" + to + "/" + strconv.Itoa(ref) + "/" + strconv.Itoa(total)
	return &op{apply: func(c *commit) { c.s.addPart(c, b.name, key, part) }}
}

// e164 reads an SMPP address as E.164 ("" when it is not a number).
func e164(a pdu.Address) string {
	n := a.Address()
	if n == "" {
		return ""
	}
	if n[0] != '+' {
		n = "+" + n
	}
	if _, err := routing.ParseE164(n); err != nil {
		return ""
	}
	return n
}

// addPart (committer) stores a part and relays the message once complete.
func (s *Service) addPart(c *commit, carrier, key string, p moPart) {
	gk := carrier + "/" + key
	if at, ok := s.relayedGroups[gk]; ok && p.At.Sub(at) < s.opts.SMS.ReassemblyTimeout {
		return // a part of a message relayed whole just now, sent again
	}
	g := s.groups[gk]
	if g == nil {
		g = &moGroup{carrier: carrier, key: key, total: p.Total, first: p.At, parts: map[int]moPart{}}
		s.groups[gk] = g
	}
	if _, dup := g.parts[p.Seq]; dup {
		return // a resent part: answered, nothing new
	}
	g.parts[p.Seq] = p
	if len(g.parts) < g.total {
		data, _ := json.Marshal(p)
		c.b.Set(store.Key(store.PrefixMOPart, carrier, key+"/"+strconv.Itoa(p.Seq)), data)
		return
	}
	s.completeGroup(c, gk, g, false)
	// SMSCs resend a part whose deliver_sm_resp they did not get (a
	// drop): for a while, such a part is a duplicate, not a new message.
	s.relayedGroups[gk] = p.At
}

// completeGroup (committer) relays a group's text (what arrived of it).
func (s *Service) completeGroup(c *commit, gk string, g *moGroup, incomplete bool) {
	delete(s.groups, gk)
	seqs := make([]int, 0, len(g.parts))
	for q := range g.parts {
		seqs = append(seqs, q)
		c.b.Delete(store.Key(store.PrefixMOPart, g.carrier, g.key+"/"+strconv.Itoa(q)))
	}
	sort.Ints(seqs)
	// Join the bytes, then decode: a sender that split an escape or a
	// surrogate pair across parts still reads right.
	var all []byte
	var dc byte
	var from, to string
	for _, q := range seqs {
		p := g.parts[q]
		all = append(all, p.Payload...)
		dc, from, to = p.DataCoding, p.From, p.To
	}
	text, err := Decode(dc, all)
	if err != nil {
		text = ""
	}
	s.relayInbound(c, g.carrier, from, to, text, len(seqs), incomplete)
}

// sweepGroups (committer) relays groups past the reassembly timeout.
func (s *Service) sweepGroups(c *commit) {
	now := s.now()
	for gk, g := range s.groups {
		if now.Sub(g.first) >= s.opts.SMS.ReassemblyTimeout {
			s.completeGroup(c, gk, g, true)
		}
	}
	for gk, at := range s.relayedGroups {
		if now.Sub(at) >= s.opts.SMS.ReassemblyTimeout {
			delete(s.relayedGroups, gk)
		}
	}
}

// resumeGroups reloads stored inbound parts.
func (s *Service) resumeGroups() error {
	return s.db.Scan([]byte(store.PrefixMOPart), nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixMOPart, 2)
		var p moPart
		if !ok || json.Unmarshal(v, &p) != nil {
			return true, nil
		}
		carrier, rest := parts[0], parts[1]
		i := len(rest) - 1
		for i >= 0 && rest[i] != '/' {
			i--
		}
		if i < 0 {
			return true, nil
		}
		key := rest[:i]
		gk := carrier + "/" + key
		g := s.groups[gk]
		if g == nil {
			g = &moGroup{carrier: carrier, key: key, total: p.Total, first: p.At, parts: map[int]moPart{}}
			s.groups[gk] = g
		}
		if p.At.Before(g.first) {
			g.first = p.At
		}
		g.parts[p.Seq] = p
		return true, nil
	})
}

// relayInbound (committer) records an inbound message and, for an open
// session, queues its relay to the other participant from the proxy
// number; out of session it goes to the fallback number, or is rejected
// (with the configured auto-reply).
func (s *Service) relayInbound(c *commit, carrier, from, to, text string, parts int, incomplete bool) {
	now := s.now()
	in := &routing.MessageRecord{
		ID: newID(now), Direction: routing.DirectionIn, Proxy: to, From: from, To: to,
		Carrier: carrier, Body: text, Status: routing.MsgReceived, Incomplete: incomplete, CreatedAt: now,
	}
	for i := 1; i <= parts; i++ {
		in.Parts = append(in.Parts, routing.MessagePart{Seq: i, Status: routing.MsgReceived})
	}
	s.metrics.inbound.WithLabelValues(carrier, "received").Inc()
	dec, err := s.rt.ResolveMessage(context.Background(), from, to)
	dst, src := dec.Callee, dec.CallerID
	if err != nil {
		var re *routing.ResolveError
		if !errors.As(err, &re) {
			in.Status, in.Reason = routing.MsgRejected, "error"
			s.log.Error("resolving an inbound message", "error", err)
			c.records = append(c.records, in)
			return
		}
		in.SessionID = re.SessionID
		if re.Fallback == "" {
			in.Status, in.Reason = routing.MsgRejected, reasonOf(re.Reason)
			s.metrics.inbound.WithLabelValues(carrier, "rejected").Inc()
			if s.opts.SMS.AutoReply != "" && !errors.Is(re.Reason, routing.ErrUnknownNumber) && s.mayAutoReply(carrier, from, to) {
				// In the closed session's thread when there is one, so a
				// reviewer sees what the sender was told.
				if m, err := s.newOut(to, from, s.opts.SMS.AutoReply, routing.MessageRecord{Origin: "auto_reply", Related: in.ID, SessionID: in.SessionID}); err == nil {
					in.Related = m.rec.ID
					s.startOut(c, m)
				}
			}
			c.records = append(c.records, in)
			return
		}
		in.Reason = "fallback"
		dst, src = re.Fallback, to
	} else {
		in.SessionID = dec.SessionID
	}
	if strings.TrimSpace(text) == "" {
		// Nothing to say (an empty short_message, or a UDH alone): B
		// is not sent a blank SMS.
		in.Status, in.Reason = routing.MsgRejected, "empty"
		s.metrics.inbound.WithLabelValues(carrier, "rejected").Inc()
		c.records = append(c.records, in)
		return
	}
	if utf8.RuneCountInString(text) > MaxTextChars {
		in.Status, in.Reason = routing.MsgRejected, "too_long"
		s.metrics.inbound.WithLabelValues(carrier, "rejected").Inc()
		c.records = append(c.records, in)
		return
	}
	m, err := s.newOut(src, dst, text, routing.MessageRecord{Origin: "relay", Related: in.ID, SessionID: in.SessionID})
	if err != nil {
		in.Status, in.Reason = routing.MsgRejected, reasonFor(err)
		c.records = append(c.records, in)
		return
	}
	in.Related = m.rec.ID
	c.records = append(c.records, in)
	s.startOut(c, m)
}

// MaxTextChars is the longest text Veil sends, relayed or from the API, in
// characters (Unicode code points): the usual CPaaS limit, at most 11
// concatenated GSM 03.38 parts (21 when every character is an extension
// character) or 24 UCS-2 parts (49 when every character is outside the
// Basic Multilingual Plane, like emoji).
const MaxTextChars = 1600

// autoReplyEvery is how often one sender gets the auto-reply from one
// proxy number at most.
const autoReplyEvery = time.Hour

// mayAutoReply (committer) says whether the auto-reply goes to from for a
// message to proxy: never to a number of the pool or a sender id (two
// gateways, or a carrier looping messages back, would answer each other
// for ever), and once per autoReplyEvery per sender and proxy.
func (s *Service) mayAutoReply(carrier, from, proxy string) bool {
	if s.senders[from] {
		return false
	}
	if _, err := s.rt.GetNumber(from); err == nil {
		return false
	}
	now := s.now()
	k := from + "/" + proxy
	if last, ok := s.replied[k]; ok && now.Sub(last) < autoReplyEvery {
		s.metrics.inbound.WithLabelValues(carrier, "auto_reply_suppressed").Inc()
		return false
	}
	if len(s.replied) >= 1<<16 {
		for k, t := range s.replied {
			if now.Sub(t) >= autoReplyEvery {
				delete(s.replied, k)
			}
		}
		if len(s.replied) >= 1<<16 {
			clear(s.replied)
		}
	}
	s.replied[k] = now
	return true
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, routing.ErrOutOfSession):
		return "out_of_session"
	case errors.Is(err, routing.ErrSessionClosed):
		return "session_closed"
	case errors.Is(err, routing.ErrModeNotAllowed):
		return "mode_not_allowed"
	case errors.Is(err, routing.ErrUnknownNumber):
		return "unknown_number"
	}
	return "rejected"
}

func reasonFor(err error) string {
	switch {
	case errors.Is(err, ErrNoRoute):
		return "no_route"
	case errors.Is(err, ErrTooLong):
		return "too_long"
	}
	return "error"
}
