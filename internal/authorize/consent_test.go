package authorize_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestAdminConsentURL(t *testing.T) {
	t.Parallel()
	base := oauth.Config{Provider: oauth.Microsoft, ClientID: "app-1", RedirectURL: loopback, Protocol: "imap"}
	tests := []struct {
		name      string
		edit      func(c *oauth.Config)
		wantPath  string
		wantScope string
	}{
		{"tenant id", func(c *oauth.Config) { c.TenantID = "contoso.onmicrosoft.com" },
			"/contoso.onmicrosoft.com/v2.0/adminconsent", "offline_access https://outlook.office.com/IMAP.AccessAsUser.All"},
		{"common becomes organizations", func(c *oauth.Config) { c.TenantID = "common" },
			"/organizations/v2.0/adminconsent", "offline_access https://outlook.office.com/IMAP.AccessAsUser.All"},
		{"app-only", func(c *oauth.Config) { c.TenantID, c.Grant = "contoso.example", oauth.GrantClientCredentials },
			"/contoso.example/v2.0/adminconsent", "https://outlook.office365.com/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tt.edit(&cfg)
			raw, err := authorize.AdminConsentURL(cfg)
			require.NoError(t, err)
			u, err := url.Parse(raw)
			require.NoError(t, err)
			require.Equal(t, "login.microsoftonline.com", u.Host)
			require.Equal(t, tt.wantPath, u.Path)
			q := u.Query()
			require.Equal(t, "app-1", q.Get("client_id"))
			require.Equal(t, tt.wantScope, q.Get("scope"))
			require.Equal(t, loopback, q.Get("redirect_uri"))
			require.NotEmpty(t, q.Get("state"))
		})
	}
}

func TestAdminConsentURLRefuses(t *testing.T) {
	t.Parallel()
	_, err := authorize.AdminConsentURL(oauth.Config{Provider: oauth.Google, ClientID: "x"})
	require.ErrorIs(t, err, authorize.ErrNotMicrosoft)
	_, err = authorize.AdminConsentURL(oauth.Config{Provider: oauth.Microsoft, ClientID: "x", TenantID: "consumers"})
	require.ErrorContains(t, err, "no administrator")
}
