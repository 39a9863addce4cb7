package configs

import "errors"

// ErrDecode is wrapped by every error that Parse and Load return because the
// YAML itself could not be decoded: a syntax error, an unknown key, a value of
// the wrong type, or more than one document. The wrapped yaml.v3 message
// carries the line number.
var ErrDecode = errors.New("decoding config")

// ErrInvalid is wrapped by every problem that Validate reports, so
// errors.Is(err, ErrInvalid) holds for the error that Validate, Parse and Load
// return when the file decoded but its values are wrong.
var ErrInvalid = errors.New("invalid config")

// FieldError is one validation problem. Validate joins one FieldError per
// problem with errors.Join; use errors.As on a single problem, or walk
// Unwrap() []error on the joined error, to get at them.
type FieldError struct {
	// Path is the key path of the offending value, as it would be written in
	// the YAML file, e.g. "carriers[1].sip.address".
	Path string
	// Msg says what is wrong, e.g. "missing port".
	Msg string
}

// Error returns "path: msg", e.g. "carriers[1].sip.address: missing port".
func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }
