package sip

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/veilgw/veil/routing"
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
// replaces message text by its length, logs sipgo's parse failures (any
// datagram that is not SIP, which anyone can send) at warning level
// rather than error, and lets at most sipgoLogBurst records a second
// through, so that a flood of junk does not flood the log; it says how
// many it dropped.
type redactHandler struct {
	inner slog.Handler
	limit *rateLimit
}

// sipgoLogBurst is how many sipgo records above debug level are logged
// per second at most.
const sipgoLogBurst = 20

// rateLimit counts records per second, shared by a handler and those
// derived from it.
type rateLimit struct {
	burst   int // records a second; 0 means sipgoLogBurst
	mu      sync.Mutex
	second  int64
	n       int
	dropped int
}

// allow reports whether a record may be logged now, and how many were
// dropped in the previous second when this is the first of a new one.
func (r *rateLimit) allow(now time.Time) (ok bool, droppedBefore int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.second {
		r.second, r.n, droppedBefore, r.dropped = sec, 0, r.dropped, 0
	}
	burst := r.burst
	if burst <= 0 {
		burst = sipgoLogBurst
	}
	if r.n >= burst {
		r.dropped++
		return false, droppedBefore
	}
	r.n++
	return true, droppedBefore
}

func newSipgoLogger(log *slog.Logger) *slog.Logger {
	return slog.New(redactHandler{inner: log.Handler(), limit: &rateLimit{}}).With("component", "sipgo")
}

// SipgoLogger returns the logger sipgo's own package-level logging should
// use (main passes it to sipgo's SetDefaultLogger): the same redaction and
// rate limit as the Server's.
func SipgoLogger(log *slog.Logger) *slog.Logger { return newSipgoLogger(log) }

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level <= slog.LevelDebug {
		return h.inner.Handle(ctx, r)
	}
	ok, dropped := h.limit.allow(time.Now())
	if dropped > 0 {
		rec := slog.NewRecord(time.Now(), slog.LevelWarn, "sipgo log lines dropped (rate limit)", 0)
		rec.AddAttrs(slog.Int("dropped", dropped), slog.Int("per_second", sipgoLogBurst))
		_ = h.inner.Handle(ctx, rec)
	}
	if !ok {
		return nil
	}
	level := r.Level
	if r.Message == "failed to parse" && level > slog.LevelWarn {
		level = slog.LevelWarn
	}
	out := slog.NewRecord(r.Time, level, maskDigits(r.Message), r.PC)
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
	return redactHandler{inner: h.inner.WithAttrs(red), limit: h.limit}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{inner: h.inner.WithGroup(name), limit: h.limit}
}

// digitRun is what may be a phone number in sipgo's text: six digits or
// more in a row, with an optional leading +. sipgo quotes numbers in its
// error strings (a Request-URI, a start line, a header value it could not
// parse).
var digitRun = regexp.MustCompile(`\+?[0-9]{6,}`)

// maskDigits masks every digit run in s as Veil's own logs mask numbers
// (routing.Mask, "+1***101"); a run without + keeps its first digit and
// last three ("1***101"), and one of fewer than ten digits is "***".
func maskDigits(s string) string {
	if !digitRun.MatchString(s) {
		return s
	}
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		digits := strings.TrimPrefix(run, "+")
		switch {
		case len(digits) < 10:
			return "***"
		case run[0] == '+':
			return routing.Mask(run)
		default:
			return run[:1] + "***" + run[len(run)-3:]
		}
	})
}

// redactAttr replaces the value of a sensitive attribute by its length
// and masks digit runs in any other attribute's text: strings, errors,
// Stringers and groups.
func redactAttr(a slog.Attr) slog.Attr {
	if !sipgoSensitive[a.Key] {
		return maskAttr(a)
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

// maskAttr masks digit runs in the text of an attribute. Numbers, times
// and durations pass as they are; other values are masked as they would
// be printed.
func maskAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, maskDigits(v.String()))
	case slog.KindGroup:
		group := v.Group()
		out := make([]any, len(group))
		for i, g := range group {
			out[i] = redactAttr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case nil:
			return a
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			text = fmt.Sprint(x)
		}
		if masked := maskDigits(text); masked != text {
			return slog.String(a.Key, masked)
		}
		if _, ok := v.Any().(error); ok {
			return a
		}
		return slog.Attr{Key: a.Key, Value: v}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
