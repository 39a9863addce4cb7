package smpp

import "time"

// SendRequest asks for one outbound message (POST /v1/messages).
type SendRequest struct {
	// From is a proxy number (E.164) or a configured sender id.
	From string
	// To is the destination, E.164.
	To string
	// Body is the text: GSM 03.38 when every character allows it, else
	// UCS-2, split into concatenated parts as needed.
	Body string
}

// Bind states, as BindStatus.State and the veil_smpp_bind_up metric say.
const (
	BindDown       = "down"       // not connected; will retry after a backoff
	BindConnecting = "connecting" // TCP (or TLS) connect and bind in progress
	BindBound      = "bound"      // bound: submits and receipts flow
	BindStopped    = "stopped"    // the service is closed
)

// BindStatus is the state of one carrier's SMPP bind (GET /v1/carriers).
type BindStatus struct {
	Carrier string `json:"carrier"`
	// Address is the SMSC's host:port.
	Address string `json:"address"`
	// BindType is transceiver or transmitter_receiver.
	BindType string `json:"bind_type"`
	// State is one of the Bind* constants (for transmitter_receiver, the
	// worse of the two binds).
	State string `json:"state"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
	// Window is the most submit_sm awaiting a response; InFlight how many
	// are now.
	Window   int `json:"window"`
	InFlight int `json:"in_flight"`
	// Queued is the number of parts waiting to be submitted.
	Queued int `json:"queued"`
	// Reconnects counts binds made after the first.
	Reconnects int `json:"reconnects"`
	// LastError is the last bind or connection error, if any (never a
	// password).
	LastError string `json:"last_error,omitempty"`
	// PausedUntil is set while the bind holds its submits because the
	// SMSC answered throttled or queue full.
	PausedUntil *time.Time `json:"paused_until,omitempty"`
}
