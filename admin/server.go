package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// Options configure a Server. The zero value means defaults where noted.
type Options struct {
	// Routing answers for numbers, routes and sessions. Required.
	Routing *routing.Service
	// DB holds the API's own records (tokens). Required.
	DB *store.DB
	// BootstrapToken is an admin token from the environment, never
	// stored; empty means only stored tokens work.
	BootstrapToken string
	// MaxBodyBytes bounds request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// Registry receives Veil's metrics and serves /metrics; nil means a
	// new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// SMS sends messages and reports the SMPP binds; nil means
	// POST /v1/messages and GET /v1/carriers answer 503 sms_unavailable
	// (GET /v1/messages/{id} reads the store and still works).
	SMS SMS
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP API. It is an http.Handler.
type Server struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	routing  *routing.Service
	sms      SMS
	tokens   *tokens
	mux      *http.ServeMux
	notFound http.Handler
	draining atomic.Bool
	metrics  *httpMetrics
}

// handlerFunc is an API handler: it returns a status and a body to encode
// as JSON, or an error for apiErrorFor.
type handlerFunc func(r *http.Request, p principal) (int, any, error)

// endpoint is one method on one path. The table of endpoints is also what
// the OpenAPI document is checked against.
type endpoint struct {
	method  string
	pattern string // net/http pattern without the method
	roles   []Role // roles allowed; nil means no authentication
	h       handlerFunc
}

var adminOnly = []Role{RoleAdmin}

// New builds the API server.
func New(opts Options) (*Server, error) {
	if opts.Routing == nil || opts.DB == nil {
		return nil, errors.New("admin: Routing and DB are required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now, routing: opts.Routing, sms: opts.SMS, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.tokens, err = newTokens(opts.DB, opts.BootstrapToken); err != nil {
		return nil, err
	}
	s.metrics = newHTTPMetrics(opts.Registry, opts.Routing)

	byPattern := make(map[string][]endpoint)
	var order []string
	for _, e := range s.endpoints() {
		if byPattern[e.pattern] == nil {
			order = append(order, e.pattern)
		}
		byPattern[e.pattern] = append(byPattern[e.pattern], e)
	}
	for _, pattern := range order {
		s.mux.Handle(pattern, s.dispatch(pattern, byPattern[pattern]))
	}
	s.mux.Handle("/metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	// Go's profiler, for an operator chasing CPU or memory; admin tokens
	// only, since profiles and the command line show the process's
	// internals.
	s.mux.Handle("/debug/pprof/", s.adminRaw(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("/debug/pprof/cmdline", s.adminRaw(http.HandlerFunc(pprof.Cmdline)))
	s.mux.Handle("/debug/pprof/profile", s.adminRaw(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("/debug/pprof/symbol", s.adminRaw(http.HandlerFunc(pprof.Symbol)))
	s.mux.Handle("/debug/pprof/trace", s.adminRaw(http.HandlerFunc(pprof.Trace)))
	s.notFound = s.dispatch("/", nil)
	s.mux.Handle("/", s.notFound)
	return s, nil
}

// endpoints is the API. Keep openapi.json in step (a test checks).
func (s *Server) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/healthz", nil, s.healthz},
		{"GET", "/v1/openapi.json", []Role{RoleAdmin, RoleReviewer}, s.openapi},
		{"POST", "/v1/tokens", adminOnly, s.createToken},
		{"GET", "/v1/tokens", adminOnly, s.listTokens},
		{"DELETE", "/v1/tokens/{id}", adminOnly, s.revokeToken},
		{"POST", "/v1/numbers", adminOnly, s.addNumber},
		{"GET", "/v1/numbers", adminOnly, s.listNumbers},
		{"GET", "/v1/numbers/{number}", adminOnly, s.getNumber},
		{"PATCH", "/v1/numbers/{number}", adminOnly, s.updateNumber},
		{"DELETE", "/v1/numbers/{number}", adminOnly, s.deleteNumber},
		{"POST", "/v1/routes", adminOnly, s.setRoute},
		{"GET", "/v1/routes", adminOnly, s.listRoutes},
		{"DELETE", "/v1/routes/{prefix}", adminOnly, s.deleteRoute},
		{"POST", "/v1/sessions", adminOnly, s.createSession},
		{"GET", "/v1/sessions", adminOnly, s.listSessions},
		{"GET", "/v1/sessions/{id}", adminOnly, s.getSession},
		{"POST", "/v1/sessions/{id}/close", adminOnly, s.closeSession},
		{"GET", "/v1/sessions/{id}/interactions", adminOnly, s.listInteractions},
		{"GET", "/v1/calls/{id}", []Role{RoleAdmin, RoleReviewer}, s.getCall},
		{"POST", "/v1/messages", adminOnly, s.sendMessage},
		{"GET", "/v1/messages/{id}", []Role{RoleAdmin, RoleReviewer}, s.getMessage},
		{"GET", "/v1/carriers", adminOnly, s.listCarriers},
	}
}

// adminRaw lets admin tokens through to a handler that writes its own
// (non-JSON) response; anyone else gets the API's JSON 401 or 403.
func (s *Server) adminRaw(h http.Handler) http.Handler {
	deny := func(w http.ResponseWriter, err error) {
		status, code, msg := apiErrorFor(err)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="veil"`)
		}
		writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.tokens.authenticate(r)
		if err != nil {
			deny(w, err)
			return
		}
		if p.role != RoleAdmin {
			deny(w, errForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// net/http's mux answers unclean paths ("//", "/../") with an HTML
	// redirect that a client would follow with its token; no API path is
	// unclean, so such a path is simply not found ("/debug/pprof/", the
	// profiler's index, is the one path with a trailing slash).
	if p := r.URL.Path; p != "/" && p != "/debug/pprof/" && path.Clean(p) != p {
		s.notFound.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Drain makes /healthz answer 503 so load balancers stop sending work.
func (s *Server) Drain() { s.draining.Store(true) }

// dispatch picks the endpoint for the method, authenticates, runs it and
// writes the result. Endpoints nil means "no such path".
func (s *Server) dispatch(pattern string, eps []endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w}
		status, body, err := s.serve(r, eps)
		if err != nil {
			var code, msg string
			status, code, msg = apiErrorFor(err)
			if status == http.StatusInternalServerError {
				reqID := newRequestID()
				s.log.Error("admin request failed", "request_id", reqID, "method", r.Method, "path", pattern, "err", err)
				msg = "internal error (request " + reqID + ")"
			}
			if status == http.StatusUnauthorized {
				rw.Header().Set("WWW-Authenticate", `Bearer realm="veil"`)
			}
			if status == http.StatusMethodNotAllowed {
				rw.Header().Set("Allow", allowed(eps))
			}
			body = ErrorBody{Error: ErrorDetail{Code: code, Message: msg}}
		}
		writeJSON(rw, status, body)
		s.metrics.observe(r.Method, pattern, rw.status, time.Since(start))
	})
}

func (s *Server) serve(r *http.Request, eps []endpoint) (int, any, error) {
	if eps == nil {
		return 0, nil, fmt.Errorf("%w: %s %s", errNotFound, r.Method, r.URL.Path)
	}
	var ep *endpoint
	for i := range eps {
		if eps[i].method == r.Method || (r.Method == http.MethodHead && eps[i].method == http.MethodGet) {
			ep = &eps[i]
			break
		}
	}
	var p principal
	if ep == nil || ep.roles != nil {
		var err error
		if p, err = s.tokens.authenticate(r); err != nil {
			return 0, nil, err
		}
	}
	if ep == nil {
		return 0, nil, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			message: fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, allowed(eps))}
	}
	if ep.roles != nil && !roleIn(p.role, ep.roles) {
		return 0, nil, errForbidden
	}
	return ep.h(r, p)
}

func roleIn(r Role, roles []Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func allowed(eps []endpoint) string {
	var m []string
	for _, e := range eps {
		m = append(m, e.method)
	}
	return strings.Join(m, ", ")
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusNoContent || body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	{
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(body)
	}
}

// decodeBody reads a JSON request body strictly: application/json only,
// at most MaxBodyBytes, no unknown fields, one value.
func (s *Server) decodeBody(r *http.Request, v any) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errUnsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("%w (charset utf-8)", errUnsupported)
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return fmt.Errorf("%w: the limit is %d bytes", errTooLarge, s.opts.MaxBodyBytes)
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil {
			if _, extra := dec.Token(); extra != io.EOF {
				err = errors.New("trailing data after the JSON value")
			}
		}
		if err == nil {
			return checkKeys(data, reflect.TypeOf(v), "")
		}
	}
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var timeErr *time.ParseError
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &netErr) && netErr.Timeout():
		return &apiError{status: http.StatusRequestTimeout, code: "request_timeout", message: "the request body did not arrive in time"}
	case errors.As(err, &timeErr):
		return badRequest("invalid_json", "a date-time field is not RFC 3339 (like 2030-01-31T18:00:00Z)")
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the limit is %d bytes", errTooLarge, s.opts.MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return badRequest("invalid_json", "request body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "request body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		return badRequest("invalid_json", "field %q: want %s, got %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	// Anything else (a read error, an unexpected decoder message) is not
	// echoed: it may carry addresses or internal detail.
	return badRequest("invalid_json", "request body could not be read as JSON")
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func newRequestID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewHTTPServer wraps h in an http.Server with explicit timeouts.
func NewHTTPServer(addr string, h http.Handler, read, write, idle time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout(read),
		ReadTimeout:       read,
		WriteTimeout:      write,
		IdleTimeout:       idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// readHeaderTimeout is at most 10 s, even when read (the body timeout) is 0,
// so a client that trickles headers cannot hold a connection forever.
func readHeaderTimeout(read time.Duration) time.Duration {
	if read <= 0 || read > 10*time.Second {
		return 10 * time.Second
	}
	return read
}
