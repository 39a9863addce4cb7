package sip

import (
	"context"
	"fmt"
	"log/slog"
)

// sipgoSensitive are the attribute keys under which sipgo logs message
// text: a whole unparseable datagram ("data"), a request's start line with
// its Request-URI ("req"), a message ("msg", "res"). Message text holds
// real phone numbers and peers' addresses, which Veil logs only at debug
// level.
var sipgoSensitive = map[string]bool{
	"data": true, "req": true, "res": true, "msg": true,
	"request": true, "response": true, "message": true,
}

// redactHandler is the handler of sipgo's logger: above debug level it
// replaces message text by its length, and it logs sipgo's parse failures
// (any datagram that is not SIP, which anyone can send) at warning level
// rather than error.
type redactHandler struct {
	inner slog.Handler
}

func newSipgoLogger(log *slog.Logger) *slog.Logger {
	return slog.New(redactHandler{log.Handler()}).With("component", "sipgo")
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level <= slog.LevelDebug {
		return h.inner.Handle(ctx, r)
	}
	level := r.Level
	if r.Message == "failed to parse" && level > slog.LevelWarn {
		level = slog.LevelWarn
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return redactHandler{h.inner.WithAttrs(red)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.inner.WithGroup(name)}
}

// redactAttr replaces the value of a sensitive attribute by its length.
func redactAttr(a slog.Attr) slog.Attr {
	if !sipgoSensitive[a.Key] {
		return a
	}
	v := a.Value.Resolve()
	n := len(v.String())
	if v.Kind() == slog.KindAny {
		if s, ok := v.Any().(fmt.Stringer); ok {
			n = len(s.String())
		}
	}
	return slog.String(a.Key, fmt.Sprintf("[%d bytes, shown at debug level]", n))
}
