// Package admin serves Veil's HTTP API v1 to the marketplace backend and to
// compliance reviewers, plus /healthz and /metrics for operators.
//
// Every /v1 route needs "Authorization: Bearer <token>". Tokens have a
// role: admin (everything) or reviewer (read call and message records,
// GET /v1/calls/{id} and GET /v1/messages/{id}; recordings and audit
// arrive with later issues). The bootstrap admin token comes from the
// environment and is never stored; tokens created through the API are
// shown once and stored as SHA-256 hashes under the store's tok/ prefix.
//
// Handlers return (status, body, error); one function, apiErrorFor, maps
// errors to a status and the JSON body {"error":{"code","message"}}, so no
// handler writes an error itself and no internal error text or stack trace
// reaches a caller (internal errors are logged with a request id and
// answered with a generic message).
//
// SMS goes through the SMS interface (smpp.Service in veild, a fake in
// tests): POST /v1/messages and GET /v1/carriers answer 503
// sms_unavailable without one; message records are read from routing.
//
// admin may use routing, smpp (and later recorder, events) and store for
// its own keyspaces (tok/, later audit/). Nothing imports admin but cmd and
// its client types, which cmd/veilctl uses.
//
// Concurrency: a *Server is safe for concurrent use; its token table is
// guarded by a mutex and nothing calls out under it.
package admin
