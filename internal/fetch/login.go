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

// open logs in to the mailbox's server. With OAuth, a login refused with a
// cached access token is retried once with a freshly refreshed one: the
// provider may have revoked the cached token early.
func (r *Runner) open(ctx context.Context, mb store.Mailbox, forceRefresh bool) (mailbox.Session, error) {
	opts, err := r.connOptions(mb)
	if err != nil {
		return nil, err
	}
	r.warnSkipVerify(mb)
	acct := account(mb)
	if mb.AuthType != "oauth2" {
		return dial(ctx, acct, opts)
	}
	tok, fresh, err := r.accessToken(ctx, mb, forceRefresh)
	if err != nil {
		return nil, err
	}
	acct.AccessToken = tok
	sess, err := dial(ctx, acct, opts)
	if err == nil || fresh || !mailbox.IsAuth(err) {
		return sess, err
	}
	if acct.AccessToken, _, err = r.accessToken(ctx, mb, true); err != nil {
		return nil, err
	}
	return dial(ctx, acct, opts)
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
	cfg := OAuthConfig(mb)
	if err := cfg.ValidateAt(r.now()); err != nil {
		return "", false, err
	}
	before := time.Duration(mb.RefreshBeforeSeconds) * time.Second
	tok, err := r.DB.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
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
		return r.OAuthClient().Token(context.WithoutCancel(ctx), cfg, cur.RefreshToken)
	})
	return tok.AccessToken, fresh, err
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
