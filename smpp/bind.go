package smpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
	"golang.org/x/time/rate"

	"github.com/veilgw/veil/configs"
)

// partJob is one short message of an outbound message, waiting for a
// submit or in flight.
type partJob struct {
	m        *outMsg
	idx      int
	attempts int
}

// inflight is a submitted part awaiting its submit_sm_resp.
type inflight struct {
	job    *partJob
	gen    int // the link generation it was sent on
	sentAt time.Time
}

// bind is one carrier's SMPP bind: its owner goroutine (run) connects,
// binds, submits queued parts within the window and rate, and reconnects
// with backoff; one reader goroutine per link hands what the SMSC sends
// to the service.
type bind struct {
	s        *Service
	name     string
	cfg      configs.CarrierSMPP
	password string
	log      *slog.Logger
	limiter  *rate.Limiter // nil: unlimited
	tlsConf  *tls.Config   // nil: plain TCP

	wake chan struct{} // size 1: parts queued or window freed

	mu       sync.Mutex
	fifo     []*partJob
	inflight map[int32]*inflight
	// pending counts answered parts whose outcome is not on disk yet;
	// with inflight it fills the window, so at most Window parts of a bind
	// are ever submitted without their acceptance on disk (the duplicates
	// a crash can cause).
	pending    int
	gen        int
	tx         *link // the link submits go on, while bound
	state      string
	since      time.Time
	lastErr    string
	reconnects int
	bound      int // binds made
	closed     bool
	// pauseUntil stops submits after the SMSC said it is throttling or
	// its queue is full: the whole bind slows down, not only the refused
	// part. throttleRun counts such answers since the last acceptance
	// (the pause doubles with it); wakeArmed says a timer will signal
	// the owner when the pause ends.
	pauseUntil  time.Time
	throttleRun int
	wakeArmed   bool
}

func newBind(s *Service, c configs.Carrier) (*bind, error) {
	b := &bind{
		s:        s,
		name:     c.Name,
		cfg:      *c.SMPP,
		password: c.SMPP.Password(),
		log:      s.log.With("carrier", c.Name),
		wake:     make(chan struct{}, 1),
		inflight: make(map[int32]*inflight),
		state:    BindDown,
		since:    s.now(),
	}
	if env := c.SMPP.PasswordEnv; env != "" {
		if _, ok := os.LookupEnv(env); !ok {
			b.log.Warn("the smpp password variable is not set: binding with an empty password", "password_env", env)
		}
	}
	if n := len(b.password); n > 8 || len(c.SMPP.SystemID) > 15 {
		// SMPP 3.4 §5.2.1-2: password at most 8 characters, system_id
		// at most 15. Some SMSCs take longer ones, others cut or refuse
		// them: say so once, never the password itself.
		b.log.Warn("smpp credentials longer than SMPP 3.4 allows (password 8, system_id 15): the SMSC may refuse the bind",
			"password_chars", n, "system_id_chars", len(c.SMPP.SystemID))
	}
	if c.SMPP.TPS > 0 {
		b.limiter = rate.NewLimiter(rate.Limit(c.SMPP.TPS), max(1, c.SMPP.TPS/10))
	}
	if c.SMPP.TLS {
		conf, err := clientTLS(c.SMPP)
		if err != nil {
			return nil, fmt.Errorf("carrier %s: %w", c.Name, err)
		}
		b.tlsConf = conf
	}
	return b, nil
}

// clientTLS is the TLS configuration of a bind: the SMSC's certificate is
// checked against the system roots, or only the CAs of cfg.TLSCA, and
// against the host (name or IP address) of cfg.Address.
func clientTLS(cfg *configs.CarrierSMPP) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("smpp address %q: %w", cfg.Address, err)
	}
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("reading smpp tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smpp tls_ca %s: %w", cfg.TLSCA, ErrNoCACert)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func (b *bind) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// enqueue adds parts to the back of the queue (front: resubmits).
func (b *bind) enqueue(front bool, jobs ...*partJob) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if front {
		b.fifo = append(append(make([]*partJob, 0, len(jobs)+len(b.fifo)), jobs...), b.fifo...)
	} else {
		b.fifo = append(b.fifo, jobs...)
	}
	b.mu.Unlock()
	b.signal()
}

func (b *bind) setState(st string, err error) {
	b.mu.Lock()
	if b.state != st {
		b.state, b.since = st, b.s.now()
	}
	if err != nil {
		b.lastErr = err.Error()
	} else if st == BindBound {
		b.lastErr = "" // what kept it down is over
	}
	b.mu.Unlock()
	b.s.metrics.bindUp.WithLabelValues(b.name).Set(boolFloat(st == BindBound))
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func (b *bind) status() BindStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BindStatus{
		Carrier: b.name, Address: b.cfg.Address, BindType: b.cfg.BindType,
		State: b.state, Since: b.since, Window: b.cfg.Window, InFlight: len(b.inflight) + b.pending,
		Queued: len(b.fifo), Reconnects: b.reconnects, LastError: b.lastErr,
	}
	if until := b.pauseUntil; time.Now().Before(until) {
		st.PausedUntil = &until
	}
	return st
}

// run owns the bind until ctx ends: connect, serve, back off, again.
func (b *bind) run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		b.setState(BindConnecting, nil)
		links, err := b.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			b.setState(BindDown, err)
			b.log.Warn("smpp bind failed", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		b.mu.Lock()
		if b.bound > 0 {
			b.reconnects++
		}
		b.bound++
		b.mu.Unlock()
		b.setState(BindBound, nil)
		b.log.Info("smpp bound", "bind_type", b.cfg.BindType)
		err = b.serve(ctx, links)
		if ctx.Err() == nil {
			b.setState(BindDown, err)
			b.log.Warn("smpp bind lost", "error", err)
		}
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.setState(BindStopped, nil)
}

// connect makes the bind's links: one transceiver, or a transmitter then
// a receiver.
func (b *bind) connect(ctx context.Context) ([]*link, error) {
	dial := func(kind pdu.BindingType) (*link, error) {
		return dialLink(ctx, b.cfg.Address, b.tlsConf, kind, b.cfg.SystemID, b.password, 10*time.Second)
	}
	if b.cfg.BindType != "transmitter_receiver" {
		l, err := dial(pdu.Transceiver)
		if err != nil {
			return nil, err
		}
		return []*link{l}, nil
	}
	tx, err := dial(pdu.Transmitter)
	if err != nil {
		return nil, err
	}
	rx, err := dial(pdu.Receiver)
	if err != nil {
		tx.close()
		return nil, err
	}
	return []*link{tx, rx}, nil
}

// serve runs bound links until one fails or ctx ends. links[0] carries
// the submits.
func (b *bind) serve(ctx context.Context, links []*link) error {
	b.mu.Lock()
	b.gen++
	gen := b.gen
	b.tx = links[0]
	b.mu.Unlock()

	dead := make(chan error, len(links))
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Go(func() { dead <- b.read(gen, l) })
	}
	defer func() {
		for _, l := range links {
			l.close()
		}
		wg.Wait()
		b.requeueInflight()
	}()

	interval := b.cfg.EnquireLink
	tick := time.NewTicker(min(interval, time.Second))
	defer tick.Stop()
	lastEnquire := time.Now()
	for {
		if err := b.submitReady(ctx, gen, links[0]); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			b.drain(links, dead)
			return ctx.Err()
		case err := <-dead:
			return err
		case <-b.wake:
		case now := <-tick.C:
			b.expireInflight(now)
			for _, l := range links {
				idle := now.Sub(time.Unix(0, l.lastRead.Load()))
				if idle > 3*interval {
					return fmt.Errorf("no PDU from the SMSC for %s", idle.Round(time.Second))
				}
				if idle > interval && now.Sub(lastEnquire) > interval {
					if _, err := l.send(pdu.NewEnquireLink()); err != nil {
						return fmt.Errorf("enquire_link: %w", err)
					}
				}
			}
			if now.Sub(lastEnquire) > interval {
				lastEnquire = now
			}
		}
	}
}

// submitReady submits queued parts while the window has room and the
// bind is not paused. The submits of a burst go out in one write: the
// link is flushed once the burst ends (window full, queue empty, paused)
// and before waiting on the rate limiter, so none waits in the buffer.
func (b *bind) submitReady(ctx context.Context, gen int, l *link) error {
	err := b.submitBurst(ctx, gen, l)
	if ferr := l.flush(); ferr != nil && err == nil {
		err = fmt.Errorf("writing submit_sm: %w", ferr)
	}
	return err
}

// submitBurst queues submits on l until one of submitReady's ends; the
// caller flushes.
func (b *bind) submitBurst(ctx context.Context, gen int, l *link) error {
	for {
		b.mu.Lock()
		if len(b.fifo) == 0 || len(b.inflight)+b.pending >= b.cfg.Window {
			b.mu.Unlock()
			return nil
		}
		if wait := time.Until(b.pauseUntil); wait > 0 {
			if !b.wakeArmed {
				b.wakeArmed = true
				time.AfterFunc(wait, func() {
					b.mu.Lock()
					b.wakeArmed = false
					b.mu.Unlock()
					b.signal()
				})
			}
			b.mu.Unlock()
			return nil
		}
		job := b.fifo[0]
		b.fifo[0] = nil
		b.fifo = b.fifo[1:]
		b.mu.Unlock()
		if job.m.cancelled.Load() {
			continue
		}
		if b.limiter != nil {
			// Only this goroutine takes tokens, and they only grow with
			// time: below one, Wait sleeps, so what is queued goes first.
			if b.limiter.Tokens() < 1 {
				if err := l.flush(); err != nil {
					b.enqueue(true, job)
					return fmt.Errorf("writing submit_sm: %w", err)
				}
			}
			if err := b.limiter.Wait(ctx); err != nil {
				b.enqueue(true, job)
				return nil
			}
		}
		p := job.m.submitPDU(job.idx)
		seq := l.nextSeq()
		p.SetSequenceNumber(seq)
		b.mu.Lock()
		b.inflight[seq] = &inflight{job: job, gen: gen, sentAt: time.Now()}
		b.mu.Unlock()
		if err := l.queue(p); err != nil {
			return fmt.Errorf("writing submit_sm: %w", err)
		}
		b.s.metrics.submits.WithLabelValues(b.name).Inc()
	}
}

// takeInflight removes and returns the part submitted as seq on link
// generation gen, or nil.
func (b *bind) takeInflight(gen int, seq int32) *partJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.inflight[seq]
	if f == nil || f.gen != gen {
		return nil
	}
	delete(b.inflight, seq)
	b.pending++
	return f.job
}

// requeueInflight puts every unanswered part back at the front: the link
// is gone, so they are submitted again on the next (at-least-once).
func (b *bind) requeueInflight() {
	b.mu.Lock()
	jobs := make([]*partJob, 0, len(b.inflight))
	for seq, f := range b.inflight {
		jobs = append(jobs, f.job)
		delete(b.inflight, seq)
	}
	b.tx = nil
	b.mu.Unlock()
	if len(jobs) > 0 {
		b.enqueue(true, jobs...)
	}
}

// expireInflight resubmits parts whose response is overdue.
func (b *bind) expireInflight(now time.Time) {
	b.mu.Lock()
	var late []*partJob
	for seq, f := range b.inflight {
		if now.Sub(f.sentAt) > b.s.opts.SMS.SubmitTimeout {
			late = append(late, f.job)
			delete(b.inflight, seq)
		}
	}
	b.mu.Unlock()
	if len(late) > 0 {
		b.log.Warn("submit_sm responses overdue: submitting again", "parts", len(late))
		b.enqueue(true, late...)
	}
}

// read is a link's reader goroutine.
func (b *bind) read(gen int, l *link) error {
	for {
		h, p, err := l.read()
		if err != nil {
			if errors.Is(err, errFraming) {
				_ = l.genericNack(h.SequenceNumber, data.ESME_RINVCMDLEN)
			}
			return err
		}
		if p == nil {
			// Undecodable: SMPP 3.4 §4.3 generic_nack, and go on.
			b.s.metrics.nacks.WithLabelValues(b.name).Inc()
			st := data.ESME_RINVCMDID
			if _, err := pdu.CreatePDUFromCmdID(h.CommandID); err == nil {
				st = data.ESME_RSYSERR
			}
			if err := l.genericNack(h.SequenceNumber, st); err != nil {
				return err
			}
			continue
		}
		switch p := p.(type) {
		case *pdu.SubmitSMResp:
			if job := b.takeInflight(gen, p.SequenceNumber); job != nil {
				b.s.submitted(b, job, p.CommandStatus, p.MessageID)
			}
		case *pdu.GenericNack:
			if job := b.takeInflight(gen, p.SequenceNumber); job != nil {
				b.s.submitted(b, job, data.ESME_RSYSERR, "")
			}
		case *pdu.DeliverSM:
			b.s.delivered(b, l, p)
		case *pdu.EnquireLink:
			if err := l.write(p.GetResponse()); err != nil {
				return err
			}
		case *pdu.Unbind:
			_ = l.write(p.GetResponse())
			return errors.New("the SMSC unbound")
		case *pdu.UnbindResp:
			return errUnbound // the answer to ours: the bind is stopping
		case *pdu.EnquireLinkResp:
		default:
			if p.CanResponse() {
				if err := l.genericNack(p.GetSequenceNumber(), data.ESME_RINVCMDID); err != nil {
					return err
				}
			}
		}
	}
}

// errUnbound ends a link's reader when the SMSC answers Veil's unbind.
var errUnbound = errors.New("unbound")

// drainGrace bounds how long a stopping bind waits for the responses to
// its submits in flight (and for their outcome to reach the disk).
const drainGrace = 2 * time.Second

// drain ends a bind that is stopping: no new submits; the responses to
// those in flight are awaited (within drainGrace) so that a clean stop
// does not submit them again on the next start (a duplicate for the
// recipient); then unbind, and a short wait for the SMSC to close.
func (b *bind) drain(links []*link, dead <-chan error) {
	grace := time.NewTimer(drainGrace)
	defer grace.Stop()
	outstanding := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.inflight) + b.pending
	}
wait:
	for outstanding() > 0 {
		select {
		case <-b.wake:
		case <-dead:
			return // the link is gone: nothing more will be answered
		case <-grace.C:
			break wait
		}
	}
	for _, l := range links {
		_, _ = l.send(pdu.NewUnbind())
	}
	unbound := time.NewTimer(time.Second)
	defer unbound.Stop()
	select {
	case <-dead: // the SMSC answered unbind_resp and closed
	case <-unbound.C:
	}
}

// throttled pauses the bind's submits after a throttling answer
// (ESME_RTHROTTLED, ESME_RMSGQFUL): 100 ms, doubling with each episode
// until a part is accepted, at most max. Answers that come while the bind
// is already paused are the rest of the same window, submitted before the
// pause: they belong to the episode and do not lengthen it (a window of
// 50 refused at once is one 100 ms pause, not 50 doublings).
func (b *bind) throttled(max time.Duration) {
	b.throttledAt(time.Now(), max)
}

func (b *bind) throttledAt(now time.Time, max time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.pauseUntil) {
		return
	}
	pause := min(100*time.Millisecond<<min(b.throttleRun, 12), max)
	b.throttleRun++
	b.pauseUntil = now.Add(pause)
}

// accepted ends a run of throttling answers.
func (b *bind) accepted() {
	b.mu.Lock()
	b.throttleRun = 0
	b.mu.Unlock()
}

// windowFreed is called once a response's outcome is on disk.
func (b *bind) windowFreed() { b.windowFreedN(1) }

// windowFreedN frees n slots at once (the parts of one commit batch).
func (b *bind) windowFreedN(n int) {
	b.mu.Lock()
	b.pending -= n
	b.mu.Unlock()
	b.signal()
}
