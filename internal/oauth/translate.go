package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxDescription caps error_description; the text ends up in last_error.
const maxDescription = 500

// errorBody is a token endpoint's error response, with Microsoft's fields.
type errorBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// translate turns what x/oauth2 returned into this package's errors. It is
// the only place that looks at library error types. secrets are scrubbed from
// any text the server echoed.
func (c *Client) translate(err error, grant, requestID string, secrets ...string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return c.fromRetrieve(re, grant, requestID, secrets)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// *url.Error prints the URL; the token URL carries no secret (they
		// are in the POST body) but a custom one could have a query.
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return fmt.Errorf("token request: %w", err)
}

func (c *Client) fromRetrieve(re *oauth2.RetrieveError, grant, requestID string, secrets []string) *Error {
	var body errorBody
	_ = json.Unmarshal(re.Body, &body) // not JSON (a proxy's HTML page): status only
	// Redact before cutting: a secret cut in half would escape ReplaceAll.
	desc := firstLine(redact(firstNonEmpty(re.ErrorDescription, body.Description), secrets))
	e := &Error{
		// The server writes every field: any may echo the request.
		Code:            redact(firstNonEmpty(re.ErrorCode, body.Error), secrets),
		Description:     desc,
		AADSTS:          aadsts(body.ErrorCodes, desc),
		TraceID:         redact(body.TraceID, secrets),
		CorrelationID:   redact(body.CorrelationID, secrets),
		ClientRequestID: requestID,
		Grant:           grant,
	}
	if r := re.Response; r != nil {
		e.Status = r.StatusCode
		e.RetryAfter = retryAfter(r, c.now())
	}
	e.Reauth, e.Advice = classify(e)
	return e
}

// firstLine drops Microsoft's "\r\nTrace ID: ...\r\nCorrelation ID: ..." tail.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > maxDescription {
		s = strings.ToValidUTF8(s[:maxDescription], "") + "..."
	}
	return s
}

// aadsts returns the first error_codes entry, else the number after
// "AADSTS" in the description, else 0.
func aadsts(codes []int, desc string) int {
	if len(codes) > 0 {
		return codes[0]
	}
	i := strings.Index(desc, "AADSTS")
	if i < 0 {
		return 0
	}
	digits := desc[i+len("AADSTS"):]
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		digits = digits[:end]
	}
	n, _ := strconv.Atoi(digits)
	return n
}

// maxRetryAfterSeconds is the longest Retry-After a time.Duration holds.
const maxRetryAfterSeconds = int(math.MaxInt64 / int64(time.Second))

// retryAfter parses Retry-After (RFC 9110 section 10.2.3), delay-seconds or
// an HTTP date, on 429 and 5xx responses.
func retryAfter(r *http.Response, now time.Time) time.Duration {
	if r.StatusCode != http.StatusTooManyRequests && r.StatusCode < 500 {
		return 0
	}
	v := strings.TrimSpace(r.Header.Get("Retry-After"))
	if secs, err := strconv.Atoi(v); err == nil || errors.Is(err, strconv.ErrRange) {
		// Capped before the multiplication: past 292 years it overflows,
		// and a wait of centuries came out negative or as a few hundred
		// milliseconds. Out of range is as long as can be.
		return time.Duration(min(max(secs, 0), maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact replaces each secret of 8 or more bytes in s; shorter ones would
// mangle ordinary words and are not real secrets anyway. A secret is also
// replaced as it was in the request's form body, percent-encoded, since a
// server may quote the request back.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if len(secret) >= 8 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
			s = strings.ReplaceAll(s, url.QueryEscape(secret), "[redacted]")
		}
	}
	return s
}

// redactURL drops user info and query from a URL for error text.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(token url)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	u.Fragment = ""
	return u.String()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
