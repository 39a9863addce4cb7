package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/smpp"
)

// Errors of the API layer itself.
var (
	errUnauthorized = errors.New("missing or unknown bearer token")
	errForbidden    = errors.New("this token's role may not do that")
	errNotFound     = errors.New("no such resource")
	errUnsupported  = errors.New("Content-Type must be application/json")
	errTooLarge     = errors.New("request body too large")
	// errSMSUnavailable: the server was built without an SMS service.
	errSMSUnavailable = errors.New("SMS is not available on this server")
)

// apiError is an error with its status and code already chosen, for
// validation done in the handlers.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(code, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// apiErrorFor maps any error to the status, code and message a caller
// sees. It is the only place that does. Unknown errors become a generic
// 500 (the caller logs the detail).
func apiErrorFor(err error) (status int, code, message string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.message
	}
	table := []struct {
		err    error
		status int
		code   string
	}{
		{errUnauthorized, http.StatusUnauthorized, "unauthorized"},
		{errForbidden, http.StatusForbidden, "forbidden"},
		{errNotFound, http.StatusNotFound, "not_found"},
		{errUnsupported, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{errTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
		{routing.ErrInvalid, http.StatusBadRequest, "invalid_request"},
		{routing.ErrNumberNotFound, http.StatusNotFound, "number_not_found"},
		{routing.ErrSessionNotFound, http.StatusNotFound, "session_not_found"},
		{routing.ErrRouteNotFound, http.StatusNotFound, "route_not_found"},
		{routing.ErrCallNotFound, http.StatusNotFound, "call_not_found"},
		{routing.ErrNumberExists, http.StatusConflict, "number_exists"},
		{routing.ErrNumberInUse, http.StatusConflict, "number_in_use"},
		{routing.ErrPoolExhausted, http.StatusConflict, "pool_exhausted"},
		{routing.ErrUniqueNameInUse, http.StatusConflict, "unique_name_in_use"},
		{routing.ErrProxyNotFree, http.StatusConflict, "proxy_not_free"},
		{routing.ErrMessageNotFound, http.StatusNotFound, "message_not_found"},
		{errSMSUnavailable, http.StatusServiceUnavailable, "sms_unavailable"},
		{smpp.ErrClosed, http.StatusServiceUnavailable, "sms_unavailable"},
		{smpp.ErrNoRoute, http.StatusServiceUnavailable, "no_sms_route"},
		{smpp.ErrBadDestination, http.StatusBadRequest, "invalid_request"},
		{smpp.ErrDestinationIsProxy, http.StatusBadRequest, "invalid_request"},
		{smpp.ErrEmptyBody, http.StatusBadRequest, "invalid_request"},
		{smpp.ErrBadText, http.StatusBadRequest, "invalid_request"},
		{smpp.ErrBadSender, http.StatusBadRequest, "unknown_sender"},
		{smpp.ErrTooLong, http.StatusBadRequest, "body_too_long"},
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.status, e.code, err.Error()
		}
	}
	return http.StatusInternalServerError, "internal", "internal error"
}
