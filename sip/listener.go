package sip

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of the TCP listener guard (sip.max_tcp_connections,
// sip.tcp_idle_timeout) for a Server built without them.
const (
	DefaultMaxTCPConns    = 1024
	DefaultTCPIdleTimeout = 5 * time.Minute
)

// Backoff of a TCP listener whose accept fails with a temporary error
// (out of file descriptors, for one): it doubles from the first to the
// last, and starts over after a successful accept.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// tcpGuard wraps the TCP net.Listener Veil hands to sipgo. sipgo's accept
// loop returns on the first accept error, and anyone who can reach the
// port can make accept fail (EMFILE, by opening connections until the
// process runs out of files), so the guard:
//
//   - retries temporary accept errors with a backoff instead of
//     returning them (and warns, at most once a second);
//   - caps the connections open at once: past the cap a connection is
//     accepted and closed at once, and counted;
//   - closes a connection on which nothing arrived for the idle timeout
//     (carriers keep TCP trunks open with keepalives, which refresh it).
//
// Accept returns only when the listener is closed (net.ErrClosed) or on
// an error that is not temporary.
type tcpGuard struct {
	net.Listener
	max     int
	idle    time.Duration
	log     *slog.Logger
	metrics *Metrics

	open    atomic.Int64 // connections accepted and not yet closed
	logs    rateLimit    // warnings: once a second
	done    chan struct{}
	closeMu sync.Once
	sleep   func(d time.Duration, done <-chan struct{}) bool // test hook
}

func newTCPGuard(l net.Listener, maxConns int, idle time.Duration, log *slog.Logger, m *Metrics) *tcpGuard {
	if maxConns <= 0 {
		maxConns = DefaultMaxTCPConns
	}
	if idle <= 0 {
		idle = DefaultTCPIdleTimeout
	}
	return &tcpGuard{
		Listener: l, max: maxConns, idle: idle, log: log, metrics: m,
		logs: rateLimit{burst: 1}, done: make(chan struct{}), sleep: sleepOrDone,
	}
}

// sleepOrDone waits d; false if done was closed first.
func sleepOrDone(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// Accept returns the next connection within the cap, wrapped with the
// idle timeout.
func (g *tcpGuard) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !temporaryAcceptError(err) {
				return nil, err
			}
			select {
			case <-g.done:
				return nil, fmt.Errorf("accept: %w", net.ErrClosed)
			default:
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			g.warn("sip tcp accept failed: retrying", "addr", g.Addr().String(), "error", err, "retry_in", backoff)
			if !g.sleep(backoff, g.done) {
				return nil, fmt.Errorf("accept: %w", net.ErrClosed)
			}
			continue
		}
		backoff = 0
		if g.open.Add(1) > int64(g.max) {
			g.open.Add(-1)
			_ = c.Close()
			if g.metrics != nil && g.metrics.tcpRefused != nil {
				g.metrics.tcpRefused.Inc()
			}
			g.warn("sip tcp connection refused: sip.max_tcp_connections open", "addr", g.Addr().String(), "max_tcp_connections", g.max)
			continue
		}
		return &idleConn{Conn: c, idle: g.idle, guard: g}, nil
	}
}

// Close closes the listener and ends a backoff in progress.
func (g *tcpGuard) Close() error {
	g.closeMu.Do(func() { close(g.done) })
	return g.Listener.Close()
}

// Open returns how many accepted connections are open.
func (g *tcpGuard) Open() int { return int(g.open.Load()) }

// warn logs at most once a second, saying how many it held back.
func (g *tcpGuard) warn(msg string, args ...any) {
	ok, dropped := g.logs.allow(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	g.log.Warn(msg, args...)
}

// temporaryAcceptError reports whether accept may succeed if tried again:
// out of files or memory, or a connection gone before it was accepted.
func temporaryAcceptError(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
			syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var tmp interface{ Temporary() bool }
	return errors.As(err, &tmp) && tmp.Temporary()
}

// idleConn is an accepted connection closed when nothing arrives for
// idle: each Read sets the deadline anew. A Read that times out returns
// io.EOF-wrapped error (sipgo then drops the connection quietly, as when
// the peer closes it). Close is idempotent and frees the guard's slot.
type idleConn struct {
	net.Conn
	idle  time.Duration
	guard *tcpGuard
	once  sync.Once
}

// errIdle is returned by Read when the connection was idle too long.
var errIdle = fmt.Errorf("sip tcp connection idle beyond sip.tcp_idle_timeout: %w", io.EOF)

func (c *idleConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = c.Close()
		return n, errIdle
	}
	return n, err
}

func (c *idleConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.guard.open.Add(-1)
	})
	if errors.Is(err, net.ErrClosed) {
		return nil // closed before: by the idle timeout or a second Close
	}
	return err
}
