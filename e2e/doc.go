// Package e2e holds end-to-end tests that build and start the real veild
// binary and talk to it only through its public surfaces (admin API, CLI,
// signals, and later SIP and SMPP peers), all on loopback.
package e2e
