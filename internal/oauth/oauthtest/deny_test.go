package oauthtest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

func TestAuthorizeDenyConsent(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{DenyConsent: true})
	cfg := oauth2.Config{ClientID: clientID, Endpoint: endpoint(b.srv),
		RedirectURL: "http://127.0.0.1/testApp/", Scopes: []string{"offline_access", imap}}
	q := authorize(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	require.Equal(t, "access_denied", q.Get("error"))
	require.Contains(t, q.Get("error_description"), "AADSTS65004")
	require.Equal(t, "st4te", q.Get("state"))
	require.False(t, q.Has("code"))
}
