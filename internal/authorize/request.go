package authorize

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// ErrStateMismatch rejects an answer whose state is not this sign-in's
// (RFC 6749 section 10.12): it belongs to another sign-in, or was forged to
// plant someone else's account. Its code is never redeemed.
var ErrStateMismatch = errors.New("the sign-in answer's state does not match this sign-in's: " +
	"it comes from another sign-in (an old browser tab, or a forged link), so its code was not used")

var (
	errNoAnswer = errors.New("the address carries no sign-in answer (no code, error or state)")
	errNoCode   = errors.New("the address carries no code: paste the address the browser " +
		"ended on after sign-in, not the one you opened")
)

// request is one authorization request (RFC 6749 section 4.1.1): what must
// come back (state) and what proves it is ours when redeeming (verifier).
type request struct {
	oc       *oauth2.Config
	state    string
	verifier string
	url      string // the address the admin opens
}

// newRequest starts an authorization request answered at redirectURI.
func (f *Flow) newRequest(redirectURI string) (*request, error) {
	oc, err := f.oauth2Config(redirectURI)
	if err != nil {
		return nil, err
	}
	if oc.Endpoint.AuthURL == "" {
		return nil, &oauth.ConfigError{Column: "auth_url", Problem: "is empty",
			Fix: "set it to the provider's authorization endpoint, or use --device"}
	}
	r := &request{oc: oc, state: newState(), verifier: oauth2.GenerateVerifier()}
	r.url = oc.AuthCodeURL(r.state, f.authURLOptions(r.verifier)...)
	return r, nil
}

// authURLOptions adds PKCE, the login hint and what each provider needs to
// return a refresh token.
func (f *Flow) authURLOptions(verifier string) []oauth2.AuthCodeOption {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if f.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", f.LoginHint))
	}
	switch f.Config.Provider {
	case oauth.Microsoft:
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "query"))
	case oauth.Google:
		// Without both, Google returns no refresh token (or only on the
		// first consent of an account).
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
	}
	return opts
}

// newState returns 256 random bits, base64url.
func newState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// answer checks an authorization response (RFC 6749 section 4.1.2) and
// returns its code. The state is checked first: an error from a foreign
// answer is as untrusted as its code.
func (r *request) answer(q url.Values) (string, error) {
	state, code, e := q.Get("state"), q.Get("code"), q.Get("error")
	switch {
	case state == "" && code == "" && e == "":
		return "", errNoAnswer
	case subtle.ConstantTimeCompare([]byte(state), []byte(r.state)) != 1:
		return "", ErrStateMismatch
	case e != "":
		return "", &AnswerError{Code: clean(e), Description: clean(q.Get("error_description"))}
	case code == "":
		return "", errNoCode
	}
	return code, nil
}

// redeem exchanges the code for tokens (RFC 6749 section 4.1.3) with the
// PKCE verifier, and saves them.
func (f *Flow) redeem(ctx context.Context, r *request, code string) (oauth.Token, error) {
	opts, secrets, err := f.clientAuth(r.oc.Endpoint.TokenURL)
	if err != nil {
		return oauth.Token{}, err
	}
	opts = append(opts, oauth2.VerifierOption(r.verifier))
	if f.Config.Provider == oauth.Microsoft {
		// Optional at Microsoft, but it names the resource the token is for.
		opts = append(opts, oauth2.SetAuthURLParam("scope", strings.Join(r.oc.Scopes, " ")))
	}
	var tok *oauth2.Token
	err = f.client().Request(ctx, f.Config, oauth.GrantAuthorizationCode, func(ctx context.Context) error {
		var err error
		tok, err = r.oc.Exchange(ctx, code, opts...)
		return err
	}, append(secrets, code, r.verifier)...)
	if err != nil {
		return oauth.Token{}, err
	}
	return f.finish(ctx, tok)
}
