package fetch

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0.5, time.Minute},
		{2, 0.5, 2 * time.Minute},
		{5, 0.5, 16 * time.Minute},
		{7, 0.5, time.Hour}, // 64 min capped
		{40, 0.5, time.Hour},
		{1, 0, 48 * time.Second},
		{1, 1, 72 * time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, backoff(tt.n, tt.jitter), "backoff(%d, %v)", tt.n, tt.jitter)
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	base := store.Mailbox{Name: "m", Host: "h", RefreshToken: "rt-1"}
	parked := base
	parked.ReauthFingerprint = fingerprint(base, nil)
	fixed := parked
	fixed.RefreshToken = "rt-2" // the admin pasted a new refresh token
	waiting := base
	waiting.NextAttemptAt = now.Add(time.Minute)
	waited := base
	waited.NextAttemptAt = now.Add(-time.Second)
	tests := []struct {
		name string
		mb   store.Mailbox
		want bool
	}{
		{"healthy", base, true},
		{"parked on a dead token", parked, false},
		{"settings changed", fixed, true},
		{"backing off", waiting, false},
		{"backoff over", waited, true},
	}
	for _, tt := range tests {
		got, why := due(tt.mb, now, nil)
		require.Equal(t, tt.want, got, "%s: due() = %v (%s)", tt.name, got, why)
	}
}

func TestFailurePolicy(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	mb := store.Mailbox{Name: "m", OAuthProvider: "microsoft", ConsecutiveFailures: 2}
	tests := []struct {
		name       string
		err        error
		wantStatus string
		wantParked bool
		wantAfter  time.Duration // minimum wait when not parked
	}{
		{"dead refresh token", &oauth.Error{Code: "invalid_grant", AADSTS: 70008, Reauth: true}, store.StatusNeedsReauth, true, 0},
		{"wrong secret", &oauth.Error{Code: "invalid_client", AADSTS: 7000215, Reauth: true}, store.StatusNeedsReauth, true, 0},
		{"consent missing", &oauth.Error{Code: "invalid_grant", AADSTS: 65001, Reauth: true}, store.StatusNeedsReauth, false, 2 * time.Minute},
		{"google token revoked", &oauth.Error{Code: "invalid_grant", Reauth: true}, store.StatusNeedsReauth, true, 0},
		{"certificate not uploaded yet", &oauth.Error{Code: "invalid_client", AADSTS: 700027, Reauth: true}, store.StatusNeedsReauth, false, 2 * time.Minute},
		{"clock skew", &oauth.Error{Code: "invalid_client", AADSTS: 700024}, store.StatusFailing, false, 2 * time.Minute},
		{"certificate not valid yet", notYetValidCert(t), store.StatusFailing, false, 2 * time.Minute},
		{"certificate expired", &oauth.ConfigError{Column: "client_certificate", Problem: "expired on 2026-11-01", Fix: "x"}, store.StatusFailing, true, 0},
		{"retry-after capped", &oauth.Error{Status: 429, RetryAfter: 30 * 24 * time.Hour}, store.StatusFailing, false, 6 * time.Hour},
		{"conditional access", &oauth.Error{Code: "interaction_required", AADSTS: 53003, Reauth: true}, store.StatusNeedsReauth, false, 2 * time.Minute},
		{"throttled", &oauth.Error{Status: 429, RetryAfter: 2 * time.Hour}, store.StatusFailing, false, 2 * time.Hour},
		{"provider down", &oauth.Error{Status: 503}, store.StatusFailing, false, 2 * time.Minute},
		{"bad column", &ConfigError{Column: "port", Fix: "x"}, store.StatusFailing, true, 0},
		{"network", errors.New("connect: connection refused"), store.StatusFailing, false, 2 * time.Minute},
	}
	for _, tt := range tests {
		f := failure(mb, tt.err, now, nil)
		require.Equal(t, tt.wantStatus, f.Status, tt.name)
		require.Equal(t, tt.wantParked, f.Fingerprint != "", "%s: parked", tt.name)
		if !tt.wantParked {
			require.GreaterOrEqual(t, f.NextAttempt.Sub(now), tt.wantAfter, "%s: next attempt", tt.name)
			require.LessOrEqual(t, f.NextAttempt.Sub(now), max(tt.wantAfter, 5*time.Minute), "%s: next attempt", tt.name)
		}
	}
}

func TestWarning(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		want    string
	}{
		{"none set", time.Time{}, ""},
		{"far off", now.Add(90 * 24 * time.Hour), ""},
		{"in 10 days", now.Add(10 * 24 * time.Hour), "expires on 2026-12-02 (in 10 days)"},
		{"expired", now.Add(-time.Hour), "expired on 2026-11-22"},
	}
	for _, tt := range tests {
		mb := store.Mailbox{ClientSecret: "s", ClientSecretExpiresAt: tt.expires}
		got := warning(mb, now)
		if tt.want == "" {
			require.Empty(t, got, tt.name)
			continue
		}
		require.Contains(t, got, tt.want, tt.name)
	}
}

func TestCertificateWarning(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	now := time.Now()
	cert, err := oauthtest.NewCertificate(key, now.Add(-time.Hour), now.Add(20*24*time.Hour))
	require.NoError(t, err)
	mb := store.Mailbox{OAuthProvider: "microsoft", ClientCertificate: string(cert.CertPEM), ClientPrivateKey: string(cert.KeyPEM)}
	require.Contains(t, warning(mb, now), "client certificate expires on")
	require.Empty(t, warning(mb, now.Add(-30*24*time.Hour)))
}

// notYetValidCert is what validating a certificate that starts tomorrow
// returns.
func notYetValidCert(t *testing.T) error {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tomorrow := time.Now().Add(24 * time.Hour)
	cert, err := oauthtest.NewCertificate(key, tomorrow, tomorrow.Add(24*time.Hour))
	require.NoError(t, err)
	cfg := oauth.Config{Provider: "microsoft", TenantID: "t", ClientID: "c", Protocol: "imap",
		ClientCertificate: string(cert.CertPEM), ClientPrivateKey: string(cert.KeyPEM)}
	err = cfg.Validate()
	require.ErrorIs(t, err, oauth.ErrNotYetValid)
	return err
}
