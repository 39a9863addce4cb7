package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the admin API. It is what cmd/veilctl uses, and what a Go
// backend can use.
type Client struct {
	// BaseURL is the API's root, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the bearer token.
	Token string
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends method path with body (JSON-encoded when not nil) and decodes a
// 2xx answer into out (when not nil). Other answers become *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(data))}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// CreateToken creates an API token; its secret is in the result only.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (Token, error) {
	var t Token
	return t, c.Do(ctx, "POST", "/v1/tokens", req, &t)
}

// ListTokens lists API tokens (never their secrets).
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var l TokenList
	return l.Tokens, c.Do(ctx, "GET", "/v1/tokens", nil, &l)
}

// RevokeToken deletes an API token by its id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(id), nil, nil)
}

// GetNumber reads one proxy number.
func (c *Client) GetNumber(ctx context.Context, number string) (Number, error) {
	var n Number
	return n, c.Do(ctx, "GET", "/v1/numbers/"+url.PathEscape(number), nil, &n)
}

// AddNumber adds a proxy number to the pool.
func (c *Client) AddNumber(ctx context.Context, req AddNumberRequest) (Number, error) {
	var n Number
	return n, c.Do(ctx, "POST", "/v1/numbers", req, &n)
}

// ListNumbers lists the pool.
func (c *Client) ListNumbers(ctx context.Context) ([]Number, error) {
	var l NumberList
	return l.Numbers, c.Do(ctx, "GET", "/v1/numbers", nil, &l)
}

// UpdateNumber changes a proxy number's reserved flag or fallback.
func (c *Client) UpdateNumber(ctx context.Context, number string, req UpdateNumberRequest) (Number, error) {
	var n Number
	return n, c.Do(ctx, "PATCH", "/v1/numbers/"+url.PathEscape(number), req, &n)
}

// DeleteNumber removes a proxy number.
func (c *Client) DeleteNumber(ctx context.Context, number string) error {
	return c.Do(ctx, "DELETE", "/v1/numbers/"+url.PathEscape(number), nil, nil)
}

// SetRoute creates or replaces a route.
func (c *Client) SetRoute(ctx context.Context, req RouteRequest) (Route, error) {
	var r Route
	return r, c.Do(ctx, "POST", "/v1/routes", req, &r)
}

// ListRoutes lists the routes.
func (c *Client) ListRoutes(ctx context.Context) ([]Route, error) {
	var l RouteList
	return l.Routes, c.Do(ctx, "GET", "/v1/routes", nil, &l)
}

// DeleteRoute removes a route.
func (c *Client) DeleteRoute(ctx context.Context, prefix string) error {
	return c.Do(ctx, "DELETE", "/v1/routes/"+url.PathEscape(prefix), nil, nil)
}

// CreateSession opens a masking session.
func (c *Client) CreateSession(ctx context.Context, req CreateSessionRequest) (Session, error) {
	var s Session
	return s, c.Do(ctx, "POST", "/v1/sessions", req, &s)
}

// GetSession reads a session.
func (c *Client) GetSession(ctx context.Context, id string) (Session, error) {
	var s Session
	return s, c.Do(ctx, "GET", "/v1/sessions/"+url.PathEscape(id), nil, &s)
}

// ListSessions lists sessions; q holds the query parameters (state,
// participant, unique_name, proxy_number, limit, cursor).
func (c *Client) ListSessions(ctx context.Context, q url.Values) (SessionList, error) {
	var l SessionList
	path := "/v1/sessions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return l, c.Do(ctx, "GET", path, nil, &l)
}

// ListInteractions lists the calls and messages of a session.
func (c *Client) ListInteractions(ctx context.Context, id string) ([]Interaction, error) {
	var l InteractionList
	return l.Interactions, c.Do(ctx, "GET", "/v1/sessions/"+url.PathEscape(id)+"/interactions", nil, &l)
}

// GetCall reads a call's record.
func (c *Client) GetCall(ctx context.Context, id string) (CallRecord, error) {
	var r CallRecord
	return r, c.Do(ctx, "GET", "/v1/calls/"+url.PathEscape(id), nil, &r)
}

// CloseSession closes a session.
func (c *Client) CloseSession(ctx context.Context, id string) (Session, error) {
	var s Session
	return s, c.Do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/close", nil, &s)
}

// SendMessage queues an SMS (POST /v1/messages).
func (c *Client) SendMessage(ctx context.Context, req SendMessageRequest) (MessageAccepted, error) {
	var m MessageAccepted
	return m, c.Do(ctx, "POST", "/v1/messages", req, &m)
}

// GetMessage reads a message's record.
func (c *Client) GetMessage(ctx context.Context, id string) (Message, error) {
	var m Message
	return m, c.Do(ctx, "GET", "/v1/messages/"+url.PathEscape(id), nil, &m)
}

// ListCarriers lists the carriers' SMPP binds and their state.
func (c *Client) ListCarriers(ctx context.Context) ([]CarrierBind, error) {
	var l CarrierList
	return l.Carriers, c.Do(ctx, "GET", "/v1/carriers", nil, &l)
}
