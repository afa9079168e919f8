package oauthtest

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Grant types the token endpoint serves.
const (
	grantRefresh = "refresh_token"
	grantClient  = "client_credentials"
	grantCode    = "authorization_code"
	grantDevice  = "urn:ietf:params:oauth:grant-type:device_code"
)

// tokenRequest is a parsed token request.
type tokenRequest struct {
	tenant    string // "" on the custom-provider path
	tokenURL  string // the URL requested: a client assertion's aud must be this
	form      url.Values
	clientID  string
	secret    string
	assertion string // client_assertion (RFC 7523 section 2.2)
}

// handleToken serves POST {tenant}/oauth2/v2.0/token and POST /token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm() // a bad body leaves the form empty: "grant_type" missing
	s.record(r)
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	}
	f, failing := s.takeFailure()
	if failing && f.Delay > 0 && !sleep(r.Context(), f.Delay) {
		return // the client gave up
	}
	if failing && (f.Status != 0 || f.Code != "") {
		s.writeFailure(w, r, f)
		return
	}
	resp, fail := s.serveGrant(parseTokenRequest(r))
	if fail != nil {
		s.writeFailure(w, r, *fail)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func parseTokenRequest(r *http.Request) tokenRequest {
	req := tokenRequest{tenant: r.PathValue("tenant"), tokenURL: requestURL(r), form: r.PostForm,
		clientID: r.PostForm.Get("client_id"), secret: r.PostForm.Get("client_secret"),
		assertion: r.PostForm.Get("client_assertion")}
	if id, secret, ok := r.BasicAuth(); ok && req.clientID == "" {
		// RFC 6749 section 2.3.1: both are form-urlencoded first.
		req.clientID, _ = url.QueryUnescape(id)
		req.secret, _ = url.QueryUnescape(secret)
	}
	return req
}

// requestURL is the URL the client posted to, without the query.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

func (s *Server) serveGrant(req tokenRequest) (*tokenResponse, *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch gt := req.form.Get("grant_type"); gt {
	case grantRefresh:
		return s.refreshGrant(req)
	case grantClient:
		return s.clientCredentialsGrant(req)
	case grantCode:
		return s.codeGrant(req)
	case grantDevice:
		return s.deviceGrant(req)
	case "":
		return fail(missingParam("grant_type"))
	default:
		return fail(Failure{Status: 400, Code: "unsupported_grant_type", AADSTS: 70003,
			Message: "The app requested an unsupported grant type '" + gt + "'."})
	}
}

func fail(f Failure) (*tokenResponse, *Failure) { return nil, &f }

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
