package fetch

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
)

// errNoRefreshToken is returned for a delegated mailbox that was never
// authorized.
var errNoRefreshToken = errors.New("no refresh token stored")

// open logs in to the mailbox's server (see logIn). forceRefresh gets a
// new access token first.
func (r *Runner) open(ctx context.Context, mb store.Mailbox, forceRefresh bool) (mailbox.Session, error) {
	opts, err := r.connOptions(mb)
	if err != nil {
		return nil, err
	}
	r.warnSkipVerify(mb)
	return logIn(ctx, mb, account(mb), r.accessToken, forceRefresh,
		func(ctx context.Context, acct mailbox.Account) (mailbox.Session, error) { return dial(ctx, acct, opts) })
}

// tokenFunc is accessToken or sendToken.
type tokenFunc func(ctx context.Context, mb store.Mailbox, force bool) (token string, fresh bool, err error)

// logIn runs login with acct. With OAuth, a login refused with a cached
// access token is retried once with a freshly refreshed one: the provider
// may have revoked the cached token early.
func logIn[S any](ctx context.Context, mb store.Mailbox, acct mailbox.Account, token tokenFunc, force bool,
	login func(context.Context, mailbox.Account) (S, error)) (S, error) {
	var none S
	if mb.AuthType != "oauth2" {
		return login(ctx, acct)
	}
	tok, fresh, err := token(ctx, mb, force)
	if err != nil {
		return none, err
	}
	acct.AccessToken = tok
	sess, err := login(ctx, acct)
	if err == nil || fresh || !mailbox.IsAuth(err) {
		return sess, err
	}
	if acct.AccessToken, _, err = token(ctx, mb, true); err != nil {
		return none, err
	}
	return login(ctx, acct)
}

// dial connects and logs in; a certificate the server cannot be trusted
// with comes back with what to do about it.
func dial(ctx context.Context, acct mailbox.Account, opts *mailbox.Options) (mailbox.Session, error) {
	sess, err := mailbox.Open(ctx, acct, opts)
	if err != nil {
		return nil, tlsAdvice(err)
	}
	return sess, nil
}

// accessToken returns a usable access token: the cached one while it is
// more than refresh_before_seconds from expiry, else a new one, stored
// (with the rotated refresh token) before it is returned. fresh reports
// whether it was just issued.
func (r *Runner) accessToken(ctx context.Context, mb store.Mailbox, force bool) (token string, fresh bool, err error) {
	return r.token(ctx, mb, OAuthConfig(mb), r.DB.Mailboxes().WithTokenLock, force)
}

// sendToken is accessToken for sending: the same token when the scopes
// are the same, else the one cached in smtp_access_token.
func (r *Runner) sendToken(ctx context.Context, mb store.Mailbox, force bool) (string, bool, error) {
	if sharedToken(mb) {
		return r.accessToken(ctx, mb, force)
	}
	return r.token(ctx, mb, SendOAuthConfig(mb), r.DB.Mailboxes().WithSendTokenLock, force)
}

// tokenLock is WithTokenLock or WithSendTokenLock.
type tokenLock func(ctx context.Context, id int64, fn store.RefreshFunc) (oauth.Token, error)

func (r *Runner) token(ctx context.Context, mb store.Mailbox, cfg oauth.Config, lock tokenLock, force bool) (token string, fresh bool, err error) {
	if err := cfg.ValidateAt(r.now()); err != nil {
		return "", false, err
	}
	before := time.Duration(mb.RefreshBeforeSeconds) * time.Second
	tok, err := lock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
		if !force && !cur.NeedsRefresh(r.now(), before) {
			return cur, nil
		}
		if cfg.Grant != oauth.GrantClientCredentials && cur.RefreshToken == "" {
			return cur, errNoRefreshToken
		}
		fresh = true
		// Not abandoned on ctx (SIGTERM, the mailbox timeout): a provider
		// may already have rotated the refresh token, and only the answer
		// carries the new one. The client's own timeout (30 s) bounds it.
		tok, err := r.oauthFor(mb).Token(context.WithoutCancel(ctx), cfg, cur.RefreshToken)
		r.metrics().TokenRefresh(refreshOutcome(err))
		return tok, err
	})
	return tok.AccessToken, fresh, err
}

// oauthFor is the token client for mb: the runner's, whose "oauth token
// request" lines also name the mailbox. A Client holds settings only, so a
// copy shares its HTTP client and clock.
func (r *Runner) oauthFor(mb store.Mailbox) *oauth.Client {
	c := *r.OAuthClient()
	if c.Logger != nil {
		c.Logger = c.Logger.With("mailbox_id", mb.ID, "mailbox", mb.Name)
	}
	return &c
}

// refreshOutcome names a token request's outcome for Metrics.
func refreshOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case oauth.NeedsReauth(err):
		return "needs_reauth"
	}
	return "error"
}

// openSubmission logs in to the mailbox's SMTP server to send (see logIn).
func (r *Runner) openSubmission(ctx context.Context, mb store.Mailbox) (*mailbox.Submission, error) {
	if err := ValidateSMTP(mb); err != nil {
		return nil, err
	}
	srv, err := SMTPServerOf(mb)
	if err != nil {
		return nil, err
	}
	opts, err := r.connOptions(mb)
	if err != nil {
		return nil, err
	}
	acct := mailbox.Account{
		Protocol: "smtp", Host: srv.Host, Port: srv.Port, Security: srv.Security,
		Username: smtpUsername(mb), Password: mb.Password, AllowPlaintext: mb.AllowPlaintext,
	}
	return logIn(ctx, mb, acct, r.sendToken, false,
		func(ctx context.Context, acct mailbox.Account) (*mailbox.Submission, error) {
			return submit(ctx, acct, opts)
		})
}

func submit(ctx context.Context, acct mailbox.Account, opts *mailbox.Options) (*mailbox.Submission, error) {
	sub, err := mailbox.OpenSubmission(ctx, acct, opts)
	if err != nil {
		return nil, tlsAdvice(err)
	}
	return sub, nil
}

// OAuthConfig maps a mailbox row to its OAuth settings.
func OAuthConfig(mb store.Mailbox) oauth.Config {
	return oauth.Config{
		Provider: mb.OAuthProvider, Grant: mb.OAuthGrant, TenantID: mb.TenantID,
		AuthorityURL: mb.AuthorityURL, AuthURL: mb.AuthURL, TokenURL: mb.TokenURL,
		ClientID: mb.ClientID, ClientSecret: mb.ClientSecret, RedirectURL: mb.RedirectURL,
		ClientCertificate: mb.ClientCertificate, ClientPrivateKey: mb.ClientPrivateKey,
		Scopes: strings.Fields(mb.Scopes), Protocol: mb.Protocol,
	}
}

// account maps a mailbox row to what the mail client needs, without the
// access token.
func account(mb store.Mailbox) mailbox.Account {
	sec := mailbox.Plain
	switch {
	case mb.UseSSL:
		sec = mailbox.TLS
	case mb.StartTLS:
		sec = mailbox.StartTLS
	}
	return mailbox.Account{
		Protocol: mb.Protocol, Host: mb.Host, Port: mb.Port, Security: sec,
		Username: mb.Username, Password: mb.Password, Folder: mb.Folder,
		AllowPlaintext: mb.AllowPlaintext,
	}
}
