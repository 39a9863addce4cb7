package admin

import (
	"time"

	"github.com/veilgw/veil/smpp"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	RoleAdmin    Role = "admin"
	RoleReviewer Role = "reviewer"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable code and a human-readable message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Role Role `json:"role"`
	// Name is a free label to tell tokens apart ("billing-backend").
	Name string `json:"name,omitempty"`
}

// Token describes an API token; Token (the secret) is only set in the
// response that creates it.
type Token struct {
	ID        string    `json:"id"`
	Role      Role      `json:"role"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token,omitempty"`
}

// TokenList is the body of GET /v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// AddNumberRequest is the body of POST /v1/numbers.
type AddNumberRequest struct {
	Number         string   `json:"number"`
	Carrier        string   `json:"carrier"`
	Capabilities   []string `json:"capabilities,omitempty"`
	Reserved       bool     `json:"reserved,omitempty"`
	FallbackNumber string   `json:"fallback_number,omitempty"`
}

// UpdateNumberRequest is the body of PATCH /v1/numbers/{number}; absent
// fields stay as they are.
type UpdateNumberRequest struct {
	Reserved       *bool   `json:"reserved,omitempty"`
	FallbackNumber *string `json:"fallback_number,omitempty"`
}

// Number is a proxy number of the pool.
type Number struct {
	Number         string    `json:"number"`
	CountryCode    string    `json:"country_code"`
	Carrier        string    `json:"carrier"`
	Capabilities   []string  `json:"capabilities"`
	Reserved       bool      `json:"reserved"`
	FallbackNumber string    `json:"fallback_number,omitempty"`
	OpenSessions   int       `json:"open_sessions"`
	CreatedAt      time.Time `json:"created_at"`
}

// NumberList is the body of GET /v1/numbers.
type NumberList struct {
	Numbers []Number `json:"numbers"`
}

// RouteRequest is the body of POST /v1/routes.
type RouteRequest struct {
	Prefix   string   `json:"prefix"`
	Carriers []string `json:"carriers"`
}

// Route sends destinations starting with Prefix through Carriers in order.
type Route struct {
	Prefix    string    `json:"prefix"`
	Carriers  []string  `json:"carriers"`
	CreatedAt time.Time `json:"created_at"`
}

// RouteList is the body of GET /v1/routes.
type RouteList struct {
	Routes []Route `json:"routes"`
}

// Participant is a real number taking part in a session.
type Participant struct {
	Number string `json:"number"`
}

// CreateSessionRequest is the body of POST /v1/sessions.
type CreateSessionRequest struct {
	Participants []Participant `json:"participants"`
	// Mode is voice, sms or voice+sms (the default).
	Mode   string `json:"mode,omitempty"`
	Record bool   `json:"record,omitempty"`
	// TTLSeconds or ExpiresAt (not both); neither means the configured
	// default.
	TTLSeconds int64      `json:"ttl_seconds,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	UniqueName string     `json:"unique_name,omitempty"`
	// ProxyNumber picks a specific pool number (reserved ones included).
	ProxyNumber string `json:"proxy_number,omitempty"`
}

// Session is a masked relationship between participants.
type Session struct {
	ID           string        `json:"id"`
	ProxyNumber  string        `json:"proxy_number"`
	Participants []Participant `json:"participants"`
	Mode         string        `json:"mode"`
	Record       bool          `json:"record"`
	UniqueName   string        `json:"unique_name,omitempty"`
	State        string        `json:"state"`
	CreatedAt    time.Time     `json:"created_at"`
	ExpiresAt    time.Time     `json:"expires_at"`
	ClosedAt     *time.Time    `json:"closed_at,omitempty"`
	CloseReason  string        `json:"close_reason,omitempty"`
}

// SessionList is the body of GET /v1/sessions. NextCursor, when set, is
// passed as ?cursor= to get the next page.
type SessionList struct {
	Sessions   []Session `json:"sessions"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// Interaction is one call or message of a session.
type Interaction struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	// Call is the call's record when Kind is "call".
	Call *CallRecord `json:"call,omitempty"`
	// Message is the message's record when Kind is "message".
	Message *Message `json:"message,omitempty"`
}

// CallRecord is the record of one call (GET /v1/calls/{id}). From and To
// are masked numbers.
type CallRecord struct {
	ID              string        `json:"id"`
	SessionID       string        `json:"session_id,omitempty"`
	Proxy           string        `json:"proxy"`
	From            string        `json:"from"`
	To              string        `json:"to"`
	Fallback        bool          `json:"fallback,omitempty"`
	Attempts        []CallAttempt `json:"attempts"`
	Status          int           `json:"status"`
	StartedAt       time.Time     `json:"started_at"`
	AnsweredAt      *time.Time    `json:"answered_at,omitempty"`
	EndedAt         time.Time     `json:"ended_at"`
	DurationMS      int64         `json:"duration_ms"`
	PostDialDelayMS int64         `json:"post_dial_delay_ms,omitempty"`
	EndReason       string        `json:"end_reason"`
	Media           *CallMedia    `json:"media,omitempty"`
}

// CallAttempt is one outbound leg tried for a call.
type CallAttempt struct {
	Carrier string `json:"carrier"`
	Status  int    `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// CallMedia is a call's media summary, per direction.
type CallMedia struct {
	CallerToCallee MediaDirection `json:"caller_to_callee"`
	CalleeToCaller MediaDirection `json:"callee_to_caller"`
}

// MediaDirection counts the RTP relayed in one direction.
type MediaDirection struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Lost    int64  `json:"lost"`
	Jitter  uint32 `json:"jitter"`
}

// InteractionList is the body of GET /v1/sessions/{id}/interactions.
type InteractionList struct {
	Interactions []Interaction `json:"interactions"`
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"`
}

// SendMessageRequest is the body of POST /v1/messages.
type SendMessageRequest struct {
	// From is a proxy number of the pool (E.164) or a configured sender id.
	From string `json:"from"`
	// To is the destination, E.164.
	To string `json:"to"`
	// Body is the text, at most MaxMessageChars characters.
	Body string `json:"body"`
}

// MessageAccepted is the answer of POST /v1/messages: the message is
// stored and queued; GET /v1/messages/{id} follows it.
type MessageAccepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Parts is the number of short messages the text takes.
	Parts int `json:"parts"`
}

// Message is the record of one SMS (GET /v1/messages/{id}). From and To
// are masked numbers (or a sender id).
type Message struct {
	ID        string `json:"id"`
	SessionID string `json:"session_id,omitempty"`
	// Direction is "in" (to a proxy number) or "out" (sent by Veil).
	Direction string `json:"direction"`
	// Origin of an outbound message: relay, api or auto_reply.
	Origin string `json:"origin,omitempty"`
	// Related is the other half of a relay.
	Related    string        `json:"related,omitempty"`
	Proxy      string        `json:"proxy,omitempty"`
	From       string        `json:"from"`
	To         string        `json:"to"`
	Carrier    string        `json:"carrier,omitempty"`
	Body       string        `json:"body"`
	Encoding   string        `json:"encoding,omitempty"`
	Parts      []MessagePart `json:"parts"`
	Incomplete bool          `json:"incomplete,omitempty"`
	// Status: queued, sent, delivered, failed, expired, unknown (outbound);
	// received, rejected (inbound).
	Status    string     `json:"status"`
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

// MessagePart is one short message of a Message.
type MessagePart struct {
	Seq int `json:"seq"`
	// CarrierID is the id the carrier gave the part (submit_sm_resp).
	CarrierID   string     `json:"carrier_id,omitempty"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	SubmittedAt *time.Time `json:"submitted_at,omitempty"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
}

// CarrierBind is the state of one carrier's SMPP bind, as the SMS
// service reports it (its JSON is the API's).
type CarrierBind = smpp.BindStatus

// CarrierList is the body of GET /v1/carriers.
type CarrierList struct {
	Carriers []CarrierBind `json:"carriers"`
}
