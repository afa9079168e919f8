package oauthtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

func TestTokenResponseShape(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	rt := b.srv.IssueRefreshToken(clientID, user, "offline_access", imap)

	r := b.post(t, tenant, refreshForm(rt))

	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "Bearer", r.str("token_type"))
	require.Equal(t, "offline_access "+imap, r.str("scope"))
	require.InDelta(t, 3599, r.body["expires_in"], 0)
	require.InDelta(t, 3599, r.body["ext_expires_in"], 0)
	require.Greater(t, len(r.str("access_token")), 1500)
	require.Greater(t, len(r.str("refresh_token")), 1000)
	require.NotEqual(t, rt, r.str("refresh_token"))
	require.Equal(t, "11111111-2222-4333-8444-555555555555", r.header.Get("client-request-id"))
	require.Contains(t, r.header.Get("Cache-Control"), "no-store")
}

func TestErrorBodyShape(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})

	r := b.post(t, tenant, refreshForm("unknown"))

	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "invalid_grant", r.str("error"))
	require.Equal(t, 70008, r.aadsts())
	desc := r.str("error_description")
	require.True(t, strings.HasPrefix(desc, "AADSTS70008: The provided authorization code or refresh "+
		"token has expired due to inactivity."), desc)
	require.Contains(t, desc, "\r\nTrace ID: "+r.str("trace_id")+"\r\nCorrelation ID: ")
	require.Contains(t, desc, "\r\nTimestamp: 2025-03-04 05:06:07Z")
	require.Equal(t, "11111111-2222-4333-8444-555555555555", r.str("correlation_id"))
	require.Equal(t, "2025-03-04 05:06:07Z", r.str("timestamp"))
	require.NotEmpty(t, r.str("trace_id"))
}

func TestTokenEndpointRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tenant     string
		form       func(rt string) url.Values
		wantStatus int
		wantError  string
		wantAADSTS int
	}{
		{"no grant_type", tenant, func(string) url.Values { return url.Values{} }, 400, "invalid_request", 900144},
		{"unsupported grant", tenant, func(string) url.Values {
			return url.Values{"grant_type": {"password"}}
		}, 400, "unsupported_grant_type", 70003},
		{"refresh without scope", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Del("scope")
			return f
		}, 400, "invalid_request", 900144},
		{"refresh with scope not consented", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Set("scope", "https://outlook.office.com/SMTP.Send")
			return f
		}, 400, "invalid_grant", 65001},
		{"refresh with resource /.default", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Set("scope", "https://outlook.office.com/.default")
			return f
		}, 200, "", 0},
		{"wrong secret", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Set("client_secret", "secret-id-not-value")
			return f
		}, 401, "invalid_client", 7000215},
		{"no secret for confidential client", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Del("client_secret")
			return f
		}, 401, "invalid_client", 7000218},
		{"unknown client", tenant, func(rt string) url.Values {
			f := refreshForm(rt)
			f.Set("client_id", "other-app")
			return f
		}, 400, "unauthorized_client", 700016},
		{"custom provider path", "", refreshForm, 200, "", 0},
		{"client credentials", tenant, func(string) url.Values { return ccForm("https://outlook.office365.com/.default") },
			200, "", 0},
		{"client credentials on common", "common", func(string) url.Values {
			return ccForm("https://outlook.office365.com/.default")
		}, 400, "invalid_request", 9001023},
		{"client credentials without /.default", tenant, func(string) url.Values { return ccForm(imap) },
			400, "invalid_scope", 1002012},
		{"client credentials without scope", tenant, func(string) url.Values { return ccForm("") },
			400, "invalid_request", 900144},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			rt := b.srv.IssueRefreshToken(clientID, user, "offline_access", imap)
			r := b.post(t, tt.tenant, tt.form(rt))
			require.Equal(t, tt.wantStatus, r.status, "body: %v", r.body)
			require.Equal(t, tt.wantError, r.str("error"))
			require.Equal(t, tt.wantAADSTS, r.aadsts())
		})
	}
}

func ccForm(scope string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

func TestPublicClientRules(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.AddClient("desktop", "")
	rt := b.srv.IssueRefreshToken("desktop", user)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {"desktop"}, "scope": {imap}}

	withSecret := b.post(t, tenant, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {"desktop"}, "client_secret": {"x"}, "scope": {imap}})
	require.Equal(t, 700025, withSecret.aadsts())
	require.Equal(t, http.StatusOK, b.post(t, tenant, form).status)
	cc := b.post(t, tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {"desktop"},
		"scope": {"https://outlook.office365.com/.default"}})
	require.Equal(t, 7000218, cc.aadsts())
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	rt := b.srv.IssueRefreshToken(clientID, user)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {imap}}
	req, err := http.NewRequest(http.MethodPost, b.srv.TokenURL(tenant), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))

	require.Equal(t, http.StatusOK, do(t, req).status)
	require.True(t, b.srv.RequestLog()[0].SecretInHeader)
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	resp, err := http.Get(b.srv.TokenURL(tenant))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestRotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        oauthtest.Options
		wantRotated bool
		wantReuseOK bool
	}{
		{"microsoft: rotate, old stays valid", oauthtest.Options{}, true, true},
		{"strict: reuse rejected", oauthtest.Options{Strict: true}, true, false},
		{"google: no rotation", oauthtest.Options{RotateOff: true, Strict: true}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.opts)
			rt := b.srv.IssueRefreshToken(clientID, user)
			first := b.post(t, tenant, refreshForm(rt))
			require.Equal(t, http.StatusOK, first.status)
			require.Equal(t, tt.wantRotated, first.str("refresh_token") != "")

			again := b.post(t, tenant, refreshForm(rt))
			require.Equal(t, tt.wantReuseOK, again.status == http.StatusOK, "reuse: %v", again.body)
			if !tt.wantReuseOK {
				require.Equal(t, 70008, again.aadsts())
			}
		})
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{AccessTokenLifetime: time.Hour})
	r := b.post(t, tenant, refreshForm(b.srv.IssueRefreshToken(clientID, user)))
	at := r.str("access_token")

	got, ok := b.srv.AccessTokenUser(at)
	require.True(t, ok)
	require.Equal(t, user, got)
	_, ok = b.srv.AccessTokenUser("forged")
	require.False(t, ok)

	b.clock.Add(time.Hour)
	_, ok = b.srv.AccessTokenUser(at)
	require.False(t, ok, "AccessTokenUser() accepted an expired token")
}

func TestFailureInjection(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	rt := b.srv.IssueRefreshToken(clientID, user)
	b.srv.FailNext(oauthtest.Throttled(30 * time.Second))
	b.srv.FailNext(oauthtest.GoogleExpiredOrRevoked())
	b.srv.FailNext(oauthtest.BadGateway())
	b.srv.FailNext(oauthtest.Slow(50 * time.Millisecond))

	r := b.post(t, tenant, refreshForm(rt))
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "30", r.header.Get("Retry-After"))

	r = b.post(t, tenant, refreshForm(rt))
	require.Equal(t, map[string]any{"error": "invalid_grant",
		"error_description": "Token has been expired or revoked."}, r.body)

	r = b.post(t, tenant, refreshForm(rt))
	require.Equal(t, http.StatusBadGateway, r.status)
	require.Empty(t, r.body, "a proxy's page is not JSON")

	start := time.Now()
	r = b.post(t, tenant, refreshForm(rt))
	require.Equal(t, http.StatusOK, r.status, "Slow answers normally")
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	f := oauthtest.Unavailable()
	b.srv.SetFailure(&f)
	for range 2 {
		require.Equal(t, http.StatusServiceUnavailable, b.post(t, tenant, refreshForm(rt)).status)
	}
	b.srv.SetFailure(nil)
	require.Equal(t, http.StatusOK, b.post(t, tenant, refreshForm(rt)).status)
	require.Equal(t, 7, b.srv.Requests())
}

func TestRevokeUser(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	rt := b.srv.IssueRefreshToken(clientID, user)
	b.srv.RevokeUser(user)
	r := b.post(t, tenant, refreshForm(rt))
	require.Equal(t, "invalid_grant", r.str("error"))
	require.Equal(t, 50173, r.aadsts())
}

func TestConcurrentRefreshes(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{Strict: true})
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for range 20 {
		rt := b.srv.IssueRefreshToken(clientID, user)
		wg.Go(func() {
			r, err := b.postErr(tenant, refreshForm(rt))
			if _, ok := b.srv.AccessTokenUser(r.str("access_token")); err != nil || !ok {
				r.status = -1
			}
			statuses <- r.status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}
	require.Equal(t, 20, b.srv.Requests())
}
