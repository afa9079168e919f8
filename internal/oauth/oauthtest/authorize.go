package oauthtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// codeLifetime is how long an authorization code can be redeemed.
const codeLifetime = 10 * time.Minute

// authCode is an issued authorization code (RFC 6749 section 4.1).
type authCode struct {
	grant
	redirectURI string
	challenge   string // PKCE code_challenge (RFC 7636); "" without PKCE
	method      string // "S256" or "plain"
	expiry      time.Time
	used        bool
}

// handleAuthorize serves GET {tenant}/oauth2/v2.0/authorize. There is no
// login page: the user (login_hint, else Options.AuthorizeUser) consents at
// once and the browser is sent to redirect_uri with a code and the state.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case !s.knownClient(q.Get("client_id")):
		http.Error(w, "AADSTS700016: Application with identifier '"+q.Get("client_id")+
			"' was not found in the directory.", http.StatusBadRequest)
	case err != nil || !redirect.IsAbs():
		http.Error(w, "AADSTS50011: The redirect URI specified in the request does not match "+
			"the redirect URIs configured for the application.", http.StatusBadRequest)
	case q.Get("response_type") != "code":
		redirectWith(w, r, redirect, url.Values{"error": {"unsupported_response_type"},
			"error_description": {"AADSTS700054: response_type must be 'code'."},
			"state":             {q.Get("state")}})
	case s.opts.DenyConsent:
		redirectWith(w, r, redirect, url.Values{"error": {"access_denied"},
			"error_subcode":     {"cancel"},
			"error_description": {"AADSTS65004: User declined to consent to access the app."},
			"state":             {q.Get("state")}})
	default:
		code := s.newCode(q, redirect.String())
		redirectWith(w, r, redirect, url.Values{"code": {code}, "state": {q.Get("state")},
			"session_state": {newUUID()}})
	}
}

func (s *Server) knownClient(clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.clients[clientID]
	return ok
}

func (s *Server) newCode(q url.Values, redirectURI string) string {
	user := q.Get("login_hint")
	if user == "" {
		user = s.opts.AuthorizeUser
	}
	c := &authCode{grant: grant{clientID: q.Get("client_id"), user: user,
		scopes: strings.Fields(q.Get("scope"))}, redirectURI: redirectURI,
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"),
		expiry: s.now().Add(codeLifetime)}
	code := "1.AXoA" + randomB64(600)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = c
	return code
}

func redirectWith(w http.ResponseWriter, r *http.Request, u *url.URL, params url.Values) {
	v := u.Query()
	for k, vals := range params {
		if vals[0] != "" {
			v[k] = vals
		}
	}
	to := *u
	to.RawQuery = v.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// codeGrant serves grant_type=authorization_code. A refresh token comes back
// only when offline_access was requested, as at Microsoft. s.mu must be held.
func (s *Server) codeGrant(req tokenRequest) (*tokenResponse, *Failure) {
	if f := s.authenticate(req); f != nil {
		return nil, f
	}
	c, ok := s.codes[req.form.Get("code")]
	switch {
	case req.form.Get("code") == "":
		return fail(missingParam("code"))
	case !ok || c.clientID != req.clientID:
		return fail(Failure{Status: 400, Code: "invalid_grant", AADSTS: 70000,
			Message: "Provided grant is invalid or malformed."})
	case c.used:
		return fail(CodeRedeemed())
	case !s.now().Before(c.expiry):
		return fail(ExpiredRefreshToken())
	}
	if f := c.check(req.form); f != nil {
		return nil, f
	}
	c.used = true
	g := c.grant
	g.family = newUUID()
	return s.issue(g, g.scopes, slices.Contains(g.scopes, "offline_access")), nil
}

// check verifies redirect_uri and the PKCE code_verifier.
func (c *authCode) check(form url.Values) *Failure {
	if form.Get("redirect_uri") != c.redirectURI {
		return &Failure{Status: 400, Code: "invalid_grant", AADSTS: 50148, Message: "The " +
			"redirect_uri in the token request does not match the one used to obtain the code."}
	}
	if c.challenge != "" && !verifyPKCE(c.challenge, c.method, form.Get("code_verifier")) {
		return &Failure{Status: 400, Code: "invalid_grant", AADSTS: 501481, Message: "The " +
			"Code_Verifier does not match the code_challenge supplied in the authorization request."}
	}
	return nil
}

// verifyPKCE checks a code_verifier (RFC 7636 section 4.6). A verifier
// outside the syntax of section 4.1 (43 to 128 unreserved characters) fails
// too, so a client that sends a short or malformed one fails in tests.
func verifyPKCE(challenge, method, verifier string) bool {
	if !validVerifier(verifier) {
		return false
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// validVerifier: code-verifier = 43*128unreserved (RFC 7636 section 4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		switch {
		case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9',
			r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return true
}
