package sip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
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
