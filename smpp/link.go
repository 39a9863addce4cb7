package smpp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// maxPDU bounds a PDU read from an SMSC. SMPP 3.4 sets no limit; a
// message_payload of 64 KiB plus the rest fits.
const maxPDU = 70 << 10

// errFraming is a PDU whose length cannot be trusted: the stream is lost
// and the link must be dropped (after a generic_nack).
var errFraming = errors.New("smpp: bad command_length")

// link is one SMPP session over one TCP (or TLS) connection: gosmpp
// encodes and decodes the PDUs, the link frames them, numbers the
// requests and writes under a lock. Reading is done by one goroutine
// (read); writes may come from any.
type link struct {
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	bw  *bufio.Writer
	// werr is the first failed write (under wmu): it closed nc, and the
	// reader reports it rather than the closed connection.
	werr error
	seq  atomic.Int32
	// lastRead is the unix nanosecond of the last PDU read (liveness).
	lastRead atomic.Int64
}

// dialLink connects to addr (TLS when tlsConf is not nil) and binds as
// kind. A failed bind is an error naming the status, never the password.
func dialLink(ctx context.Context, addr string, tlsConf *tls.Config, kind pdu.BindingType, systemID, password string, timeout time.Duration) (*link, error) {
	d := net.Dialer{Timeout: timeout}
	var nc net.Conn
	var err error
	if tlsConf != nil {
		nc, err = (&tls.Dialer{NetDialer: &d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	l := &link{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	l.lastRead.Store(time.Now().UnixNano())
	req := pdu.NewBindRequest(kind)
	req.SystemID, req.Password = systemID, password
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := l.send(req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending bind to %s: %w", addr, err)
	}
	// The answer to a bind is the first PDU; an SMSC may send nothing
	// else before it (SMPP 3.4 §2.2).
	for {
		h, p, err := l.read()
		if err != nil {
			nc.Close()
			// The header was read (the status is there) but not the
			// rest: a connection closed after a negative response.
			if h.CommandStatus != 0 {
				return nil, fmt.Errorf("bind to %s refused: %v", addr, h.CommandStatus)
			}
			return nil, fmt.Errorf("reading bind response from %s: %w", addr, err)
		}
		if p == nil {
			// gosmpp v0.3.1 cannot decode a header-only negative bind
			// response (SMPP 3.4 §4.1.2 allows it); read sees a PDU it
			// could not decode and returns the header alone.
			switch h.CommandID {
			case data.BIND_TRANSCEIVER_RESP, data.BIND_TRANSMITTER_RESP, data.BIND_RECEIVER_RESP:
				nc.Close()
				if h.CommandStatus != data.ESME_ROK {
					return nil, fmt.Errorf("bind to %s refused: %v", addr, h.CommandStatus)
				}
				return nil, fmt.Errorf("unreadable bind response from %s", addr)
			}
			continue
		}
		if _, ok := p.(*pdu.BindResp); !ok {
			continue // e.g. an early enquire_link; not answered before the bind
		}
		if h.CommandStatus != data.ESME_ROK {
			nc.Close()
			return nil, fmt.Errorf("bind to %s refused: %v", addr, h.CommandStatus)
		}
		break
	}
	_ = nc.SetDeadline(time.Time{})
	return l, nil
}

// nextSeq numbers a request (SMPP 3.4 §5.1.4: 1 to 0x7FFFFFFF).
func (l *link) nextSeq() int32 {
	for {
		v := l.seq.Add(1)
		if v > 0 {
			return v
		}
		l.seq.CompareAndSwap(v, 0)
	}
}

// send numbers a request, writes it and flushes; it returns the number.
func (l *link) send(p pdu.PDU) (int32, error) {
	seq := l.nextSeq()
	p.SetSequenceNumber(seq)
	return seq, l.write(p)
}

// writeTimeout bounds one write to the connection: an SMSC that stops
// reading for that long loses the link.
const writeTimeout = 10 * time.Second

// write writes p as it is (responses keep the request's number) and
// flushes what the link holds: for the PDUs that go alone (bind,
// enquire_link and its response, unbind, generic_nack).
func (l *link) write(p pdu.PDU) error {
	b := marshalPDU(p)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.bufferLocked(b); err != nil {
		return err
	}
	return l.flushLocked()
}

// queue writes p into the link's buffer without flushing: the PDUs of a
// burst (submit_sm, and the deliver_sm_resps of a commit batch) go out
// in one write. Whoever queues must call flush once its burst ends,
// before it waits for anything: nothing else flushes for it.
func (l *link) queue(p pdu.PDU) error {
	b := marshalPDU(p)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.bufferLocked(b)
}

// flush writes what the link holds, if anything.
func (l *link) flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.flushLocked()
}

func marshalPDU(p pdu.PDU) []byte {
	buf := pdu.NewBuffer(make([]byte, 0, 256))
	p.Marshal(buf)
	return buf.Bytes()
}

// bufferLocked (wmu held) adds b to the buffer. A failed write closes the
// connection: the reader then fails and the bind's owner drops the link
// and requeues what was in flight, whichever goroutine wrote.
func (l *link) bufferLocked(b []byte) error {
	if len(b) > l.bw.Available() {
		// bufio writes to the connection now: bound it.
		_ = l.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	}
	if _, err := l.bw.Write(b); err != nil {
		l.writeFailed(err)
		return err
	}
	return nil
}

// flushLocked (wmu held) flushes the buffer; see bufferLocked for errors.
func (l *link) flushLocked() error {
	if l.bw.Buffered() == 0 {
		return l.bw.Flush() // nil, or the error of an earlier write
	}
	_ = l.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := l.bw.Flush(); err != nil {
		l.writeFailed(err)
		return err
	}
	return nil
}

// writeFailed (wmu held) drops the connection after a failed write.
func (l *link) writeFailed(err error) {
	if l.werr == nil {
		l.werr = err
	}
	l.nc.Close()
}

// read reads one PDU. It returns the header with a nil PDU and a nil
// error for a PDU gosmpp cannot decode (the caller answers generic_nack
// and goes on), errFraming for a length that cannot be trusted, and the
// connection's error otherwise.
func (l *link) read() (pdu.Header, pdu.PDU, error) {
	var hb [16]byte
	if _, err := io.ReadFull(l.br, hb[:]); err != nil {
		l.wmu.Lock()
		werr := l.werr
		l.wmu.Unlock()
		if werr != nil {
			return pdu.Header{}, nil, fmt.Errorf("writing to the SMSC: %w", werr)
		}
		return pdu.Header{}, nil, err
	}
	h := pdu.ParseHeader(hb)
	if h.CommandLength < 16 || h.CommandLength > maxPDU {
		return h, nil, fmt.Errorf("%w: %d", errFraming, h.CommandLength)
	}
	whole := make([]byte, h.CommandLength)
	copy(whole, hb[:])
	if _, err := io.ReadFull(l.br, whole[16:]); err != nil {
		return h, nil, err
	}
	l.lastRead.Store(time.Now().UnixNano())
	p, err := parsePDU(whole)
	if err != nil {
		return h, nil, nil
	}
	return h, p, nil
}

// parsePDU decodes one whole PDU with gosmpp. It never panics: a panic in
// the decoder (malformed input) is an error.
func parsePDU(whole []byte) (p pdu.PDU, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("decoding PDU: %v", r)
		}
	}()
	if len(whole) < 16 || int(binary.BigEndian.Uint32(whole)) != len(whole) {
		return nil, errFraming
	}
	return pdu.Parse(bytes.NewReader(whole))
}

// genericNack answers a PDU that could not be handled (SMPP 3.4 §4.3).
func (l *link) genericNack(seq int32, status data.CommandStatusType) error {
	n := pdu.NewGenericNack()
	n.SetSequenceNumber(seq)
	n.(*pdu.GenericNack).CommandStatus = status
	return l.write(n)
}

func (l *link) close() error { return l.nc.Close() }
