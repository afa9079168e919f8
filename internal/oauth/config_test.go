package oauth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := oauth.Config{Provider: oauth.Microsoft, TenantID: "contoso.example",
		ClientID: "app", ClientSecret: "secret", Protocol: "imap"}
	with := func(f func(*oauth.Config)) oauth.Config {
		c := valid
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  oauth.Config
		want []string // substrings of the error; none: valid
	}{
		{"valid delegated", valid, nil},
		{"valid public client", with(func(c *oauth.Config) { c.ClientSecret = "" }), nil},
		{"valid client credentials", with(func(c *oauth.Config) { c.Grant = oauth.GrantClientCredentials }), nil},
		{"valid google", oauth.Config{Provider: oauth.Google, ClientID: "app", Protocol: "imap"}, nil},
		{"valid custom", oauth.Config{Provider: oauth.Custom, ClientID: "app", TokenURL: "https://id.example/token"}, nil},
		{"no provider", with(func(c *oauth.Config) { c.Provider = "" }),
			[]string{"oauth_provider is required: set it to microsoft, google or custom"}},
		{"unknown provider", with(func(c *oauth.Config) { c.Provider = "yahoo" }),
			[]string{`oauth_provider "yahoo" is unknown`}},
		{"unknown grant", with(func(c *oauth.Config) { c.Grant = "password" }),
			[]string{`oauth_grant "password" is unknown: set it to refresh_token or client_credentials`}},
		{"no client id", with(func(c *oauth.Config) { c.ClientID = " " }),
			[]string{"client_id is required: set it to the application (client) id"}},
		{"client credentials without tenant", with(func(c *oauth.Config) {
			c.Grant, c.TenantID = oauth.GrantClientCredentials, ""
		}), []string{"tenant_id is required for client_credentials: set it to the directory (tenant) id"}},
		{"client credentials on organizations", with(func(c *oauth.Config) {
			c.Grant, c.TenantID = oauth.GrantClientCredentials, "Organizations"
		}), []string{"tenant_id cannot be organizations for client_credentials"}},
		{"client credentials on consumers", with(func(c *oauth.Config) {
			c.Grant, c.TenantID = oauth.GrantClientCredentials, "consumers"
		}), []string{"tenant_id cannot be consumers"}},
		{"client credentials without secret", with(func(c *oauth.Config) {
			c.Grant, c.ClientSecret = oauth.GrantClientCredentials, ""
		}), []string{"client_secret is required for client_credentials"}},
		{"client credentials with delegated scope", with(func(c *oauth.Config) {
			c.Grant, c.Scopes = oauth.GrantClientCredentials, []string{"https://outlook.office.com/IMAP.AccessAsUser.All"}
		}), []string{"scopes must end in /.default for client_credentials"}},
		{"google client credentials", oauth.Config{Provider: oauth.Google, ClientID: "app",
			Grant: oauth.GrantClientCredentials, ClientSecret: "s", Protocol: "imap"},
			[]string{"oauth_grant client_credentials is not supported for google"}},
		{"custom without token_url", oauth.Config{Provider: oauth.Custom, ClientID: "app"},
			[]string{"token_url is required for oauth_provider custom"}},
		{"custom with relative token_url", oauth.Config{Provider: oauth.Custom, ClientID: "app", TokenURL: "/token"},
			[]string{"token_url is not an absolute http(s) URL"}},
		{"bad authority", with(func(c *oauth.Config) { c.AuthorityURL = "login.microsoftonline.com" }),
			[]string{"authority_url is not an absolute http(s) URL"}},
		{"no protocol, no scopes", with(func(c *oauth.Config) { c.Protocol = "" }),
			[]string{"scopes is empty and protocol (none) has no default"}},
		{"several problems", oauth.Config{Provider: oauth.Microsoft, Grant: oauth.GrantClientCredentials},
			[]string{"client_id is required", "tenant_id is required", "client_secret is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, want := range tt.want {
				require.ErrorContains(t, err, want)
			}
			var ce *oauth.ConfigError
			require.ErrorAs(t, err, &ce)
			require.True(t, oauth.NeedsReauth(err))
			require.False(t, oauth.IsTemporary(err))
		})
	}
}

func TestConfigStringHidesSecret(t *testing.T) {
	t.Parallel()
	cfg := oauth.Config{Provider: oauth.Microsoft, ClientID: "app", ClientSecret: "very-secret-value", Protocol: "imap"}
	require.NotContains(t, cfg.String()+cfg.GoString()+cfg.LogValue().String(), "very-secret-value")
}
