package routing

import "time"

// Capability is something a proxy number can carry.
type Capability string

// Capabilities of a proxy number.
const (
	CapVoice Capability = "voice"
	CapSMS   Capability = "sms"
)

// Mode is what a session allows between its participants.
type Mode string

// Session modes.
const (
	ModeVoice    Mode = "voice"
	ModeSMS      Mode = "sms"
	ModeVoiceSMS Mode = "voice+sms"
)

func (m Mode) valid() bool { return m == ModeVoice || m == ModeSMS || m == ModeVoiceSMS }

// Allows reports whether the mode permits interactions of kind c.
func (m Mode) Allows(c Capability) bool {
	switch c {
	case CapVoice:
		return m == ModeVoice || m == ModeVoiceSMS
	case CapSMS:
		return m == ModeSMS || m == ModeVoiceSMS
	}
	return false
}

// State is a session's life-cycle state.
type State string

// Session states.
const (
	StateOpen   State = "open"
	StateClosed State = "closed"
)

// Close reasons recorded on closed sessions.
const (
	CloseReasonAPI     = "closed"  // closed through the API
	CloseReasonExpired = "expired" // its expiry passed
)

// recordVersion is the version of the records this build writes. A reader
// meeting a newer version refuses it instead of misreading it.
const recordVersion = 1

// Number is a proxy number of the pool.
type Number struct {
	V            int          `json:"v"`
	Number       string       `json:"number"`
	CountryCode  string       `json:"country_code"`
	Carrier      string       `json:"carrier"`
	Capabilities []Capability `json:"capabilities"`
	// Reserved numbers are never picked by the allocator; a session can
	// still ask for one explicitly.
	Reserved bool `json:"reserved"`
	// FallbackNumber receives out-of-session traffic to this number; empty
	// means the global fallback (if any).
	FallbackNumber string    `json:"fallback_number,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

func (n *Number) has(c Capability) bool {
	for _, x := range n.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// supports reports whether the number can carry every kind the mode allows.
func (n *Number) supports(m Mode) bool {
	return (!m.Allows(CapVoice) || n.has(CapVoice)) && (!m.Allows(CapSMS) || n.has(CapSMS))
}

// Participant is a real phone number taking part in a session.
type Participant struct {
	Number string `json:"number"`
}

// Session is a masked relationship between participants through one proxy
// number.
type Session struct {
	V            int           `json:"v"`
	ID           string        `json:"id"`
	ProxyNumber  string        `json:"proxy_number"`
	Participants []Participant `json:"participants"`
	Mode         Mode          `json:"mode"`
	Record       bool          `json:"record"`
	UniqueName   string        `json:"unique_name,omitempty"`
	State        State         `json:"state"`
	CreatedAt    time.Time     `json:"created_at"`
	ExpiresAt    time.Time     `json:"expires_at"`
	ClosedAt     *time.Time    `json:"closed_at,omitempty"`
	CloseReason  string        `json:"close_reason,omitempty"`
}

// other returns the participant that is not p, or "" when p is not one.
func (s *Session) other(p string) string {
	if len(s.Participants) != 2 {
		return ""
	}
	switch p {
	case s.Participants[0].Number:
		return s.Participants[1].Number
	case s.Participants[1].Number:
		return s.Participants[0].Number
	}
	return ""
}

// Route sends traffic to destinations starting with Prefix through
// Carriers, in order of preference.
type Route struct {
	V         int       `json:"v"`
	Prefix    string    `json:"prefix"`
	Carriers  []string  `json:"carriers"`
	CreatedAt time.Time `json:"created_at"`
}

// Decision is the answer to "A called (or texted) P": who to reach, what to
// show, through which carriers.
type Decision struct {
	SessionID string
	// Proxy is the proxy number the caller dialled (P).
	Proxy string
	// CallerID is what the other participant is shown (P).
	CallerID string
	// Callee is the other participant's real number (B).
	Callee string
	// Record asks for the call to be recorded.
	Record bool
	// Carriers to try, in order. Shared with the routing table: callers
	// must not modify it.
	Carriers []string
}

// Interaction is one call or message of a session. Calls carry their
// record; messages arrive with the SMS adapter.
type Interaction struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Kind      string    `json:"kind"`       // KindCall or KindMessage
	CreatedAt time.Time `json:"created_at"` // a call's StartedAt
	// Call is the record of a call (Kind KindCall).
	Call *CallRecord `json:"call,omitempty"`
	// Message is the record of a message (Kind KindMessage).
	Message *MessageRecord `json:"message,omitempty"`
}
