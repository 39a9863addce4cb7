package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/veilgw/veil/store"
)

// Message directions.
const (
	// DirectionIn is a message a participant sent to a proxy number (MO).
	DirectionIn = "in"
	// DirectionOut is a message Veil sends to a participant (MT):
	// relayed from a DirectionIn message, or asked for through the API.
	DirectionOut = "out"
)

// Message statuses. Outbound messages go queued -> sent (every part
// accepted by the carrier) -> delivered | failed | expired | unknown (from
// the receipts); inbound ones are received (relayed, or kept for the
// fallback) or rejected (not relayed: Reason says why).
const (
	MsgQueued    = "queued"
	MsgSent      = "sent"
	MsgDelivered = "delivered"
	MsgFailed    = "failed"
	MsgExpired   = "expired"
	MsgUnknown   = "unknown"
	MsgReceived  = "received"
	MsgRejected  = "rejected"
)

// MessageRecord is the log row of one SMS through Veil (an interaction of
// kind "message"). Numbers are stored masked; the text is kept, because a
// compliance reviewer reads the thread. The SMS adapter owns the queue
// that sends it; this record is what the API and the review see.
type MessageRecord struct {
	// V is the record format version; PutMessage sets it.
	V int `json:"v"`
	// ID is Veil's message id: non-empty, at most 64 bytes, no "/".
	ID string `json:"id"`
	// SessionID is the session the message belongs to; empty for
	// out-of-session and API messages.
	SessionID string `json:"session_id,omitempty"`
	// Direction is DirectionIn or DirectionOut.
	Direction string `json:"direction"`
	// Origin of an outbound message: "relay" (from an inbound one),
	// "api", or "auto_reply".
	Origin string `json:"origin,omitempty"`
	// Related is the other half of a relay: the outbound message an
	// inbound one became, or the inbound one an outbound one came from.
	Related string `json:"related,omitempty"`
	// Proxy is the proxy number (P) the message went to or comes from.
	Proxy string `json:"proxy,omitempty"`
	// From and To are masked (see Mask), except sender ids.
	From string `json:"from"`
	To   string `json:"to"`
	// Carrier is the carrier the message came in from or goes out by.
	Carrier string `json:"carrier,omitempty"`
	// Body is the text.
	Body string `json:"body"`
	// Encoding is "gsm7" or "ucs2".
	Encoding string `json:"encoding,omitempty"`
	// Parts of an outbound message, in order; for an inbound one, the
	// parts that arrived.
	Parts []MessagePart `json:"parts"`
	// Incomplete: an inbound concatenated message delivered after its
	// reassembly timeout with parts missing.
	Incomplete bool `json:"incomplete,omitempty"`
	// Status is one of the Msg* constants.
	Status string `json:"status"`
	// Reason explains a rejected or failed message: out_of_session,
	// session_closed, mode_not_allowed, unknown_number, no_route, or the
	// carrier's error (e.g. "ESME_RINVDSTADR", "UNDELIV err:001").
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

// MessagePart is one short message of a message.
type MessagePart struct {
	// Seq is the part's number, from 1.
	Seq int `json:"seq"`
	// CarrierID is the id the carrier gave the part (submit_sm_resp).
	CarrierID string `json:"carrier_id,omitempty"`
	// Status: queued, sent, delivered, failed, expired, unknown,
	// received.
	Status string `json:"status"`
	// Error is the carrier's error for a failed part.
	Error       string     `json:"error,omitempty"`
	SubmittedAt *time.Time `json:"submitted_at,omitempty"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
}

// PutMessage adds the writes of rec to b: its record and, for a message in
// a session, its interaction row (written once, keyed by CreatedAt, so
// every later PutMessage of the same message must keep CreatedAt). From
// and To are masked unless already masked or not phone numbers (sender
// ids); rec itself is not modified. The SMS adapter calls it inside its own
// batches, so that a queued message and its log row are one write.
func (s *Service) PutMessage(b *store.Batch, rec *MessageRecord) error {
	if rec == nil {
		return invalidf("no message record")
	}
	if err := validID("id", rec.ID); err != nil {
		return err
	}
	if rec.SessionID != "" {
		if err := validID("session_id", rec.SessionID); err != nil {
			return err
		}
	}
	if rec.Direction != DirectionIn && rec.Direction != DirectionOut {
		return invalidf("direction must be %q or %q", DirectionIn, DirectionOut)
	}
	m := *rec
	m.V = recordVersion
	m.From, m.To = maskSender(m.From), maskSender(m.To)
	m.CreatedAt = m.CreatedAt.UTC()
	if m.Parts == nil {
		m.Parts = []MessagePart{}
	}
	b.SetJSON(store.Key(store.PrefixMessage, m.ID), &m)
	if m.SessionID != "" {
		b.Set(interactionKey(m.SessionID, m.CreatedAt, m.ID), []byte(KindMessage))
	}
	return nil
}

// maskSender masks a phone number and keeps an alphanumeric sender id
// (it names a business, not a person).
func maskSender(v string) string {
	if v == "" || isMasked(v) {
		return v
	}
	if _, err := ParseE164(v); err == nil {
		return Mask(v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= '0' && c <= '9' {
			return "***" // digits in some other spelling: may be a number
		}
	}
	return v
}

// GetMessage returns the record of message id, or ErrMessageNotFound.
func (s *Service) GetMessage(ctx context.Context, id string) (*MessageRecord, error) {
	if validID("id", id) != nil {
		return nil, ErrMessageNotFound
	}
	m := new(MessageRecord)
	data, err := s.db.Get(store.Key(store.PrefixMessage, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrMessageNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := decode(data, m, &m.V); err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}
