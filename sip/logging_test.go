package sip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSipgoLoggerRedactsMessageText(t *testing.T) {
	const secret = "INVITE sip:+15550100102@carrier SIP/2.0\r\nFrom: <sip:+15550100101@x>"
	for _, tc := range []struct {
		level     slog.Level
		wantShown bool
	}{
		{slog.LevelInfo, false},
		{slog.LevelDebug, true},
	} {
		var buf bytes.Buffer
		log := newSipgoLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})))
		log.Error("failed to parse", "data", secret, "error", "bad start line")
		log.With("req", secret).Warn("Server tx failed to handle request")
		log.Debug("debug only", "data", secret)
		out := buf.String()
		if got := strings.Contains(out, "+15550100101"); got != tc.wantShown {
			t.Errorf("level %v: number shown = %v, want %v; log:\n%s", tc.level, got, tc.wantShown, out)
		}
		if !tc.wantShown {
			if !strings.Contains(out, "level=WARN msg=\"failed to parse\"") {
				t.Errorf("parse failure not demoted to warning:\n%s", out)
			}
			if !strings.Contains(out, "bytes, shown at debug level") || !strings.Contains(out, "bad start line") {
				t.Errorf("redacted record lost its shape:\n%s", out)
			}
		}
	}
}

func TestSipgoLoggerRateLimit(t *testing.T) {
	var buf bytes.Buffer
	log := newSipgoLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 5 * sipgoLogBurst {
		log.Error("failed to parse", "data", "junk")
	}
	if n := strings.Count(buf.String(), "failed to parse"); n < 1 || n > 2*sipgoLogBurst {
		t.Errorf("%d of %d junk records logged; want at most %d a second", n, 5*sipgoLogBurst, sipgoLogBurst)
	}
}

func TestRateLimitReportsDrops(t *testing.T) {
	var r rateLimit
	t0 := time.Unix(1000, 0)
	for i := range sipgoLogBurst + 3 {
		ok, _ := r.allow(t0)
		if ok != (i < sipgoLogBurst) {
			t.Fatalf("record %d: allowed %v", i, ok)
		}
	}
	if ok, dropped := r.allow(t0.Add(time.Second)); !ok || dropped != 3 {
		t.Errorf("next second: allowed %v, dropped before %d, want true 3", ok, dropped)
	}
}

// TestSipgoLoggerMasksDigitRuns: sipgo quotes numbers in its messages and
// error strings; above debug level every run of six digits or more is
// masked, in the message and every attribute.
func TestSipgoLoggerMasksDigitRuns(t *testing.T) {
	var buf bytes.Buffer
	log := newSipgoLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Error("Server tx failed to handle request",
		"error", fmt.Errorf("make key failed: %w", errors.New("'Via' header not found ... Recipient=sip:+15550100101@127.0.0.1")))
	log.Warn("transmission beginning '+15550100101 is calling' is not a SIP message")
	log.Warn("failed to parse", "error", &strconv.NumError{Func: "ParseUint", Num: "15550100101x", Err: strconv.ErrSyntax})
	log.With("peer", "sip:15550100101@h").Warn("stringer", "uri", stringer("tel:+15550100101"), "port", 5060,
		slog.Group("g", "n", "+15550100101"))
	out := buf.String()
	if strings.Contains(out, "5550100") || strings.Contains(out, "0100101") {
		t.Errorf("a number is logged in full:\n%s", out)
	}
	for _, want := range []string{
		"Recipient=sip:+1***101@127.0.0.1", "'+1***101 is calling'", `parsing \"1***101x\"`,
		"make key failed", "port=5060", "level=ERROR", "tel:+1***101",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d lines, want 4:\n%s", n, out)
	}

	// At debug level sipgo's records are kept as they are.
	buf.Reset()
	log = newSipgoLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.Debug("transmission beginning '+15550100101 is calling' is not a SIP message")
	if !strings.Contains(buf.String(), "+15550100101") {
		t.Errorf("debug record masked:\n%s", buf.String())
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestMaskDigits(t *testing.T) {
	for in, want := range map[string]string{
		"+15550100101":           "+1***101",
		"+447700900123":          "+44***123",
		"15550100101":            "1***101",
		"a 123456 b":             "a *** b",
		"port 5060, 127.0.0.1":   "port 5060, 127.0.0.1",
		"x+15550100101@y;z=1234": "x+1***101@y;z=1234",
	} {
		if got := maskDigits(in); got != want {
			t.Errorf("maskDigits(%q) = %q, want %q", in, got, want)
		}
	}
}
