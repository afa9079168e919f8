package oauth_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// decodeJWT splits a compact JWS and decodes its header and claims.
func decodeJWT(t *testing.T, jwt string) (header, claims map[string]any, signingInput string, sig []byte) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3)
	decode := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	require.NoError(t, json.Unmarshal(decode(parts[0]), &header))
	dec := json.NewDecoder(strings.NewReader(string(decode(parts[1]))))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&claims))
	return header, claims, parts[0] + "." + parts[1], decode(parts[2])
}

func unix(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(json.Number).Int64()
	require.NoError(t, err)
	return n
}

func TestClientAssertion(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	c := newCert(t, certKey(), now.Add(-time.Hour), 365*24*time.Hour)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, ClientID: testClientID}, c)
	const tokenURL = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"

	jwt, err := cfg.ClientAssertion(now, tokenURL)
	require.NoError(t, err)
	header, claims, signingInput, sig := decodeJWT(t, jwt)

	s1, s256 := sha1.Sum(c.Cert.Raw), sha256.Sum256(c.Cert.Raw)
	require.Equal(t, map[string]any{"alg": "RS256", "typ": "JWT",
		"x5t":      base64.RawURLEncoding.EncodeToString(s1[:]),
		"x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])}, header)
	require.Equal(t, tokenURL, claims["aud"])
	require.Equal(t, testClientID, claims["iss"])
	require.Equal(t, testClientID, claims["sub"])
	require.Equal(t, now.Unix(), unix(t, claims["nbf"]))
	require.Equal(t, now.Unix(), unix(t, claims["iat"]))
	require.Equal(t, int64(600), unix(t, claims["exp"])-unix(t, claims["nbf"]), "exp - nbf, want 10 minutes")
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, claims["jti"])

	digest := sha256.Sum256([]byte(signingInput))
	require.NoError(t, rsa.VerifyPKCS1v15(&certKey().PublicKey, crypto.SHA256, digest[:], sig))

	again, err := cfg.ClientAssertion(now, tokenURL)
	require.NoError(t, err)
	_, claims2, _, _ := decodeJWT(t, again)
	require.NotEqual(t, claims["jti"], claims2["jti"], "ClientAssertion() reused a jti")
}

func TestClientAssertion_Refusals(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, err := oauth.Config{ClientID: "app", ClientSecret: "s"}.ClientAssertion(now, "https://x/token")
	require.ErrorContains(t, err, "client_certificate is empty")

	expired := newCert(t, certKey(), now.Add(-48*time.Hour), 24*time.Hour)
	_, err = withCert(oauth.Config{ClientID: "app"}, expired).ClientAssertion(now, "https://x/token")
	require.ErrorContains(t, err, "client_certificate expired on")
}

func TestClientAuthParams(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newCert(t, certKey(), now.Add(-time.Hour), 24*time.Hour)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, ClientID: "app", ClientSecret: "s3cret-value"}, c)

	params, err := cfg.ClientAuthParams(now, "https://x/token")
	require.NoError(t, err)
	require.Equal(t, oauth.ClientAssertionType, params.Get("client_assertion_type"))
	require.NotEmpty(t, params.Get("client_assertion"))
	require.False(t, params.Has("client_secret"), "a certificate credential sent the secret")

	cfg.ClientCertificate, cfg.ClientPrivateKey = "", ""
	params, err = cfg.ClientAuthParams(now, "https://x/token")
	require.NoError(t, err)
	require.Equal(t, "s3cret-value", params.Get("client_secret"))
	require.Len(t, params, 1)

	cfg.ClientSecret = ""
	params, err = cfg.ClientAuthParams(now, "https://x/token")
	require.NoError(t, err)
	require.Empty(t, params, "a public client sent credentials")
}

func TestToken_Certificate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grant string
	}{
		{"refresh token", oauth.GrantRefreshToken},
		{"client credentials", oauth.GrantClientCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			c := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)
			b.srv.AddClientCertificate(testClientID, c.Cert)
			cfg := withCert(b.cfg, c) // b.cfg keeps its client secret: the certificate wins
			cfg.Grant = tt.grant
			rt := b.refreshToken()

			tok, err := b.client.Token(context.Background(), cfg, rt)
			require.NoError(t, err)
			_, ok := b.srv.AccessToken(tok.AccessToken)
			require.True(t, ok)
			b.clock.Add(time.Minute) // the same second would not matter either: jti differs
			_, err = b.client.Token(context.Background(), cfg, tok.RefreshToken)
			require.NoError(t, err, "second request with a fresh assertion")

			for _, r := range b.srv.RequestLog() {
				require.True(t, r.AssertionInBody, "client_assertion not in the POST body")
				require.False(t, r.SecretInBody, "client_secret sent with a certificate credential")
				require.False(t, r.SecretInHeader)
				require.Equal(t, tt.grant, r.GrantType)
			}
		})
	}
}

func TestToken_CertificateNotRegistered(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	registered := newCert(t, otherKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)
	b.srv.AddClientCertificate(testClientID, registered.Cert)
	c := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)

	_, err := b.client.Token(context.Background(), withCert(b.cfg, c), b.refreshToken())

	var e *oauth.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 1, b.srv.Requests())
	require.Equal(t, 401, e.Status)
	require.Equal(t, "invalid_client", e.Code)
	require.Equal(t, 700027, e.AADSTS)
	require.True(t, oauth.NeedsReauth(err))
	require.Contains(t, e.Advice, "under Certificates & secrets → Certificates in the app registration")
	sum := sha1.Sum(c.Cert.Raw)
	require.Contains(t, e.Description, "Thumbprint of key used by client: '"+
		strings.ToUpper(hex.EncodeToString(sum[:]))+"'", "the admin compares it with the portal's")
	require.Contains(t, err.Error(), "Do this: upload the public part of the certificate")
}

func TestToken_CertificateConfigErrorsMakeNoRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	// Valid by the wall clock long ago, expired by the injected clock.
	c := newCert(t, certKey(), b.clock.Now().Add(-400*24*time.Hour), 365*24*time.Hour)
	b.srv.AddClientCertificate(testClientID, c.Cert)

	_, err := b.client.Token(context.Background(), withCert(b.cfg, c), b.refreshToken())
	require.ErrorContains(t, err, "client_certificate expired on")
	require.True(t, oauth.NeedsReauth(err))
	require.Zero(t, b.srv.Requests())
}

// TestToken_AssertionFailures maps Microsoft's answers to a refused client
// assertion.
func TestToken_AssertionFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		failure    oauthtest.Failure
		wantAADSTS int
		wantReauth bool
		wantAdvice string
	}{
		{"700027 not registered", oauthtest.CertificateNotRegistered(), 700027, true, "upload the public part of the certificate"},
		{"700024 clock", oauthtest.AssertionNotInTimeRange(), 700024, false, "check the worker's clock"},
		{"50013 replayed", oauthtest.AssertionReplayed(), 50013, false, "every request signs a new client assertion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			c := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)
			b.srv.AddClientCertificate(testClientID, c.Cert)
			b.srv.FailNext(tt.failure)

			_, err := b.client.Token(context.Background(), withCert(b.cfg, c), b.refreshToken())

			var e *oauth.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "invalid_client", e.Code)
			require.Equal(t, tt.wantAADSTS, e.AADSTS)
			require.Equal(t, tt.wantReauth, oauth.NeedsReauth(err))
			require.Contains(t, e.Advice, tt.wantAdvice)
		})
	}
}
