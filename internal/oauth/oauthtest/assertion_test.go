package oauthtest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

var (
	certKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// jwt is a client assertion under construction; sign turns it into text.
type jwt struct {
	header map[string]any
	claims map[string]any
}

// validJWT returns the assertion a correct client sends for cert at now.
func validJWT(cert oauthtest.Certificate, tokenURL string, now time.Time) jwt {
	s1, s256 := sha1.Sum(cert.Cert.Raw), sha256.Sum256(cert.Cert.Raw)
	return jwt{
		header: map[string]any{"alg": "RS256", "typ": "JWT",
			"x5t":      base64.RawURLEncoding.EncodeToString(s1[:]),
			"x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])},
		claims: map[string]any{"aud": tokenURL, "iss": clientID, "sub": clientID,
			"jti": time.Now().String(), "nbf": now.Unix(), "iat": now.Unix(),
			"exp": now.Add(10 * time.Minute).Unix()},
	}
}

func (j jwt) sign(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(j.header) + "." + enc(j.claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if j.header["alg"] == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], nil)
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func assertionForm(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"scope":                 {"https://outlook.office365.com/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion}}
}

func newCert(t *testing.T, key *rsa.PrivateKey, notBefore time.Time, life time.Duration) oauthtest.Certificate {
	t.Helper()
	c, err := oauthtest.NewCertificate(key, notBefore, notBefore.Add(life))
	require.NoError(t, err)
	return c
}

func TestClientAssertion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		edit       func(b *testBundle, j jwt) jwt
		key        func() *rsa.PrivateKey // signing key; nil: the registered one
		form       func(f url.Values) url.Values
		wantStatus int
		wantError  string
		wantAADSTS int
		wantDesc   string
	}{
		{name: "valid", wantStatus: 200},
		{name: "PS256", edit: func(_ *testBundle, j jwt) jwt { j.header["alg"] = "PS256"; return j }, wantStatus: 200},
		{name: "x5t#S256 only", edit: func(_ *testBundle, j jwt) jwt { delete(j.header, "x5t"); return j }, wantStatus: 200},
		{name: "audience as array", edit: func(b *testBundle, j jwt) jwt {
			j.claims["aud"] = []string{b.srv.TokenURL(tenant)}
			return j
		}, wantStatus: 200},
		{name: "unregistered certificate", edit: func(_ *testBundle, j jwt) jwt {
			j.header["x5t"], j.header["x5t#S256"] = "hOBcHZi846VCHSJbFAs26Go9VTQ", ""
			return j
		}, key: otherKey, wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700027,
			wantDesc: "AADSTS700027: The certificate with identifier used to sign the client assertion is " +
				"not registered on application. [Reason - The key was not found., Thumbprint of key used by " +
				"client: '84E05C1D98BCE3A5421D225B140B36E86A3D5534'"},
		{name: "signed by another key", key: otherKey, wantStatus: 401, wantError: "invalid_client",
			wantAADSTS: 700027, wantDesc: "Key was found, but use of the key to verify the signature failed."},
		{name: "HS256", edit: func(_ *testBundle, j jwt) jwt { j.header["alg"] = "HS256"; return j },
			wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700027},
		{name: "wrong issuer", edit: func(_ *testBundle, j jwt) jwt { j.claims["iss"] = "other-app"; return j },
			wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700021},
		{name: "wrong subject", edit: func(_ *testBundle, j jwt) jwt { j.claims["sub"] = "other-app"; return j },
			wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700021},
		{name: "audience of another tenant", edit: func(b *testBundle, j jwt) jwt {
			j.claims["aud"] = b.srv.TokenURL("fabrikam.example")
			return j
		}, wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700023},
		{name: "expired", edit: func(b *testBundle, j jwt) jwt {
			j.claims["exp"] = b.clock.Now().Unix()
			return j
		}, wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700024,
			wantDesc: "AADSTS700024: Client assertion is not within its valid time range. Current time: 2025-03-04T05:06:07.0000000Z"},
		{name: "not yet valid", edit: func(b *testBundle, j jwt) jwt {
			j.claims["nbf"] = b.clock.Now().Add(time.Minute).Unix()
			return j
		}, wantStatus: 401, wantError: "invalid_client", wantAADSTS: 700024},
		{name: "no jti", edit: func(_ *testBundle, j jwt) jwt { delete(j.claims, "jti"); return j },
			wantStatus: 401, wantError: "invalid_client", wantAADSTS: 50013},
		{name: "malformed", form: func(f url.Values) url.Values { f.Set("client_assertion", "not.a-jwt"); return f },
			wantStatus: 401, wantError: "invalid_client", wantAADSTS: 50027},
		{name: "no assertion type", form: func(f url.Values) url.Values { f.Del("client_assertion_type"); return f },
			wantStatus: 400, wantError: "invalid_request", wantAADSTS: 900144},
		{name: "secret and assertion", form: func(f url.Values) url.Values { f.Set("client_secret", secret); return f },
			wantStatus: 400, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			cert := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)
			b.srv.AddClientCertificate(clientID, cert.Cert)
			j := validJWT(cert, b.srv.TokenURL(tenant), b.clock.Now())
			if tt.edit != nil {
				j = tt.edit(b, j)
			}
			key := certKey()
			if tt.key != nil {
				key = tt.key()
			}
			form := assertionForm(j.sign(t, key))
			if tt.form != nil {
				form = tt.form(form)
			}

			r := b.post(t, tenant, form)
			require.Equal(t, tt.wantStatus, r.status, "body: %v", r.body)
			require.Equal(t, tt.wantError, r.str("error"))
			require.Equal(t, tt.wantAADSTS, r.aadsts())
			require.Contains(t, r.str("error_description"), tt.wantDesc)
			require.True(t, b.srv.RequestLog()[0].AssertionInBody)
		})
	}
}

func TestClientAssertion_Replay(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	cert := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 365*24*time.Hour)
	b.srv.AddClientCertificate(clientID, cert.Cert)
	form := assertionForm(validJWT(cert, b.srv.TokenURL(tenant), b.clock.Now()).sign(t, certKey()))

	require.Equal(t, http.StatusOK, b.post(t, tenant, form).status)
	replay := b.post(t, tenant, form)
	require.Equal(t, http.StatusUnauthorized, replay.status)
	require.Equal(t, "invalid_client", replay.str("error"))
	require.Equal(t, 50013, replay.aadsts())
}

func TestClientAssertion_RegisteredCertificateExpired(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	cert := newCert(t, certKey(), b.clock.Now().Add(-time.Hour), 2*time.Hour)
	b.srv.AddClientCertificate(clientID, cert.Cert)
	b.clock.Add(3 * time.Hour)
	form := assertionForm(validJWT(cert, b.srv.TokenURL(tenant), b.clock.Now()).sign(t, certKey()))

	r := b.post(t, tenant, form)
	require.Equal(t, 700027, r.aadsts())
	require.Contains(t, r.str("error_description"), "[Reason - The key used is expired.")
	require.Contains(t, r.str("error_description"), "Found key 'Start=03/04/2025 04:06:07, End=03/04/2025 06:06:07'")
}

func TestClientAssertion_PublicClientMustNotSendOne(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	b.srv.AddClient("desktop", "")
	form := assertionForm("a.b.c")
	form.Set("client_id", "desktop")
	require.Equal(t, 700025, b.post(t, tenant, form).aadsts())
}
