package oauthtest_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

func endpoint(srv *oauthtest.Server) oauth2.Endpoint {
	base := srv.URL() + "/" + tenant + "/oauth2/v2.0/"
	return oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token",
		DeviceAuthURL: base + "devicecode", AuthStyle: oauth2.AuthStyleInParams}
}

// authorize follows the authorize URL like a browser whose user consents,
// returning the redirect's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := noFollow.Get(authURL)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", loc.Hostname())
	return loc.Query()
}

func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		scopes      []string
		wantRefresh bool
	}{
		{"offline_access: refresh token", []string{"offline_access", imap}, true},
		{"no offline_access: no refresh token", []string{imap}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: endpoint(b.srv),
				RedirectURL: "http://127.0.0.1/testApp/", Scopes: tt.scopes}
			verifier := oauth2.GenerateVerifier()
			q := authorize(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier),
				oauth2.SetAuthURLParam("login_hint", user)))
			require.Equal(t, "st4te", q.Get("state"))

			ctx := context.Background()
			_, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-verifier"))
			requireAADSTS(t, err, 501481)
			tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			require.NoError(t, err)
			require.Equal(t, tt.wantRefresh, tok.RefreshToken != "")
			got, ok := b.srv.AccessTokenUser(tok.AccessToken)
			require.True(t, ok)
			require.Equal(t, user, got)

			_, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			requireAADSTS(t, err, 54005)
		})
	}
}

func TestAuthorizeRejectsUnknownClient(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	cfg := oauth2.Config{ClientID: "nobody", Endpoint: endpoint(b.srv), RedirectURL: "http://127.0.0.1/"}
	resp, err := http.Get(cfg.AuthCodeURL("s"))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestDeviceCodeFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.AddClient("desktop", "")
	cfg := oauth2.Config{ClientID: "desktop", Endpoint: endpoint(b.srv),
		Scopes: []string{"offline_access", imap}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	da, err := cfg.DeviceAuth(ctx)
	require.NoError(t, err)
	require.Len(t, da.UserCode, 9)
	require.Contains(t, da.VerificationURI, b.srv.URL())
	require.False(t, b.srv.ApproveDevice("WRONGCODE", user))
	require.True(t, b.srv.ApproveDevice(da.UserCode, user))

	tok, err := cfg.DeviceAccessToken(ctx, da)
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	got, ok := b.srv.AccessTokenUser(tok.AccessToken)
	require.True(t, ok)
	require.Equal(t, user, got)
}

func TestDeviceCodePending(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.AddClient("desktop", "")
	cfg := oauth2.Config{ClientID: "desktop", Endpoint: endpoint(b.srv), Scopes: []string{imap}}
	da, err := cfg.DeviceAuth(context.Background())
	require.NoError(t, err)

	r := b.post(t, tenant, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id": {"desktop"}, "device_code": {da.DeviceCode}})
	require.Equal(t, "authorization_pending", r.str("error"))
	require.Equal(t, 70016, r.aadsts())

	b.clock.Add(time.Hour)
	r = b.post(t, tenant, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id": {"desktop"}, "device_code": {da.DeviceCode}})
	require.Equal(t, "expired_token", r.str("error"))
}

func requireAADSTS(t *testing.T, err error, code int) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Contains(t, re.ErrorDescription, "AADSTS"+strconv.Itoa(code)+":")
}
