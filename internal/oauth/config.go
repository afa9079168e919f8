package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config is one mailbox's OAuth settings, as stored in the mailboxes table.
// Field comments name the column.
type Config struct {
	Provider     string // oauth_provider: Microsoft, Google or Custom
	Grant        string // oauth_grant: GrantRefreshToken (default) or GrantClientCredentials
	TenantID     string // tenant_id: Microsoft directory id or domain; default "common"
	AuthorityURL string // authority_url: Microsoft login host; default DefaultAuthority
	AuthURL      string // auth_url: custom provider's authorize endpoint
	TokenURL     string // token_url: custom provider's token endpoint
	ClientID     string // client_id
	ClientSecret string // client_secret: empty for public (desktop) clients
	// ClientCertificate and ClientPrivateKey (PEM) are a certificate
	// credential: a client assertion (RFC 7523) signed with the RSA key
	// replaces the secret. When set, ClientSecret is ignored and never sent.
	// See [Config.ClientAuthParams] and docs/certificate-credential.md.
	ClientCertificate string   // client_certificate: the leaf first; a chain or key+cert file works
	ClientPrivateKey  string   // client_private_key: PKCS#8 or PKCS#1 RSA, unencrypted
	RedirectURL       string   // redirect_url: registered redirect URI (authorize flow only)
	Scopes            []string // scopes; empty: DefaultScopes(Provider, Protocol, Grant)
	Protocol          string   // "imap", "pop3" or "smtp": picks the default scopes
}

// ConfigError is a mailbox setting that cannot work. A person must fix the
// named mailboxes column; retrying does not help.
type ConfigError struct {
	Column  string // mailboxes column, e.g. "tenant_id"
	Problem string // e.g. "is required for client_credentials"
	Fix     string // e.g. "set it to the directory (tenant) id"
}

// Error returns e.g. "tenant_id is required for client_credentials: set it
// to the directory (tenant) id".
func (e *ConfigError) Error() string {
	return e.Column + " " + e.Problem + ": " + e.Fix
}

// Validate reports every setting that cannot work, joined (see
// [errors.Join]); each is a [*ConfigError] naming the column and the fix.
// A certificate credential's validity is checked against time.Now.
func (c Config) Validate() error { return c.ValidateAt(time.Now()) }

// ValidateAt is [Config.Validate] with the clock: a certificate credential
// that is expired (or not yet valid) at now is an error.
func (c Config) ValidateAt(now time.Time) error {
	checks := []func() error{c.checkProvider, c.checkGrant, c.checkClientID,
		c.checkEndpoints, c.checkTenant, c.checkSecret, c.checkScopes,
		func() error { return c.checkCertificate(now) }}
	var errs []error
	for _, check := range checks {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) checkProvider() error {
	switch c.Provider {
	case Microsoft, Google, Custom:
		return nil
	case "":
		return &ConfigError{"oauth_provider", "is required", "set it to microsoft, google or custom"}
	}
	return unknownProvider(c.Provider)
}

func unknownProvider(p string) error {
	return &ConfigError{"oauth_provider", fmt.Sprintf("%q is unknown", p),
		"set it to microsoft, google or custom"}
}

func (c Config) checkGrant() error {
	switch {
	case c.grant() != GrantRefreshToken && c.grant() != GrantClientCredentials:
		return &ConfigError{"oauth_grant", fmt.Sprintf("%q is unknown", c.Grant),
			"set it to refresh_token or client_credentials"}
	case c.Provider == Google && c.grant() == GrantClientCredentials:
		return &ConfigError{"oauth_grant", "client_credentials is not supported for google",
			"use refresh_token and authorize the mailbox (Gmail has no app-only secret grant)"}
	}
	return nil
}

func (c Config) checkClientID() error {
	if strings.TrimSpace(c.ClientID) == "" {
		return &ConfigError{"client_id", "is required",
			"set it to the application (client) id of the app registration"}
	}
	return nil
}

func (c Config) checkEndpoints() error {
	switch c.Provider {
	case Microsoft:
		return checkURL("authority_url", c.AuthorityURL, false)
	case Custom:
		return errors.Join(checkURL("token_url", c.TokenURL, true),
			checkURL("auth_url", c.AuthURL, false))
	}
	return nil
}

// checkURL does not echo the value: a custom URL could carry a key in its query.
func checkURL(column, raw string, required bool) error {
	if raw == "" && !required {
		return nil
	}
	if raw == "" {
		return &ConfigError{column, "is required for oauth_provider custom",
			"set it to the provider's endpoint URL"}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &ConfigError{column, "is not an absolute http(s) URL",
			"set it to a URL like https://login.example.com/..."}
	}
	return nil
}

// String prints c without the client secret or private key, so %v and %s
// are safe in logs.
func (c Config) String() string {
	return fmt.Sprintf("{provider=%s grant=%s tenant=%s client_id=%s client_secret=%s "+
		"client_certificate=%s client_private_key=%s scopes=%q}",
		c.Provider, c.grant(), c.tenant(), c.ClientID, redacted(c.ClientSecret),
		redacted(c.ClientCertificate), redacted(c.ClientPrivateKey), c.EffectiveScopes())
}

// GoString keeps %#v from printing the client secret or private key.
func (c Config) GoString() string { return "oauth.Config" + c.String() }

// LogValue keeps slog from printing the client secret or private key.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func redacted(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return "(set)"
}
