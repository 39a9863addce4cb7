package sip

import (
	"errors"
	"fmt"
)

// ErrBadNumber is a URI or header value that does not hold a usable E.164
// number: no user part ("sip:carrier.example"), a name ("anonymous"),
// letters, a local number, too few or too many digits, or a malformed URI.
// The call handler maps it to 400 Bad Request (unreadable caller) or
// 404 Not Found (unknown dialled number). Errors wrapping it never quote
// the input, which may be a real number.
var ErrBadNumber = errors.New("bad number")

// badNumberf wraps ErrBadNumber with a detail message.
func badNumberf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadNumber, fmt.Sprintf(format, args...))
}
