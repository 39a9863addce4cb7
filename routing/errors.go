package routing

import (
	"errors"
	"fmt"
)

// Validation and lookup errors returned by the Service. Callers compare with
// errors.Is; wrapped errors carry the detail.
var (
	// ErrInvalid is a request that fails validation (bad E.164, bad mode...).
	ErrInvalid = errors.New("invalid request")
	// ErrNumberNotFound is a proxy number that is not in the pool.
	ErrNumberNotFound = errors.New("number not found")
	// ErrNumberExists is a proxy number added twice.
	ErrNumberExists = errors.New("number already in the pool")
	// ErrNumberInUse is a proxy number that open sessions still use, or a
	// number that is a participant of an open session.
	ErrNumberInUse = errors.New("number in use")
	// ErrUnknownCarrier names a carrier that is not configured.
	ErrUnknownCarrier = errors.New("unknown carrier")
	// ErrRouteNotFound is a route prefix with no route.
	ErrRouteNotFound = errors.New("route not found")
	// ErrSessionNotFound is a session id that does not exist.
	ErrSessionNotFound = errors.New("session not found")
	// ErrPoolExhausted means no proxy number is free for every participant.
	ErrPoolExhausted = errors.New("no proxy number is free for these participants")
	// ErrUniqueNameInUse is a unique_name already held by an open session.
	ErrUniqueNameInUse = errors.New("unique_name in use by an open session")
	// ErrCallNotFound is a call id with no record.
	ErrCallNotFound = errors.New("call not found")
	// ErrMessageNotFound is a message id with no record.
	ErrMessageNotFound = errors.New("message not found")
	// ErrProxyNotFree is an explicitly requested proxy number that a
	// participant already holds in another open session.
	ErrProxyNotFree = errors.New("proxy number not free for these participants")
)

// Decision errors, returned (wrapped in *ResolveError) by ResolveCall and
// ResolveMessage.
var (
	// ErrOutOfSession: the caller has no open session on the proxy number.
	ErrOutOfSession = errors.New("out of session")
	// ErrUnknownNumber: the dialled number is not a proxy number of the pool.
	ErrUnknownNumber = errors.New("unknown proxy number")
	// ErrSessionClosed: the caller's session on the proxy number is closed
	// or expired.
	ErrSessionClosed = errors.New("session closed")
	// ErrModeNotAllowed: the session (or the number) does not allow this
	// kind of interaction (a call in an sms-only session).
	ErrModeNotAllowed = errors.New("mode not allowed")
)

// ResolveError explains why a call or message has no decision. It unwraps
// to one of the decision errors.
type ResolveError struct {
	Reason    error  // ErrOutOfSession, ErrUnknownNumber, ErrSessionClosed, ErrModeNotAllowed
	Proxy     string // the proxy number dialled, when known
	SessionID string // the session concerned (closed or mode-limited), if any
	// Fallback is where the marketplace wants out-of-session traffic sent
	// (the number's fallback, else the global one); empty means reject.
	Fallback string
}

func (e *ResolveError) Error() string {
	if e.SessionID != "" {
		return fmt.Sprintf("%v (session %s)", e.Reason, e.SessionID)
	}
	return e.Reason.Error()
}

func (e *ResolveError) Unwrap() error { return e.Reason }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// errorf wraps sentinel with a detail message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
