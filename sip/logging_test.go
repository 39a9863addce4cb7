package sip

import (
	"bytes"
	"log/slog"
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
