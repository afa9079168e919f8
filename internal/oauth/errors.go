package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error is a refusal or failure from a token endpoint (RFC 6749 section 5.2),
// with Microsoft's extra fields. It never holds a secret, a token or the
// request body.
type Error struct {
	Status      int    // HTTP status
	Code        string // RFC 6749 "error", e.g. "invalid_grant"
	Description string // first line of error_description, without trace/correlation lines
	AADSTS      int    // Microsoft's first error_codes entry, e.g. 70008; 0 if none

	TraceID         string // Microsoft trace_id
	CorrelationID   string // Microsoft correlation_id
	ClientRequestID string // the client-request-id header of the request

	// RetryAfter is the Retry-After header of a 429 or 5xx, or 0.
	RetryAfter time.Duration
	// Reauth reports that a person must act before a retry can succeed:
	// authorize again, grant consent, or fix a mailbox setting.
	Reauth bool
	// Advice says in plain words what the admin must do.
	Advice string
	// Grant is the grant that failed: GrantRefreshToken or GrantClientCredentials,
	// or, in fetcher authorize, GrantAuthorizationCode or GrantDeviceCode.
	Grant string
}

// Error returns e.g. "token endpoint refused the refresh token: invalid_grant
// AADSTS70008: The provided ... inactivity. Do this: authorize the mailbox
// again (fetcher authorize <mailbox>) [trace_id=..., correlation_id=...]".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.prefix())
	if s := e.summary(); s != "" {
		b.WriteString(": " + s)
	}
	if e.Advice != "" {
		b.WriteString(" Do this: " + e.Advice)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (the provider asked to wait %s)", e.RetryAfter)
	}
	b.WriteString(e.ids())
	return b.String()
}

func (e *Error) prefix() string {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return "token endpoint throttled the request (HTTP 429)"
	case e.Status >= 500:
		return fmt.Sprintf("token endpoint failed (HTTP %d)", e.Status)
	case e.Grant == GrantClientCredentials:
		return "token endpoint refused the client credentials"
	case e.Grant == GrantAuthorizationCode:
		return "token endpoint refused the authorization code"
	case e.Grant == GrantDeviceCode:
		return "token endpoint refused the device code sign-in"
	}
	return "token endpoint refused the refresh token"
}

// summary is "code AADSTSn: description." with whatever parts are known.
func (e *Error) summary() string {
	desc := e.Description
	tag := fmt.Sprintf("AADSTS%d", e.AADSTS)
	if e.AADSTS != 0 && !strings.HasPrefix(desc, tag) {
		desc = strings.TrimSpace(tag + ": " + desc)
	}
	if desc != "" && !strings.HasSuffix(desc, ".") {
		desc += "."
	}
	if e.Code == "" && desc == "" && e.Status != 0 {
		return fmt.Sprintf("HTTP %d %s.", e.Status, http.StatusText(e.Status))
	}
	return strings.TrimSpace(e.Code + " " + desc)
}

func (e *Error) ids() string {
	var ids []string
	for _, id := range [][2]string{{"trace_id", e.TraceID},
		{"correlation_id", e.CorrelationID}, {"client_request_id", e.ClientRequestID}} {
		if id[1] != "" {
			ids = append(ids, id[0]+"="+id[1])
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return " [" + strings.Join(ids, ", ") + "]"
}

// short is the outcome for logs: "invalid_grant AADSTS70008", or
// "http 503 temporarily_unavailable" for provider trouble.
func (e *Error) short() string {
	s := e.Code
	if e.AADSTS != 0 {
		s += fmt.Sprintf(" AADSTS%d", e.AADSTS)
	}
	if e.Status == http.StatusTooManyRequests || e.Status >= 500 || s == "" {
		s = fmt.Sprintf("http %d %s", e.Status, s)
	}
	return strings.TrimSpace(s)
}

// Is reports whether target is an *Error whose non-zero Status, Code and
// AADSTS all match e, so errors.Is(err, &Error{AADSTS: 70008}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return (t.Status == 0 || t.Status == e.Status) &&
		(t.Code == "" || t.Code == e.Code) &&
		(t.AADSTS == 0 || t.AADSTS == e.AADSTS)
}

// NeedsReauth reports whether a person must act before err can go away: an
// [*Error] with Reauth set, or a [*ConfigError]. The caller sets the mailbox
// to needs_reauth, stores err's text as last_error and stops retrying it.
func NeedsReauth(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Reauth
	}
	var ce *ConfigError
	return errors.As(err, &ce)
}

// IsTemporary reports whether retrying err later with backoff may succeed,
// keeping the stored tokens: network errors, timeouts, HTTP 5xx and 429, and
// unknown errors are temporary; Reauth errors and [*ConfigError] are not.
// The caller caps the attempts (an error that stays counts as permanent).
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	return !NeedsReauth(err)
}
