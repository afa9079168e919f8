package oauth

import (
	"net/http"
	"strings"
)

// Advice texts that recur.
const (
	doAuthorize = `run fetcher authorize "<mailbox name>" to sign in again and store a new refresh token`
	doRetry     = "nothing; the worker retries with backoff and keeps the stored tokens"
	doSupport   = "nothing yet; the worker retries with backoff. If it persists, " +
		"give the ids below to the provider's support"
)

// advice is what an admin must do about one error.
type advice struct {
	reauth bool // a person must act before a retry can succeed
	text   string
}

// classify decides whether e needs a person and what they must do: provider
// trouble first (5xx, 429), then Microsoft's AADSTS code, then RFC 6749's
// error code.
func classify(e *Error) (reauth bool, text string) {
	if e.Status == http.StatusTooManyRequests || e.Status >= 500 {
		return false, doRetry
	}
	a, ok := aadstsAdvice(e.AADSTS)
	if !ok {
		a = codeAdvice(e.Code, e.Description)
	}
	return a.reauth, a.text
}

// codeAdvice covers providers without AADSTS codes (Google, custom) and
// AADSTS codes missing from aadstsAdvice.
func codeAdvice(code, desc string) advice {
	switch code {
	case "invalid_grant":
		if strings.Contains(desc, "expired or revoked") { // Google
			return advice{true, doAuthorize + "; a Google app in \"Testing\" status gets " +
				"refresh tokens that expire after 7 days, so publish it to \"In production\""}
		}
		return advice{true, doAuthorize}
	case "consent_required", "interaction_required", "login_required", "access_denied":
		return advice{true, doAuthorize}
	case "invalid_client":
		return advice{true, "check client_id and the client credential: client_secret (paste " +
			"the secret's value), or client_certificate and client_private_key"}
	case "unauthorized_client":
		return advice{true, "check client_id, and that the app registration allows this grant"}
	case "invalid_scope":
		return advice{true, "fix scopes, or leave it empty for the defaults"}
	case "unsupported_grant_type":
		return advice{true, "set oauth_grant to a grant the provider supports"}
	case "invalid_request":
		return advice{true, "check the mailbox's OAuth settings (client_id, tenant_id, scopes)"}
	case "temporarily_unavailable", "server_error":
		return advice{false, doRetry}
	}
	return advice{false, doSupport}
}
