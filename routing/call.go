package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veilgw/veil/store"
)

// Bounds on a call record's fields.
const (
	maxCallID       = 64 // bytes of CallRecord.ID (and of a session id)
	maxCallAttempts = 32 // outbound attempts of one call
	maxCallReason   = 64 // bytes of EndReason and CallAttempt.Reason
)

// interactionTimeLayout writes an interaction's time in its index key:
// fixed width (years 1970 to 9999 are accepted), so keys sort by time.
const interactionTimeLayout = "20060102T150405.000000000Z"

// Interaction kinds, also the value of an inter/ index row.
const (
	KindCall    = "call"
	KindMessage = "message"
)

// CallRecord is the record (CDR) of one call through Veil, written once by
// the SIP B2BUA when the call ends. Participants' numbers are stored
// masked: the record never holds a full real number.
type CallRecord struct {
	// V is the record format version; RecordCall sets it.
	V int `json:"v"`
	// ID is Veil's call id: non-empty, at most 64 bytes, no "/".
	ID string `json:"id"`
	// SessionID is the session the call belongs to; empty for
	// out-of-session calls (rejected or sent to the fallback number).
	SessionID string `json:"session_id,omitempty"`
	// Proxy is the proxy number dialled (P), in E.164.
	Proxy string `json:"proxy"`
	// From is the caller, masked (see Mask).
	From string `json:"from"`
	// To is the callee (B, or the fallback number), masked.
	To string `json:"to"`
	// Fallback is set when the call went to the fallback number.
	Fallback bool `json:"fallback,omitempty"`
	// Attempts are the outbound legs tried, in order.
	Attempts []CallAttempt `json:"attempts"`
	// Status is the final SIP status answered to the caller (200 when
	// answered), 0 if none was sent.
	Status     int        `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    time.Time  `json:"ended_at"`
	// DurationMS is answered to ended, 0 if not answered. RecordCall
	// computes it from the timestamps.
	DurationMS int64 `json:"duration_ms"`
	// PostDialDelayMS is INVITE received to first ringing (180/183) or
	// answer; 0 if neither came.
	PostDialDelayMS int64 `json:"post_dial_delay_ms,omitempty"`
	// EndReason says how the call ended: caller_hangup, callee_hangup,
	// caller_cancel, busy, no_answer, failed, media_timeout, max_duration,
	// out_of_session, shutdown... (lower case, digits and "_").
	EndReason string `json:"end_reason"`
	// Media holds the relay's counters, when media flowed.
	Media *CallMedia `json:"media,omitempty"`
}

// CallAttempt is one outbound leg of a call.
type CallAttempt struct {
	Carrier string `json:"carrier"`
	// Status is the SIP final status the carrier answered, 0 if none
	// (ring timeout, transport error).
	Status int `json:"status"`
	// Reason explains an attempt without a status, e.g. "ring_timeout".
	Reason string `json:"reason,omitempty"`
}

// CallMedia is the media summary of a call, one entry per direction.
type CallMedia struct {
	CallerToCallee MediaDirection `json:"caller_to_callee"`
	CalleeToCaller MediaDirection `json:"callee_to_caller"`
}

// MediaDirection counts the RTP relayed in one direction.
type MediaDirection struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Lost is expected minus received packets; duplicates can make it
	// negative (RFC 3550 §6.4.1).
	Lost int64 `json:"lost"`
	// Jitter is the interarrival jitter in RTP timestamp units (RFC 3550
	// §6.4.1).
	Jitter uint32 `json:"jitter"`
}

// RecordCall validates rec and stores a normalised copy of it (rec itself
// is not modified) in one synced batch: the record, and for a call in a
// session its row in the session's interaction index. From and To are
// stored masked: a full E.164 number is masked with Mask, an already
// masked value is kept, anything else becomes "***". Timestamps are stored
// in UTC and DurationMS is computed from AnsweredAt and EndedAt. A
// SessionID naming no session returns ErrSessionNotFound; other problems
// return ErrInvalid.
//
// Call ids must be unique: the B2BUA mints 143 random bits per call.
// RecordCall does not look for an existing record of the id, which would
// cost a database read per call (tens of microseconds, a measurable share
// of a call's CPU at a thousand calls a second); a repeated id replaces
// the record.
func (s *Service) RecordCall(ctx context.Context, rec *CallRecord) error {
	if rec == nil {
		return invalidf("no call record")
	}
	c, err := normaliseCall(rec)
	if err != nil {
		return err
	}
	if c.SessionID != "" {
		if err := s.sessionExists(c.SessionID); err != nil {
			return err
		}
	}
	key := store.Key(store.PrefixCall, c.ID)
	b := s.db.NewBatch()
	b.SetJSON(key, c)
	if c.SessionID != "" {
		b.Set(interactionKey(c.SessionID, c.StartedAt, c.ID), []byte(KindCall))
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("recording call %s: %w", c.ID, err)
	}
	s.log.Debug("call recorded", "call", c.ID, "session", c.SessionID, "status", c.Status, "end_reason", c.EndReason)
	return nil
}

// interactionKey is inter/<session>/<time>/<id>.
func interactionKey(sessionID string, at time.Time, id string) []byte {
	return store.Key(store.PrefixInteraction, sessionID, at.UTC().Format(interactionTimeLayout), id)
}

// sessionExists reports ErrSessionNotFound unless session id is open in
// memory or stored.
func (s *Service) sessionExists(id string) error {
	s.mu.RLock()
	o := s.idx.byID[id]
	s.mu.RUnlock()
	if o != nil {
		return nil
	}
	ok, err := s.db.Has(store.Key(store.PrefixSession, id))
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrSessionNotFound, "call names session %s", redactInput(id))
	}
	return nil
}

// normaliseCall validates rec and returns the copy to store.
func normaliseCall(rec *CallRecord) (*CallRecord, error) {
	c := *rec
	c.V = recordVersion
	if err := validID("id", c.ID); err != nil {
		return nil, err
	}
	if c.SessionID != "" {
		if err := validID("session_id", c.SessionID); err != nil {
			return nil, err
		}
	}
	if _, err := ParseE164(c.Proxy); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	c.From, c.To = maskParty(c.From), maskParty(c.To)
	if len(c.Attempts) > maxCallAttempts {
		return nil, invalidf("at most %d attempts, got %d", maxCallAttempts, len(c.Attempts))
	}
	c.Attempts = slices.Clone(c.Attempts)
	if c.Attempts == nil {
		c.Attempts = []CallAttempt{}
	}
	for i, a := range c.Attempts {
		if a.Carrier == "" || len(a.Carrier) > maxCallReason || strings.IndexFunc(a.Carrier, badNameRune) >= 0 {
			return nil, invalidf("attempts[%d].carrier must be a name of 1 to %d bytes", i, maxCallReason)
		}
		if !validFinalStatus(a.Status) {
			return nil, invalidf("attempts[%d].status %d: want 0 or a SIP final status (200-699)", i, a.Status)
		}
		if a.Reason != "" && !validReason(a.Reason) {
			return nil, invalidf("attempts[%d].reason %s: want lower case, digits and _, at most %d bytes", i, redactInput(a.Reason), maxCallReason)
		}
	}
	if !validFinalStatus(c.Status) {
		return nil, invalidf("status %d: want 0 or a SIP final status (200-699)", c.Status)
	}
	if !validReason(c.EndReason) {
		return nil, invalidf("end_reason %s: want 1 to %d bytes of lower case, digits and _", redactInput(c.EndReason), maxCallReason)
	}
	if y := c.StartedAt.UTC().Year(); c.StartedAt.IsZero() || y < 1970 || y > 9999 {
		return nil, invalidf("started_at is missing or out of range")
	}
	// Order and duration are judged on the times as given, so monotonic
	// readings (time.Now) win over a wall clock stepped during the call;
	// the stored times are UTC wall clock.
	if c.EndedAt.Before(c.StartedAt) {
		return nil, invalidf("ended_at is before started_at")
	}
	c.DurationMS = 0
	if c.AnsweredAt != nil {
		at := *c.AnsweredAt
		if at.Before(c.StartedAt) || at.After(c.EndedAt) {
			return nil, invalidf("answered_at is not between started_at and ended_at")
		}
		c.DurationMS = c.EndedAt.Sub(at).Milliseconds()
		at = at.UTC()
		c.AnsweredAt = &at
	}
	c.StartedAt, c.EndedAt = c.StartedAt.UTC(), c.EndedAt.UTC()
	// Not bounded by the call's length: an adapter rounding a sub-
	// millisecond delay up to 1 ms must not lose the record.
	if c.PostDialDelayMS < 0 {
		return nil, invalidf("post_dial_delay_ms must not be negative")
	}
	if c.Media != nil {
		m := *c.Media
		c.Media = &m
	}
	return &c, nil
}

// validID accepts ids usable as one key part: 1 to 64 bytes of printable
// text without "/".
func validID(field, id string) error {
	if id == "" || len(id) > maxCallID || strings.ContainsRune(id, '/') || strings.IndexFunc(id, badNameRune) >= 0 {
		return invalidf("%s %s: want 1 to %d bytes without / or control characters", field, redactInput(id), maxCallID)
	}
	return nil
}

func validFinalStatus(code int) bool { return code == 0 || (code >= 200 && code <= 699) }

func validReason(r string) bool {
	if r == "" || len(r) > maxCallReason {
		return false
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// maskParty returns the form of a participant's number kept in a call
// record: Mask of an E.164 number, an already masked value unchanged, ""
// for "", and "***" for anything else (it may be a real number in some
// other spelling).
func maskParty(v string) string {
	switch {
	case v == "":
		return ""
	case isMasked(v):
		return v
	}
	if _, err := ParseE164(v); err == nil {
		return Mask(v)
	}
	return "***"
}

// isMasked reports whether v is an output of Mask: "***", or "+", a
// calling code, "***" and three digits.
func isMasked(v string) bool {
	if v == "***" {
		return true
	}
	cc, last, ok := strings.Cut(v, "***")
	if !ok || len(cc) < 2 || len(cc) > 4 || cc[0] != '+' || len(last) != 3 {
		return false
	}
	return allDigits(cc[1:]) && allDigits(last)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// GetCall returns the record of call id, or ErrCallNotFound.
func (s *Service) GetCall(ctx context.Context, id string) (*CallRecord, error) {
	if validID("id", id) != nil {
		return nil, ErrCallNotFound
	}
	c := new(CallRecord)
	data, err := s.db.Get(store.Key(store.PrefixCall, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrCallNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := decode(data, c, &c.V); err != nil {
		return nil, fmt.Errorf("call %s: %w", id, err)
	}
	return c, nil
}

// ListInteractions returns the calls and messages of a session, oldest
// first (by start time, then id). An unknown session returns
// ErrSessionNotFound.
func (s *Service) ListInteractions(ctx context.Context, sessionID string) ([]Interaction, error) {
	if _, err := s.GetSession(ctx, sessionID); err != nil {
		return nil, err
	}
	out := []Interaction{}
	prefix := store.Key(store.PrefixInteraction, sessionID, "")
	err := s.db.Scan(prefix, nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixInteraction, 3)
		if !ok {
			return true, nil
		}
		switch string(v) {
		case KindCall:
			c, err := s.GetCall(ctx, parts[2])
			if err != nil {
				return false, fmt.Errorf("interaction %s of session %s: %w", parts[2], sessionID, err)
			}
			out = append(out, Interaction{ID: c.ID, SessionID: sessionID, Kind: KindCall, CreatedAt: c.StartedAt, Call: c})
		case KindMessage:
			m, err := s.GetMessage(ctx, parts[2])
			if err != nil {
				return false, fmt.Errorf("interaction %s of session %s: %w", parts[2], sessionID, err)
			}
			out = append(out, Interaction{ID: m.ID, SessionID: sessionID, Kind: KindMessage, CreatedAt: m.CreatedAt, Message: m})
		default:
			s.log.Warn("interaction row of an unknown kind; run veild check", "session", sessionID, "kind", string(v))
		}
		return ctx.Err() == nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// noOwner stands for a proxy number outside the pool: it has no owner
// route, so only the routing table answers. Read only.
var noOwner poolNumber

// CarriersFor returns the carriers to reach dest from the proxy number
// proxy, in order, with the rules of a Decision: the longest matching
// route ("+" matches everything), else the carrier owning proxy. It is
// what an out-of-session call forwarded to a fallback number uses. It
// returns nil when no route matches and proxy is not in the pool. The
// slice is shared with the routing table: callers must not modify it.
func (s *Service) CarriersFor(dest, proxy string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	owner := s.pool.numbers[proxy]
	if owner == nil {
		owner = &noOwner
	}
	return s.carriersForLocked(dest, owner)
}
