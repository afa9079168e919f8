package oauthtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// tokenResponse is a successful token response (RFC 6749 section 5.1) in
// Microsoft's field order.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// microsoftError is an error response in Microsoft's shape.
type microsoftError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes,omitempty"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	ErrorURI      string `json:"error_uri,omitempty"`
}

// googleError is an error response in Google's shape.
type googleError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, f Failure) {
	status := f.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds())))
	}
	switch {
	case f.Code == "":
		http.Error(w, http.StatusText(status), status)
	case f.Google:
		writeJSON(w, status, googleError{Error: f.Code, Description: f.Message})
	default:
		writeJSON(w, status, s.microsoftError(r, f))
	}
}

// microsoftError builds the body: the description carries the trace id,
// correlation id (the client-request-id, when sent) and timestamp on extra
// lines, as Microsoft's does.
func (s *Server) microsoftError(r *http.Request, f Failure) microsoftError {
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	e := microsoftError{Error: f.Code, Timestamp: ts, TraceID: newUUID(),
		CorrelationID: r.Header.Get("client-request-id")}
	if e.CorrelationID == "" {
		e.CorrelationID = newUUID()
	}
	e.Description = f.Message
	if f.AADSTS != 0 {
		e.Description = fmt.Sprintf("AADSTS%d: %s", f.AADSTS, f.Message)
		e.ErrorCodes = []int{f.AADSTS}
		e.ErrorURI = fmt.Sprintf("%s/error?code=%d", s.URL(), f.AADSTS)
	}
	e.Description += "\r\nTrace ID: " + e.TraceID + "\r\nCorrelation ID: " +
		e.CorrelationID + "\r\nTimestamp: " + ts
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
