package authorize

import (
	"strings"
	"unicode"
)

// maxDescription caps the provider's error_description we repeat.
const maxDescription = 500

// AnswerError is an error the provider sent to the redirect URL instead of
// a code (RFC 6749 section 4.1.2.1), e.g. access_denied when the user
// declined. Only answers with this sign-in's state become one.
type AnswerError struct {
	Code        string // "error", e.g. "access_denied"
	Description string // first line of error_description, e.g. "AADSTS65004: User declined ..."
}

// Error returns e.g. "the provider refused the sign-in: access_denied
// AADSTS65004: User declined to consent to access the app. Do this: ...".
func (e *AnswerError) Error() string {
	s := "the provider refused the sign-in: " + e.Code
	if e.Description != "" {
		s += " " + strings.TrimSuffix(e.Description, ".") + "."
	}
	return s + " Do this: " + e.Advice()
}

// Advice says what the admin must do about e: by the AADSTS code that
// starts a Microsoft description, when it is one with its own remedy, else
// by the OAuth error code.
func (e *AnswerError) Advice() string {
	switch aadsts(e.Description) {
	case "65001": // the app lacks consent, and this user may not give it
		return "the app has no consent for these permissions in the tenant: have an administrator " +
			"grant it (fetcher authorize --admin-consent prints the address), then run fetcher authorize again"
	case "53003": // blocked by Conditional Access
		return "a Conditional Access policy blocked the sign-in: have an administrator allow it for " +
			"this user and app (Entra ID sign-in logs name the policy), then run fetcher authorize again"
	}
	switch e.Code {
	case "access_denied":
		return "sign in again as the mailbox's user and accept the requested permissions; if " +
			"the user may not consent, have an administrator grant consent (fetcher authorize --admin-consent)"
	case "consent_required", "interaction_required", "login_required":
		return "sign in again and accept the requested permissions, or have an administrator " +
			"grant consent (fetcher authorize --admin-consent)"
	case "invalid_request", "unauthorized_client", "invalid_client":
		return "check client_id and tenant_id, and that redirect_url is registered for the app " +
			"exactly as stored"
	case "invalid_scope":
		return "fix scopes, or leave it empty for the defaults"
	case "unsupported_response_type":
		return "allow the authorization code flow in the app registration"
	case "server_error", "temporarily_unavailable":
		return "run fetcher authorize again in a few minutes"
	}
	return "fix what the description says, then run fetcher authorize again"
}

// aadsts returns the digits of a leading "AADSTS<n>" in a Microsoft
// error description, or "".
func aadsts(desc string) string {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return ""
	}
	n := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if n < 0 {
		n = len(rest)
	}
	return rest[:n]
}

// clean keeps the first line of provider text, without control characters
// (which could drive a terminal), at most maxDescription bytes.
func clean(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > maxDescription {
		s = strings.ToValidUTF8(s[:maxDescription], "") + "..."
	}
	return strings.TrimSpace(s)
}
