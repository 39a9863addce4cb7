package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// startGuardedServer starts a Server with one TCP listener and the given
// TCP options.
func startGuardedServer(t *testing.T, maxConns int, idle time.Duration, m *Metrics) (*Server, string) {
	t.Helper()
	s, err := NewServer(ServerOptions{
		Listen:         []string{"tcp://127.0.0.1:0"},
		Handler:        CallHandlerFunc(func(_ context.Context, c *InboundCall) { _ = c.Respond(486, "Busy Here") }),
		Logger:         slog.New(slog.DiscardHandler),
		MaxTCPConns:    maxConns,
		TCPIdleTimeout: idle,
		Metrics:        m,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testWait):
			t.Error("Serve did not return after Close")
		}
	})
	return s, strings.TrimPrefix(s.Addrs()[0], "tcp://")
}

// rawOptions sends an OPTIONS on conn and returns the status line of the
// answer.
func rawOptions(t *testing.T, conn net.Conn, addr string) (string, error) {
	t.Helper()
	msg := strings.ReplaceAll(`OPTIONS sip:veil@`+addr+`;transport=tcp SIP/2.0
Via: SIP/2.0/TCP `+conn.LocalAddr().String()+`;branch=z9hG4bK-`+fmt.Sprint(time.Now().UnixNano())+`
From: <sip:ping@127.0.0.1>;tag=p1
To: <sip:veil@`+addr+`>
Call-ID: raw-`+fmt.Sprint(time.Now().UnixNano())+`
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

`, "\n", "\r\n")
	_ = conn.SetDeadline(time.Now().Add(testWait))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	// Skip keepalive pongs (CRLF, RFC 5626 §4.4.1) before the answer.
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		got = append(got, buf[:n]...)
		text := strings.TrimLeft(string(got), "\r\n")
		if line, _, ok := strings.Cut(text, "\r\n"); ok {
			return line, nil
		}
	}
}

// closedByPeer reports whether the server closed conn (a read ends with
// EOF or a reset) within testWait.
func closedByPeer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(testWait))
	_, err := conn.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// TestTCPConnectionCap: past sip.max_tcp_connections a connection is
// closed at once and counted; the connections within the cap and the
// server keep working, and a slot frees when a connection closes.
func TestTCPConnectionCap(t *testing.T) {
	const limit = 4
	m := NewMetrics(nil)
	s, addr := startGuardedServer(t, limit, time.Minute, m)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The held ones are accepted (answering proves it) before the extra.
	for i, c := range held {
		if line, err := rawOptions(t, c, addr); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("held conn %d: OPTIONS got %q, %v", i, line, err)
		}
	}
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(c) {
			t.Errorf("extra conn %d beyond the cap was not closed", i)
		}
		_ = c.Close()
	}
	var pb dto.Metric
	if err := m.tcpRefused.Write(&pb); err != nil || pb.GetCounter().GetValue() != 3 {
		t.Errorf("refused count = %v, want 3", pb.GetCounter().GetValue())
	}
	// Still serving on the held connections.
	if line, err := rawOptions(t, held[0], addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("after refusals: OPTIONS got %q, %v", line, err)
	}
	// A closed connection frees its slot.
	_ = held[len(held)-1].Close()
	held = held[:len(held)-1]
	deadline := time.Now().Add(testWait)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		line, err := rawOptions(t, c, addr)
		_ = c.Close()
		if err == nil && strings.Contains(line, "200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: OPTIONS got %q, %v (open %d)", line, err, s.tcp[0].(*tcpGuard).Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPIdleTimeout: a connection on which nothing arrives is closed
// after the idle timeout; one that keeps sending stays open.
func TestTCPIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	s, addr := startGuardedServer(t, 8, idle, nil)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	start := time.Now()
	// Keepalives (CRLF, RFC 5626 §3.5.1) on busy every idle/3 while silent
	// says nothing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(idle / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = busy.Write([]byte("\r\n\r\n"))
			}
		}
	})
	if !closedByPeer(silent) {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < idle-50*time.Millisecond {
		t.Errorf("idle connection closed after %v, before the %v timeout", d, idle)
	}
	time.Sleep(2 * idle)
	close(stop)
	wg.Wait()
	if line, err := rawOptions(t, busy, addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("connection with keepalives: OPTIONS got %q, %v", line, err)
	}
	deadline := time.Now().Add(testWait)
	for s.tcp[0].(*tcpGuard).Open() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("open connections = %d, want 1", s.tcp[0].(*tcpGuard).Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeListener fails Accept with errs, one per call, then hands out
// conns; it returns net.ErrClosed once closed.
type fakeListener struct {
	mu     sync.Mutex
	errs   []error
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *fakeListener) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

// TestTCPGuardRetriesAcceptErrors: EMFILE and the like are retried with
// a doubling backoff and warned about at most once a second, never
// returned; a permanent error and Close end Accept.
func TestTCPGuardRetriesAcceptErrors(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	enfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)}
	aborted := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	var errs []error
	for range 9 {
		errs = append(errs, emfile)
	}
	errs = append(errs, enfile, aborted)
	f := &fakeListener{errs: errs, conns: make(chan net.Conn, 1), closed: make(chan struct{})}
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	g := newTCPGuard(f, 4, time.Minute, log, nil)
	var slept []time.Duration
	g.sleep = func(d time.Duration, done <-chan struct{}) bool {
		slept = append(slept, d)
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	a, b := net.Pipe()
	defer b.Close()
	f.conns <- a
	c, err := g.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v; temporary errors must be retried", err)
	}
	if g.Open() != 1 {
		t.Errorf("open = %d, want 1", g.Open())
	}
	_ = c.Close()
	_ = c.Close() // idempotent: the slot is freed once
	if g.Open() != 0 {
		t.Errorf("open after Close = %d, want 0", g.Open())
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %d backoffs", slept, len(want))
	}
	for i, d := range slept {
		if d != want[i]*time.Millisecond {
			t.Errorf("backoff %d = %v, want %v", i, d, want[i]*time.Millisecond)
		}
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "sip tcp accept failed"); n < 1 || n > 2 {
		t.Errorf("%d accept warnings for %d failures, want 1 (rate limit):\n%s", n, len(errs), out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "too many open files") {
		t.Errorf("warning lacks level or cause:\n%s", out)
	}

	// A permanent error is returned.
	f.mu.Lock()
	f.errs = []error{errors.New("permanent")}
	f.mu.Unlock()
	if _, err := g.Accept(); err == nil || err.Error() != "permanent" {
		t.Errorf("Accept = %v, want the permanent error", err)
	}
	// Close ends an Accept waiting in backoff.
	f.mu.Lock()
	f.errs = []error{emfile}
	f.mu.Unlock()
	g.sleep = sleepOrDone
	_ = g.Close()
	if _, err := g.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

// TestServeSurvivesAcceptErrors: Serve does not return when a TCP
// listener's accept fails with EMFILE (before the guard, sipgo's accept
// loop returned it and veild exited).
func TestServeSurvivesAcceptErrors(t *testing.T) {
	s, err := NewServer(ServerOptions{
		Listen:  []string{"tcp://127.0.0.1:0"},
		Handler: CallHandlerFunc(func(_ context.Context, c *InboundCall) { _ = c.Respond(486, "Busy Here") }),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	g := s.tcp[0].(*tcpGuard)
	real := g.Listener
	f := &fakeListener{errs: []error{emfile, emfile, emfile}, conns: make(chan net.Conn), closed: make(chan struct{})}
	g.Listener = &errThenReal{fake: f, real: real}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	addr := strings.TrimPrefix(s.Addrs()[0], "tcp://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if line, err := rawOptions(t, c, addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("OPTIONS after accept errors got %q, %v", line, err)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v after accept errors", err)
	default:
	}
	_ = s.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// errThenReal fails Accept with fake's errors, then accepts on real.
type errThenReal struct {
	fake *fakeListener
	real net.Listener
}

func (e *errThenReal) Accept() (net.Conn, error) {
	e.fake.mu.Lock()
	if len(e.fake.errs) > 0 {
		err := e.fake.errs[0]
		e.fake.errs = e.fake.errs[1:]
		e.fake.mu.Unlock()
		return nil, err
	}
	e.fake.mu.Unlock()
	return e.real.Accept()
}

func (e *errThenReal) Close() error   { return e.real.Close() }
func (e *errThenReal) Addr() net.Addr { return e.real.Addr() }

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
