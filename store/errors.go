package store

import "errors"

// ErrNotFound is returned by Get when the key does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("store: closed")

// ErrSchema is returned by Open when the database was written by an
// incompatible version of Veil.
var ErrSchema = errors.New("store: unsupported schema version")
