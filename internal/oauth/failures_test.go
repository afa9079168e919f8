package oauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// TestToken_Failures runs every row of the AADSTS table (CONTEXT.md) and the
// provider-trouble cases through a real HTTP round trip.
func TestToken_Failures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		failure    oauthtest.Failure
		wantStatus int
		wantCode   string
		wantAADSTS int
		wantReauth bool
		wantAdvice string
		wantRetry  time.Duration
	}{
		{"70008 expired", oauthtest.ExpiredRefreshToken(), 400, "invalid_grant", 70008, true, `run fetcher authorize "<mailbox name>" to sign in again and store a new refresh token`, 0},
		{"700082 unused 90 days", oauthtest.UnusedRefreshToken(), 400, "invalid_grant", 700082, true, "run fetcher authorize", 0},
		{"50173 revoked", oauthtest.GrantRevoked(), 400, "invalid_grant", 50173, true, "password reset", 0},
		{"54005 code redeemed", oauthtest.CodeRedeemed(), 400, "invalid_grant", 54005, true, "restart the authorize flow", 0},
		{"65001 consent", oauthtest.ConsentMissing(), 400, "invalid_grant", 65001, true, "admin consent", 0},
		{"7000215 wrong secret", oauthtest.WrongSecret(), 401, "invalid_client", 7000215, true, "Value (shown once when it was created), not its Secret ID", 0},
		{"7000222 secret expired", oauthtest.SecretExpired(), 401, "invalid_client", 7000222, true, "create a new client secret", 0},
		{"50076 MFA", oauthtest.MFARequired(), 400, "invalid_grant", 50076, true, "multi-factor", 0},
		{"53003 conditional access", oauthtest.ConditionalAccess(), 400, "invalid_grant", 53003, true, "Conditional Access", 0},
		{"90002 tenant not found", oauthtest.TenantNotFound(), 400, "invalid_request", 90002, true, "fix tenant_id", 0},
		{"700016 app not found", oauthtest.AppNotFound(), 400, "unauthorized_client", 700016, true, "fix client_id or tenant_id", 0},
		{"50194 single tenant on common", oauthtest.SingleTenantOnCommon(), 400, "invalid_request", 50194, true, "instead of common", 0},
		{"900144 scope missing", oauthtest.ScopeMissing(), 400, "invalid_request", 900144, true, "scopes", 0},
		{"google expired or revoked", oauthtest.GoogleExpiredOrRevoked(), 400, "invalid_grant", 0, true, "expire after 7 days", 0},
		{"503", oauthtest.Unavailable(), 503, "temporarily_unavailable", 90033, false, "retries with backoff", 0},
		{"503 retry-after", withRetry(oauthtest.Unavailable(), 2*time.Minute), 503, "temporarily_unavailable", 90033, false, "retries with backoff", 2 * time.Minute},
		{"502 from a proxy", oauthtest.BadGateway(), 502, "", 0, false, "retries with backoff", 0},
		{"429 throttled", oauthtest.Throttled(30 * time.Second), 429, "temporarily_unavailable", 0, false, "retries with backoff", 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			b.srv.FailNext(tt.failure)

			_, err := b.client.Token(context.Background(), b.cfg, b.refreshToken())

			var e *oauth.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, 1, b.srv.Requests(), "one failed refresh must cost one request")
			require.Equal(t, tt.wantStatus, e.Status)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, tt.wantAADSTS, e.AADSTS)
			require.Equal(t, tt.wantReauth, e.Reauth)
			require.Equal(t, tt.wantReauth, oauth.NeedsReauth(err))
			require.Equal(t, !tt.wantReauth, oauth.IsTemporary(err))
			require.Contains(t, e.Advice, tt.wantAdvice)
			require.Equal(t, tt.wantRetry, e.RetryAfter)
			require.NotContains(t, e.Description, "\n")
			require.NotContains(t, e.Description, "Trace ID")
			require.Contains(t, err.Error(), "Do this: "+e.Advice)
			require.Contains(t, b.logs.String(), "client_request_id="+e.ClientRequestID)
			require.Contains(t, b.logs.String(), "level=WARN")
		})
	}
}

func withRetry(f oauthtest.Failure, d time.Duration) oauthtest.Failure {
	f.RetryAfter = d
	return f
}

// TestToken_ServerRefusals checks the server's own decisions, not injected
// failures, map to the same errors.
func TestToken_ServerRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        func(oauth.Config) oauth.Config
		refresh    func(b *testBundle) string
		wantStatus int
		wantAADSTS int
	}{
		{"wrong secret", func(c oauth.Config) oauth.Config {
			c.ClientSecret = "11111111-aaaa-bbbb-cccc-secret-id"
			return c
		}, (*testBundle).refreshToken, 401, 7000215},
		{"unknown refresh token", func(c oauth.Config) oauth.Config { return c },
			func(*testBundle) string { return "1.AXoA-unknown" }, 400, 70008},
		{"scope not consented", func(c oauth.Config) oauth.Config {
			c.Protocol = "pop3"
			return c
		}, (*testBundle).refreshToken, 400, 65001},
		{"unknown client", func(c oauth.Config) oauth.Config {
			c.ClientID = "99999999-0000-0000-0000-000000000000"
			return c
		}, (*testBundle).refreshToken, 400, 700016},
		{"password reset", func(c oauth.Config) oauth.Config { return c },
			func(b *testBundle) string {
				rt := b.refreshToken()
				b.srv.RevokeUser(testUser)
				return rt
			}, 400, 50173},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			_, err := b.client.Token(context.Background(), tt.cfg(b.cfg), tt.refresh(b))
			var e *oauth.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantStatus, e.Status)
			require.Equal(t, tt.wantAADSTS, e.AADSTS)
			require.True(t, oauth.NeedsReauth(err))
			require.Equal(t, 1, b.srv.Requests())
		})
	}
}

func TestToken_GoogleStyleCustomProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{RotateOff: true})
	cfg := oauth.Config{Provider: oauth.Custom, TokenURL: b.srv.TokenURL(""),
		ClientID: testClientID, ClientSecret: testSecret, Scopes: []string{"mail"}}
	rt := b.srv.IssueRefreshToken(testClientID, testUser)

	tok, err := b.client.Token(context.Background(), cfg, rt)
	require.NoError(t, err)
	require.Equal(t, rt, tok.RefreshToken)
	require.Equal(t, "mail", b.srv.RequestLog()[0].Scope)
}
