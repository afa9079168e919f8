package oauth_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

func TestToken_RefreshRotates(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	rt := b.refreshToken()

	tok, err := b.client.Token(context.Background(), b.cfg, rt)
	require.NoError(t, err)
	require.NotEqual(t, rt, tok.RefreshToken, "Token() kept the old refresh token, want the rotated one")
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, b.clock.Now().Add(3599*time.Second), tok.Expiry)
	require.Greater(t, len(tok.AccessToken), 1500, "access token shorter than a real JWT")
	user, ok := b.srv.AccessTokenUser(tok.AccessToken)
	require.True(t, ok)
	require.Equal(t, testUser, user)

	// The rotated token is the one to store: it refreshes again.
	tok2, err := b.client.Token(context.Background(), b.cfg, tok.RefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, tok.RefreshToken, tok2.RefreshToken)
	require.Equal(t, 2, b.srv.Requests())
}

func TestToken_NoRotationKeepsOldRefreshToken(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{RotateOff: true, AccessTokenLifetime: time.Hour})
	rt := b.refreshToken()

	tok, err := b.client.Token(context.Background(), b.cfg, rt)
	require.NoError(t, err)
	require.Equal(t, rt, tok.RefreshToken, "Token() = %q, want the old refresh token kept", tok.RefreshToken)
	require.Equal(t, b.clock.Now().Add(time.Hour), tok.Expiry)
}

func TestToken_StrictRejectsReusedRefreshToken(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{Strict: true})
	rt := b.refreshToken()
	tok, err := b.client.Token(context.Background(), b.cfg, rt)
	require.NoError(t, err)

	_, err = b.client.Token(context.Background(), b.cfg, rt)
	require.ErrorIs(t, err, &oauth.Error{Code: "invalid_grant", AADSTS: 70008})
	require.True(t, oauth.NeedsReauth(err))

	// Reuse revoked the whole family, the rotated token too.
	_, err = b.client.Token(context.Background(), b.cfg, tok.RefreshToken)
	require.ErrorIs(t, err, &oauth.Error{AADSTS: 70008})
}

func TestToken_RequestShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       func(oauth.Config) oauth.Config
		wantScope string
		wantGrant string
	}{
		{"refresh sends default scope", func(c oauth.Config) oauth.Config { return c },
			"offline_access " + imapScope, "refresh_token"},
		{"refresh adds offline_access to custom scopes", func(c oauth.Config) oauth.Config {
			c.Scopes = []string{imapScope}
			return c
		}, "offline_access " + imapScope, "refresh_token"},
		{"pop3 scope", func(c oauth.Config) oauth.Config {
			c.Protocol = "pop3"
			return c
		}, "offline_access https://outlook.office.com/POP.AccessAsUser.All", "refresh_token"},
		{"client credentials", func(c oauth.Config) oauth.Config {
			c.Grant = oauth.GrantClientCredentials
			return c
		}, "https://outlook.office365.com/.default", "client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			rt := b.srv.IssueRefreshToken(testClientID, testUser) // any scope
			_, err := b.client.Token(context.Background(), tt.cfg(b.cfg), rt)
			require.NoError(t, err)
			log := b.srv.RequestLog()
			require.Len(t, log, 1)
			require.Equal(t, tt.wantScope, log[0].Scope)
			require.Equal(t, tt.wantGrant, log[0].GrantType)
			require.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", log[0].Path)
			require.True(t, log[0].SecretInBody, "client_secret not in the POST body")
			require.False(t, log[0].SecretInHeader, "client_secret sent as Basic auth")
		})
	}
}

func TestToken_ClientCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	cfg := b.cfg
	cfg.Grant = oauth.GrantClientCredentials

	tok, err := b.client.Token(context.Background(), cfg, "")
	require.NoError(t, err)
	require.Empty(t, tok.RefreshToken)
	require.Equal(t, b.clock.Now().Add(3599*time.Second), tok.Expiry)
	at, ok := b.srv.AccessToken(tok.AccessToken)
	require.True(t, ok)
	require.True(t, at.AppOnly)
	_, ok = b.srv.AccessTokenUser(tok.AccessToken)
	require.False(t, ok, "AccessTokenUser() accepted an app-only token")
}

func TestToken_PublicClient(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.AddClient("public-app", "")
	cfg := b.cfg
	cfg.ClientID, cfg.ClientSecret = "public-app", ""
	rt := b.srv.IssueRefreshToken("public-app", testUser)

	_, err := b.client.Token(context.Background(), cfg, rt)
	require.NoError(t, err)
	require.False(t, b.srv.RequestLog()[0].SecretInBody)
}

func TestToken_ClientRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	headers := make(chan http.Header, 2)
	b.client.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		headers <- r.Header.Clone()
		return http.DefaultTransport.RoundTrip(r)
	})}
	rt := b.refreshToken()

	tok, err := b.client.Token(context.Background(), b.cfg, rt)
	require.NoError(t, err)
	_, err = b.client.Token(context.Background(), b.cfg, tok.RefreshToken)
	require.NoError(t, err)

	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	log := b.srv.RequestLog()
	require.Len(t, log, 2)
	require.NotEqual(t, log[0].ClientRequestID, log[1].ClientRequestID)
	for _, r := range log {
		require.Regexp(t, uuid4, r.ClientRequestID)
		require.Contains(t, b.logs.String(), "client_request_id="+r.ClientRequestID)
	}
	for range 2 {
		require.Equal(t, "true", (<-headers).Get("return-client-request-id"))
	}
}

func TestToken_ErrorCarriesRequestIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	_, err := b.client.Token(context.Background(), b.cfg, "not-a-refresh-token")

	var e *oauth.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, b.srv.RequestLog()[0].ClientRequestID, e.ClientRequestID)
	require.Equal(t, e.ClientRequestID, e.CorrelationID, "Microsoft echoes client-request-id as correlation id")
	require.NotEmpty(t, e.TraceID)
	require.Contains(t, e.Error(), "trace_id="+e.TraceID)
	require.NotContains(t, e.Description, "Trace ID")
}

func TestToken_ConfigErrorsMakeNoRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     func(oauth.Config) oauth.Config
		refresh string
		want    string
	}{
		{"no refresh token", func(c oauth.Config) oauth.Config { return c }, "",
			"refresh_token is empty: authorize the mailbox"},
		{"client credentials on common", func(c oauth.Config) oauth.Config {
			c.Grant, c.TenantID = oauth.GrantClientCredentials, "common"
			return c
		}, "", "tenant_id cannot be common for client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			_, err := b.client.Token(context.Background(), tt.cfg(b.cfg), tt.refresh)
			require.ErrorContains(t, err, tt.want)
			require.True(t, oauth.NeedsReauth(err))
			require.False(t, oauth.IsTemporary(err))
			require.Zero(t, b.srv.Requests())
		})
	}
}

func TestToken_SlowEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration // ctx deadline; 0: none
		client  *http.Client
	}{
		{"ctx deadline", 200 * time.Millisecond, nil},
		{"http client timeout", 0, &http.Client{Timeout: 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			b.srv.FailNext(oauthtest.Slow(10 * time.Second))
			b.client.HTTPClient = tt.client
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := b.client.Token(ctx, b.cfg, b.refreshToken())
			require.Error(t, err)
			require.Less(t, time.Since(start), 5*time.Second, "Token() ignored the deadline")
			require.True(t, oauth.IsTemporary(err))
			require.False(t, oauth.NeedsReauth(err))
			require.Contains(t, b.logs.String(), "outcome=timeout")
		})
	}
}

func TestToken_NetworkError(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.Close()

	_, err := b.client.Token(context.Background(), b.cfg, "some-refresh-token-value")
	require.ErrorContains(t, err, "token request: ")
	require.True(t, oauth.IsTemporary(err))
	require.False(t, oauth.NeedsReauth(err))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
