// Package authorize runs the one-time sign-in that gives a delegated mailbox
// (oauth_grant refresh_token) its refresh token, as `fetcher authorize` does:
//
//   - the authorization code flow (RFC 6749 section 4.1) with PKCE S256
//     (RFC 7636) and a random state, answered on a loopback listener (RFC 8252
//     section 7.3) when the redirect URL is http://127.0.0.1/…,
//     http://[::1]/… or http://localhost/…, else by the admin pasting the
//     address the browser ended on ([Flow.Browser]);
//   - the device authorization grant (RFC 8628) for servers without a
//     browser ([Flow.Device]);
//   - Microsoft's admin consent address ([AdminConsentURL]).
//
// Token requests go through [oauth.Client.Request]: each carries a
// client-request-id, is logged without secrets, and fails with an
// [*oauth.Error] that says what to do. Nothing in this package prints or logs
// the authorization code, the PKCE verifier, a token or a client secret.
package authorize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// DefaultTimeout bounds a sign-in when [Flow.Timeout] is zero.
const DefaultTimeout = 5 * time.Minute

// Errors a caller may want to tell apart.
var (
	// ErrAppOnly: a client_credentials mailbox has no user to sign in.
	ErrAppOnly = errors.New("app-only mailboxes (oauth_grant client_credentials) need no " +
		"sign-in, only admin consent for the app")
	// ErrTimeout: nobody finished signing in within [Flow.Timeout].
	ErrTimeout = errors.New("timed out waiting for the sign-in")
)

// Flow signs the user of one mailbox in and hands the tokens to SaveFunc.
type Flow struct {
	// Config is the mailbox's OAuth settings; its grant must be refresh_token.
	Config oauth.Config
	// LoginHint is sent as login_hint, so the provider offers the right
	// account: the mailbox's username.
	LoginHint string
	// Client makes the token requests; nil: a zero [oauth.Client].
	Client *oauth.Client
	// Out gets the instructions for the admin: the address to open, the
	// user code. Never a secret. nil: they are dropped.
	Out io.Writer
	// In gives the address the admin pastes when the redirect URL is not a
	// loopback one. nil: nothing can be pasted.
	In io.Reader
	// SaveFunc stores the tokens; when it fails the flow fails, and the browser
	// is told so. nil: nothing is stored.
	SaveFunc func(ctx context.Context, tok oauth.Token) error
	// Timeout bounds the whole sign-in; zero means [DefaultTimeout].
	Timeout time.Duration
}

// Browser runs the authorization code flow: it prints the address to open,
// takes the browser's answer on a loopback listener ([IsLoopback]) or as a
// pasted address, checks its state, redeems the code with the PKCE verifier
// and saves the tokens. Nothing is saved unless a refresh token came back.
func (f *Flow) Browser(ctx context.Context) (oauth.Token, error) {
	if err := f.check(); err != nil {
		return oauth.Token{}, err
	}
	redirect, err := f.redirectURL()
	if err != nil {
		return oauth.Token{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()
	var tok oauth.Token
	if IsLoopback(redirect) {
		tok, err = f.loopback(ctx, redirect)
	} else {
		tok, err = f.paste(ctx, redirect)
	}
	return tok, f.timedOut(ctx, err)
}

// check reports settings with which no sign-in can work.
func (f *Flow) check() error {
	if f.Config.Grant == oauth.GrantClientCredentials {
		return ErrAppOnly
	}
	if err := f.Config.Validate(); err != nil {
		return fmt.Errorf("oauth settings: %w", err)
	}
	return nil
}

// oauth2Config returns the x/oauth2 view of the mailbox for redirectURI. The
// client secret stays out of it: clientAuth sends the client's credential.
func (f *Flow) oauth2Config(redirectURI string) (*oauth2.Config, error) {
	ep, err := f.Config.Endpoint()
	if err != nil {
		return nil, err
	}
	// Endpoint already says so for every provider; x/oauth2 would otherwise
	// probe by retrying, and an authorization code works only once.
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: f.Config.ClientID, Endpoint: ep,
		RedirectURL: redirectURI, Scopes: f.Config.EffectiveScopes()}, nil
}

// clientAuth returns the client's credential for a request to tokenURL (the
// secret, a fresh certificate assertion, or nothing for a public client), as
// options, and the values to scrub from error text.
func (f *Flow) clientAuth(tokenURL string) ([]oauth2.AuthCodeOption, []string, error) {
	params, err := f.Config.ClientAuthParams(f.now(), tokenURL)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth settings: %w", err)
	}
	var opts []oauth2.AuthCodeOption
	var secrets []string
	for k := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, params.Get(k)))
		secrets = append(secrets, params.Get(k))
	}
	return opts, secrets, nil
}

// finish checks the token response and saves it.
func (f *Flow) finish(ctx context.Context, tok *oauth2.Token) (oauth.Token, error) {
	t := oauth.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if t.RefreshToken == "" {
		return oauth.Token{}, f.noRefreshToken()
	}
	if f.SaveFunc != nil {
		if err := f.SaveFunc(ctx, t); err != nil {
			return oauth.Token{}, fmt.Errorf("store the tokens: %w", err)
		}
	}
	return t, nil
}

// noRefreshToken says why the provider sent no refresh token.
func (f *Flow) noRefreshToken() error {
	const prefix = "the sign-in worked but the provider returned no refresh token, so nothing was stored: "
	switch f.Config.Provider {
	case oauth.Microsoft:
		return errors.New(prefix + "Microsoft sends one only when offline_access is granted. Do this: " +
			"add offline_access to the app registration's API permissions (and to scopes, " +
			"if set), then run fetcher authorize again")
	case oauth.Google:
		return errors.New(prefix + "Google sends one only for access_type=offline with " +
			"prompt=consent, which fetcher sends. Do this: remove the app's access at " +
			"https://myaccount.google.com/permissions, then run fetcher authorize again")
	}
	return errors.New(prefix + "Do this: add the scope the provider needs for offline access " +
		"(often offline_access) to scopes, then run fetcher authorize again")
}

// timedOut replaces the error of a flow whose time ran out with one that
// says so.
func (f *Flow) timedOut(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: nobody finished signing in within %s; nothing was stored", ErrTimeout, f.timeout())
	}
	return err
}

func (f *Flow) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return DefaultTimeout
}

func (f *Flow) client() *oauth.Client {
	if f.Client != nil {
		return f.Client
	}
	return &oauth.Client{}
}

func (f *Flow) now() time.Time {
	if f.Client != nil && f.Client.Now != nil {
		return f.Client.Now()
	}
	return time.Now()
}

// warn logs a warning on the token request log, if there is one.
func (f *Flow) warn(msg string, args ...any) {
	if f.Client != nil && f.Client.Logger != nil {
		f.Client.Logger.Warn(msg, args...)
	}
}

func (f *Flow) printf(format string, args ...any) {
	if f.Out != nil {
		fmt.Fprintf(f.Out, format, args...)
	}
}

// redirectURL returns the mailbox's redirect URL, checked.
func (f *Flow) redirectURL() (*url.URL, error) {
	const fix = "set it to the redirect URI registered for the app, e.g. http://127.0.0.1/fetcher/ " +
		"(platform \"Mobile and desktop applications\"), or use the device code flow (--device)"
	if f.Config.RedirectURL == "" {
		return nil, &oauth.ConfigError{Column: "redirect_url", Problem: "is empty", Fix: fix}
	}
	u, err := url.Parse(f.Config.RedirectURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &oauth.ConfigError{Column: "redirect_url", Problem: "is not an absolute http(s) URL", Fix: fix}
	}
	return u, nil
}
