package oauth_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestEndpoint(t *testing.T) {
	t.Parallel()
	ms := func(base string) oauth2.Endpoint {
		return oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token",
			DeviceAuthURL: base + "devicecode", AuthStyle: oauth2.AuthStyleInParams}
	}
	tests := []struct {
		name    string
		cfg     oauth.Config
		want    oauth2.Endpoint
		wantErr string
	}{
		{"microsoft default tenant", oauth.Config{Provider: oauth.Microsoft},
			ms("https://login.microsoftonline.com/common/oauth2/v2.0/"), ""},
		{"microsoft tenant", oauth.Config{Provider: oauth.Microsoft, TenantID: "contoso.onmicrosoft.com"},
			ms("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/"), ""},
		{"authority with trailing slash", oauth.Config{Provider: oauth.Microsoft,
			TenantID: "t1", AuthorityURL: "http://127.0.0.1:8080/"},
			ms("http://127.0.0.1:8080/t1/oauth2/v2.0/"), ""},
		{"us gov authority", oauth.Config{Provider: oauth.Microsoft,
			TenantID: "aaaa-bbbb", AuthorityURL: "https://login.microsoftonline.us"},
			ms("https://login.microsoftonline.us/aaaa-bbbb/oauth2/v2.0/"), ""},
		{"google", oauth.Config{Provider: oauth.Google}, oauth2.Endpoint{
			AuthURL:       "https://accounts.google.com/o/oauth2/auth",
			TokenURL:      "https://oauth2.googleapis.com/token",
			DeviceAuthURL: "https://oauth2.googleapis.com/device/code",
			AuthStyle:     oauth2.AuthStyleInParams}, ""},
		{"custom", oauth.Config{Provider: oauth.Custom, AuthURL: "https://id.example/auth",
			TokenURL: "https://id.example/token"}, oauth2.Endpoint{AuthURL: "https://id.example/auth",
			TokenURL: "https://id.example/token", AuthStyle: oauth2.AuthStyleInParams}, ""},
		{"custom without token_url", oauth.Config{Provider: oauth.Custom}, oauth2.Endpoint{},
			"token_url is required for oauth_provider custom"},
		{"unknown provider", oauth.Config{Provider: "yahoo"}, oauth2.Endpoint{},
			`oauth_provider "yahoo" is unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.cfg.Endpoint()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDefaultScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, protocol, grant string
		want                      []string
	}{
		{oauth.Microsoft, "imap", oauth.GrantRefreshToken, []string{"offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All"}},
		{oauth.Microsoft, "pop3", oauth.GrantRefreshToken, []string{"offline_access", "https://outlook.office.com/POP.AccessAsUser.All"}},
		{oauth.Microsoft, "smtp", oauth.GrantRefreshToken, []string{"offline_access", "https://outlook.office.com/SMTP.Send"}},
		{oauth.Microsoft, "imap", oauth.GrantClientCredentials, []string{"https://outlook.office365.com/.default"}},
		{oauth.Microsoft, "pop3", oauth.GrantClientCredentials, []string{"https://outlook.office365.com/.default"}},
		{oauth.Microsoft, "nntp", oauth.GrantRefreshToken, nil},
		{oauth.Google, "imap", oauth.GrantRefreshToken, []string{"https://mail.google.com/"}},
		{oauth.Google, "smtp", oauth.GrantRefreshToken, []string{"https://mail.google.com/"}},
		{oauth.Custom, "imap", oauth.GrantRefreshToken, nil},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.protocol+"/"+tt.grant, func(t *testing.T) {
			t.Parallel()
			got := oauth.DefaultScopes(tt.provider, tt.protocol, tt.grant)
			require.Equal(t, tt.want, got, "DefaultScopes() = %v, want %v", got, tt.want)
		})
	}
}

func TestEffectiveScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  oauth.Config
		want []string
	}{
		{"defaults", oauth.Config{Provider: oauth.Microsoft, Protocol: "imap"},
			[]string{"offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All"}},
		{"empty grant is refresh_token", oauth.Config{Provider: oauth.Microsoft, Protocol: "pop3", Grant: ""},
			[]string{"offline_access", "https://outlook.office.com/POP.AccessAsUser.All"}},
		{"explicit scopes get offline_access", oauth.Config{Provider: oauth.Microsoft,
			Scopes: []string{"https://outlook.office.com/SMTP.Send"}},
			[]string{"offline_access", "https://outlook.office.com/SMTP.Send"}},
		{"space separated column", oauth.Config{Provider: oauth.Microsoft,
			Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All offline_access"}},
			[]string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}},
		{"client credentials: no offline_access", oauth.Config{Provider: oauth.Microsoft,
			Grant: oauth.GrantClientCredentials, Scopes: []string{"https://outlook.office365.com/.default"}},
			[]string{"https://outlook.office365.com/.default"}},
		{"us gov cloud", oauth.Config{Provider: oauth.Microsoft, Protocol: "imap",
			AuthorityURL: "https://login.microsoftonline.us/"},
			[]string{"offline_access", "https://outlook.office365.us/IMAP.AccessAsUser.All"}},
		{"china cloud app-only", oauth.Config{Provider: oauth.Microsoft, Protocol: "pop3",
			Grant: oauth.GrantClientCredentials, AuthorityURL: "https://login.partner.microsoftonline.cn"},
			[]string{"https://partner.outlook.cn/.default"}},
		{"google", oauth.Config{Provider: oauth.Google, Protocol: "pop3"}, []string{"https://mail.google.com/"}},
		{"custom", oauth.Config{Provider: oauth.Custom, Scopes: []string{"a b", "c"}}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.cfg.EffectiveScopes())
		})
	}
}
