package admin

import (
	_ "embed"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/veilgw/veil/routing"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) healthz(r *http.Request, _ principal) (int, any, error) {
	if s.draining.Load() {
		return http.StatusServiceUnavailable, Health{Status: "draining"}, nil
	}
	return http.StatusOK, Health{Status: "ok"}, nil
}

func (s *Server) openapi(r *http.Request, _ principal) (int, any, error) {
	return http.StatusOK, rawJSON(openapiDoc), nil
}

// rawJSON is a body that is already JSON.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

// --- tokens ---

func (s *Server) createToken(r *http.Request, p principal) (int, any, error) {
	var req CreateTokenRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Role != RoleAdmin && req.Role != RoleReviewer {
		return 0, nil, badRequest("invalid_request", "role must be admin or reviewer")
	}
	if len(req.Name) > 64 || strings.IndexFunc(req.Name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) >= 0 {
		return 0, nil, badRequest("invalid_request", "name must be text of at most 64 bytes without control characters")
	}
	tok, err := s.tokens.create(r.Context(), req.Role, req.Name, s.now())
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("api token created", "by", p.tokenID, "token_id", tok.ID, "role", tok.Role)
	return http.StatusCreated, tok, nil
}

func (s *Server) listTokens(r *http.Request, _ principal) (int, any, error) {
	if err := onlyParams(r.URL.Query()); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, TokenList{Tokens: s.tokens.list()}, nil
}

func (s *Server) revokeToken(r *http.Request, p principal) (int, any, error) {
	id := r.PathValue("id")
	if len(id) > 64 {
		return 0, nil, fmt.Errorf("%w: no such token", errNotFound)
	}
	if err := s.tokens.revoke(r.Context(), id); err != nil {
		return 0, nil, err
	}
	s.log.Info("api token revoked", "by", p.tokenID, "token_id", id)
	return http.StatusNoContent, nil, nil
}

// --- numbers ---

func (s *Server) addNumber(r *http.Request, p principal) (int, any, error) {
	var req AddNumberRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	caps := make([]routing.Capability, len(req.Capabilities))
	for i, c := range req.Capabilities {
		caps[i] = routing.Capability(c)
	}
	n, err := s.routing.AddNumber(r.Context(), routing.AddNumberRequest{
		Number: req.Number, Carrier: req.Carrier, Capabilities: caps,
		Reserved: req.Reserved, FallbackNumber: req.FallbackNumber,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, numberOut(n, 0), nil
}

func (s *Server) listNumbers(r *http.Request, _ principal) (int, any, error) {
	if err := onlyParams(r.URL.Query()); err != nil {
		return 0, nil, err
	}
	list := s.routing.ListNumbers()
	out := NumberList{Numbers: make([]Number, len(list))}
	for i, n := range list {
		out.Numbers[i] = numberOut(n.Number, n.OpenSessions)
	}
	return http.StatusOK, out, nil
}

func (s *Server) getNumber(r *http.Request, _ principal) (int, any, error) {
	n, err := s.routing.GetNumber(r.PathValue("number"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, numberOut(n.Number, n.OpenSessions), nil
}

func (s *Server) updateNumber(r *http.Request, _ principal) (int, any, error) {
	var req UpdateNumberRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	num := r.PathValue("number")
	n, err := s.routing.UpdateNumber(r.Context(), num, routing.UpdateNumberRequest{
		Reserved: req.Reserved, FallbackNumber: req.FallbackNumber,
	})
	if err != nil {
		return 0, nil, err
	}
	u, err := s.routing.GetNumber(num)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, numberOut(n, u.OpenSessions), nil
}

func (s *Server) deleteNumber(r *http.Request, _ principal) (int, any, error) {
	if err := s.routing.DeleteNumber(r.Context(), r.PathValue("number")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func numberOut(n *routing.Number, open int) Number {
	caps := make([]string, len(n.Capabilities))
	for i, c := range n.Capabilities {
		caps[i] = string(c)
	}
	return Number{
		Number: n.Number, CountryCode: n.CountryCode, Carrier: n.Carrier, Capabilities: caps,
		Reserved: n.Reserved, FallbackNumber: n.FallbackNumber, OpenSessions: open, CreatedAt: n.CreatedAt,
	}
}

// --- routes ---

func (s *Server) setRoute(r *http.Request, _ principal) (int, any, error) {
	var req RouteRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	rt, err := s.routing.SetRoute(r.Context(), req.Prefix, req.Carriers)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, routeOut(rt), nil
}

func (s *Server) listRoutes(r *http.Request, _ principal) (int, any, error) {
	if err := onlyParams(r.URL.Query()); err != nil {
		return 0, nil, err
	}
	list := s.routing.ListRoutes()
	out := RouteList{Routes: make([]Route, len(list))}
	for i, rt := range list {
		out.Routes[i] = routeOut(rt)
	}
	return http.StatusOK, out, nil
}

func (s *Server) deleteRoute(r *http.Request, _ principal) (int, any, error) {
	if err := s.routing.DeleteRoute(r.Context(), r.PathValue("prefix")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func routeOut(r *routing.Route) Route {
	return Route{Prefix: r.Prefix, Carriers: r.Carriers, CreatedAt: r.CreatedAt}
}

// --- sessions ---

func (s *Server) createSession(r *http.Request, p principal) (int, any, error) {
	var req CreateSessionRequest
	if err := s.decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.TTLSeconds < 0 {
		return 0, nil, badRequest("invalid_request", "ttl_seconds must be positive")
	}
	if req.TTLSeconds > int64(1<<62)/int64(time.Second) {
		return 0, nil, badRequest("invalid_request", "ttl_seconds is too large")
	}
	in := routing.CreateSessionRequest{
		Mode: routing.Mode(req.Mode), Record: req.Record, TTL: time.Duration(req.TTLSeconds) * time.Second,
		UniqueName: req.UniqueName, ProxyNumber: req.ProxyNumber,
	}
	if req.ExpiresAt != nil {
		// routing reads a zero time as "not given": refuse it here, where
		// we still know it was given.
		if !req.ExpiresAt.After(s.now()) {
			return 0, nil, badRequest("invalid_request", "expires_at is in the past")
		}
		in.ExpiresAt = *req.ExpiresAt
	}
	for _, part := range req.Participants {
		in.Participants = append(in.Participants, part.Number)
	}
	sess, err := s.routing.CreateSession(r.Context(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, sessionOut(sess), nil
}

func (s *Server) getSession(r *http.Request, _ principal) (int, any, error) {
	sess, err := s.routing.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sessionOut(sess), nil
}

func (s *Server) listSessions(r *http.Request, _ principal) (int, any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "state", "participant", "unique_name", "proxy_number", "limit", "cursor"); err != nil {
		return 0, nil, err
	}
	f := routing.SessionFilter{
		State: routing.State(q.Get("state")), Participant: plusFromQuery(q.Get("participant")),
		UniqueName: q.Get("unique_name"), ProxyNumber: plusFromQuery(q.Get("proxy_number")), After: q.Get("cursor"),
	}
	for _, n := range []string{f.Participant, f.ProxyNumber} {
		if n != "" {
			if _, err := routing.ParseE164(n); err != nil {
				return 0, nil, err
			}
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, badRequest("invalid_request", "limit must be an integer from 1 to 1000")
		}
		f.Limit = n
	}
	list, next, err := s.routing.ListSessions(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	out := SessionList{Sessions: make([]Session, len(list)), NextCursor: next}
	for i, sess := range list {
		out.Sessions[i] = sessionOut(sess)
	}
	return http.StatusOK, out, nil
}

func (s *Server) closeSession(r *http.Request, p principal) (int, any, error) {
	if r.ContentLength > 0 {
		return 0, nil, badRequest("invalid_request", "close takes no request body")
	}
	sess, err := s.routing.CloseSession(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sessionOut(sess), nil
}

func (s *Server) listInteractions(r *http.Request, _ principal) (int, any, error) {
	list, err := s.routing.ListInteractions(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	out := InteractionList{Interactions: make([]Interaction, len(list))}
	for i, it := range list {
		out.Interactions[i] = Interaction{ID: it.ID, SessionID: it.SessionID, Kind: it.Kind, CreatedAt: it.CreatedAt}
		if it.Call != nil {
			c := callOut(it.Call)
			out.Interactions[i].Call = &c
		}
		if it.Message != nil {
			m := messageOut(it.Message)
			out.Interactions[i].Message = &m
		}
	}
	return http.StatusOK, out, nil
}

// --- calls ---

func (s *Server) getCall(r *http.Request, p principal) (int, any, error) {
	c, err := s.routing.GetCall(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	// Reads of call records are compliance-relevant: until the audit log
	// exists, the log line is the trail.
	s.log.Info("call record read", "by", p.tokenID, "role", p.role, "call", c.ID)
	return http.StatusOK, callOut(c), nil
}

func callOut(c *routing.CallRecord) CallRecord {
	out := CallRecord{
		ID: c.ID, SessionID: c.SessionID, Proxy: c.Proxy, From: c.From, To: c.To, Fallback: c.Fallback,
		Attempts: make([]CallAttempt, len(c.Attempts)), Status: c.Status,
		StartedAt: c.StartedAt, AnsweredAt: c.AnsweredAt, EndedAt: c.EndedAt, DurationMS: c.DurationMS,
		PostDialDelayMS: c.PostDialDelayMS, EndReason: c.EndReason,
	}
	for i, a := range c.Attempts {
		out.Attempts[i] = CallAttempt{Carrier: a.Carrier, Status: a.Status, Reason: a.Reason}
	}
	if m := c.Media; m != nil {
		out.Media = &CallMedia{
			CallerToCallee: MediaDirection(m.CallerToCallee),
			CalleeToCaller: MediaDirection(m.CalleeToCaller),
		}
	}
	return out
}

func sessionOut(s *routing.Session) Session {
	out := Session{
		ID: s.ID, ProxyNumber: s.ProxyNumber, Mode: string(s.Mode), Record: s.Record,
		UniqueName: s.UniqueName, State: string(s.State), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
		ClosedAt: s.ClosedAt, CloseReason: s.CloseReason,
	}
	for _, p := range s.Participants {
		out.Participants = append(out.Participants, Participant{Number: p.Number})
	}
	return out
}

// onlyParams rejects query parameters other than names.
func onlyParams(q url.Values, names ...string) error {
	for k := range q {
		ok := false
		for _, n := range names {
			ok = ok || k == n
		}
		if !ok {
			return badRequest("unknown_parameter", "unknown query parameter %q", k)
		}
	}
	return nil
}

// plusFromQuery undoes the most common client mistake with E.164 numbers in
// query strings: an unescaped "+" arrives as a space. A number cannot start
// with a space, so reading it back as "+" is unambiguous.
func plusFromQuery(v string) string {
	if strings.HasPrefix(v, " ") {
		return "+" + v[1:]
	}
	return v
}
