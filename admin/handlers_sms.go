package admin

import (
	"context"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/smpp"
)

// SMS is what the API needs from the SMS service: queue an outbound
// message and report the carriers' binds. *smpp.Service implements it.
type SMS interface {
	// Send queues a message and returns its record once the queue row is
	// on disk.
	Send(ctx context.Context, req smpp.SendRequest) (*routing.MessageRecord, error)
	// Binds reports every SMPP bind's state.
	Binds() []smpp.BindStatus
}

var _ SMS = (*smpp.Service)(nil)

// SMSFuncs adapts functions to SMS (for tests and wrappers).
type SMSFuncs struct {
	SendFunc  func(ctx context.Context, req smpp.SendRequest) (*routing.MessageRecord, error)
	BindsFunc func() []smpp.BindStatus
}

// Send calls SendFunc.
func (f SMSFuncs) Send(ctx context.Context, req smpp.SendRequest) (*routing.MessageRecord, error) {
	return f.SendFunc(ctx, req)
}

// Binds calls BindsFunc (none when nil).
func (f SMSFuncs) Binds() []smpp.BindStatus {
	if f.BindsFunc == nil {
		return nil
	}
	return f.BindsFunc()
}

// MaxMessageChars is the longest body POST /v1/messages takes, in
// characters (Unicode code points): smpp.MaxTextChars, the same limit as
// relayed messages.
const MaxMessageChars = smpp.MaxTextChars

func (s *Server) sendMessage(r *http.Request, p principal) (int, any, error) {
	var req SendMessageRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if s.sms == nil {
		return 0, nil, errSMSUnavailable
	}
	if n := utf8.RuneCountInString(req.Body); n > MaxMessageChars {
		return 0, nil, &apiError{status: http.StatusBadRequest, code: "body_too_long",
			message: fmt.Sprintf("body has %d characters; the limit is %d", n, MaxMessageChars)}
	}
	rec, err := s.sms.Send(r.Context(), smpp.SendRequest{From: req.From, To: req.To, Body: req.Body})
	if err != nil {
		return 0, nil, err
	}
	// No numbers and no text at info level: the id is enough to find it.
	s.log.Info("message queued", "by", p.tokenID, "message", rec.ID, "parts", len(rec.Parts), "carrier", rec.Carrier)
	// 202 says what happened: the message is in the queue, on disk. By
	// now its parts may already be on their way (the record moves on;
	// GET /v1/messages/{id} follows it), so the status is not read back.
	return http.StatusAccepted, MessageAccepted{ID: rec.ID, Status: routing.MsgQueued, Parts: len(rec.Parts)}, nil
}

func (s *Server) getMessage(r *http.Request, p principal) (int, any, error) {
	m, err := s.routing.GetMessage(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	// Message logs are compliance-relevant (they hold the text): until the
	// audit log exists, the log line is the trail.
	s.log.Info("message record read", "by", p.tokenID, "role", p.role, "message", m.ID)
	return http.StatusOK, messageOut(m), nil
}

func (s *Server) listCarriers(r *http.Request, _ principal) (int, any, error) {
	if err := onlyParams(r.URL.Query()); err != nil {
		return 0, nil, err
	}
	if s.sms == nil {
		return 0, nil, errSMSUnavailable
	}
	binds := s.sms.Binds()
	if binds == nil {
		binds = []CarrierBind{}
	}
	out := CarrierList{Carriers: binds}
	return http.StatusOK, out, nil
}

func messageOut(m *routing.MessageRecord) Message {
	out := Message{
		ID: m.ID, SessionID: m.SessionID, Direction: m.Direction, Origin: m.Origin, Related: m.Related,
		Proxy: m.Proxy, From: m.From, To: m.To, Carrier: m.Carrier, Body: m.Body, Encoding: m.Encoding,
		Parts: make([]MessagePart, len(m.Parts)), Incomplete: m.Incomplete, Status: m.Status, Reason: m.Reason,
		CreatedAt: m.CreatedAt, SentAt: m.SentAt, DoneAt: m.DoneAt,
	}
	for i, pt := range m.Parts {
		out.Parts[i] = MessagePart{Seq: pt.Seq, CarrierID: pt.CarrierID, Status: pt.Status, Error: pt.Error,
			SubmittedAt: pt.SubmittedAt, DoneAt: pt.DoneAt}
	}
	return out
}
