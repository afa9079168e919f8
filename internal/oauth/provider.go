package oauth

import (
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Providers, as stored in mailboxes.oauth_provider.
const (
	Microsoft = "microsoft"
	Google    = "google"
	Custom    = "custom"
)

// Grants, as stored in mailboxes.oauth_grant.
const (
	// GrantRefreshToken is delegated access: a person consented once and the
	// worker refreshes with the stored refresh token (RFC 6749 section 6).
	GrantRefreshToken = "refresh_token"
	// GrantClientCredentials is app-only access without a person
	// (RFC 6749 section 4.4). It returns no refresh token.
	GrantClientCredentials = "client_credentials"
)

// DefaultAuthority is Microsoft's global-cloud login host, used when
// mailboxes.authority_url is empty.
const DefaultAuthority = "https://login.microsoftonline.com"

// Scopes used by the defaults.
const (
	scopeOfflineAccess = "offline_access"
	scopeGoogleMail    = "https://mail.google.com/"
	googleAuthURL      = "https://accounts.google.com/o/oauth2/auth"
	googleTokenURL     = "https://oauth2.googleapis.com/token"
	googleDeviceURL    = "https://oauth2.googleapis.com/device/code"
)

// Endpoint returns the provider's authorize, token and device code URLs.
//
// For Microsoft they are {authority}/{tenant}/oauth2/v2.0/{authorize,token,devicecode},
// with tenant "common" and authority [DefaultAuthority] when unset. The client
// credentials always go in the POST body (AuthStyleInParams): with the zero
// AuthStyle x/oauth2 probes by retrying a failed request, which doubles the
// requests of every failure and can burn a single-use refresh token.
func (c Config) Endpoint() (oauth2.Endpoint, error) {
	switch c.Provider {
	case Microsoft:
		return c.microsoftEndpoint(), nil
	case Google:
		return oauth2.Endpoint{AuthURL: googleAuthURL, TokenURL: googleTokenURL,
			DeviceAuthURL: googleDeviceURL, AuthStyle: oauth2.AuthStyleInParams}, nil
	case Custom:
		if err := checkURL("token_url", c.TokenURL, true); err != nil {
			return oauth2.Endpoint{}, err
		}
		return oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL,
			AuthStyle: oauth2.AuthStyleInParams}, nil
	}
	return oauth2.Endpoint{}, unknownProvider(c.Provider)
}

func (c Config) microsoftEndpoint() oauth2.Endpoint {
	base := c.authority() + "/" + url.PathEscape(c.tenant()) + "/oauth2/v2.0/"
	return oauth2.Endpoint{
		AuthURL:       base + "authorize",
		TokenURL:      base + "token",
		DeviceAuthURL: base + "devicecode",
		AuthStyle:     oauth2.AuthStyleInParams,
	}
}

func (c Config) authority() string {
	a := strings.TrimSpace(c.AuthorityURL)
	if a == "" {
		a = DefaultAuthority
	}
	return strings.TrimRight(a, "/")
}

func (c Config) tenant() string {
	if t := strings.TrimSpace(c.TenantID); t != "" {
		return t
	}
	return "common"
}

// grant returns c.Grant, defaulting to [GrantRefreshToken] like the
// mailboxes.oauth_grant column.
func (c Config) grant() string {
	if c.Grant == "" {
		return GrantRefreshToken
	}
	return c.Grant
}

// DefaultScopes returns the scopes a mailbox needs when mailboxes.scopes is
// empty, for Microsoft's global cloud. Microsoft delegated access needs
// offline_access (else no refresh token comes back) plus one Exchange scope
// per protocol; app-only access takes the resource's /.default. Google needs
// the full mail scope. A custom provider has no defaults. An unknown protocol
// returns nil.
func DefaultScopes(provider, protocol, grant string) []string {
	switch provider {
	case Microsoft:
		return microsoftScopes(cloudOf(DefaultAuthority), protocol, grant)
	case Google:
		return []string{scopeGoogleMail}
	}
	return nil
}

// EffectiveScopes returns the scopes to request: Scopes (each entry split on
// spaces) or the defaults for the provider, protocol, grant and Microsoft
// cloud (chosen by AuthorityURL). Microsoft delegated grants always include
// offline_access.
func (c Config) EffectiveScopes() []string {
	scopes := splitScopes(c.Scopes)
	if len(scopes) == 0 && c.Provider == Microsoft {
		scopes = microsoftScopes(cloudOf(c.authority()), c.Protocol, c.grant())
	} else if len(scopes) == 0 {
		scopes = DefaultScopes(c.Provider, c.Protocol, c.grant())
	}
	if c.Provider == Microsoft && c.grant() == GrantRefreshToken && len(scopes) > 0 &&
		!contains(scopes, scopeOfflineAccess) {
		scopes = append([]string{scopeOfflineAccess}, scopes...)
	}
	return scopes
}

func splitScopes(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
