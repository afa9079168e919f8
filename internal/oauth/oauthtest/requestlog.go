package oauthtest

import (
	"net/http"
	"slices"
)

// Request is one token request as the server saw it, without secrets.
type Request struct {
	Path            string
	GrantType       string
	Scope           string // the scope parameter; "" if absent
	ClientID        string
	SecretInBody    bool // client_secret in the form (AuthStyleInParams)
	SecretInHeader  bool // HTTP Basic auth (AuthStyleInHeader)
	AssertionInBody bool // client_assertion in the form (certificate credential)
	ClientRequestID string
}

// Requests returns how many token requests the server has served.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// RequestLog returns the token requests served so far, oldest first.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// record logs r, whose form must be parsed.
func (s *Server) record(r *http.Request) {
	_, _, basic := r.BasicAuth()
	req := Request{
		Path:            r.URL.Path,
		GrantType:       r.PostForm.Get("grant_type"),
		Scope:           r.PostForm.Get("scope"),
		ClientID:        r.PostForm.Get("client_id"),
		SecretInBody:    r.PostForm.Has("client_secret"),
		SecretInHeader:  basic,
		AssertionInBody: r.PostForm.Has("client_assertion"),
		ClientRequestID: r.Header.Get("client-request-id"),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, req)
}
