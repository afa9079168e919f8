package oauth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestValidate_Certificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := newCert(t, certKey(), now.Add(-time.Hour), 365*24*time.Hour)
	other := newCert(t, otherKey(), now.Add(-time.Hour), 365*24*time.Hour)
	expired := newCert(t, certKey(), now.Add(-400*24*time.Hour), 365*24*time.Hour)
	future := newCert(t, certKey(), now.Add(48*time.Hour), 365*24*time.Hour)
	ec := newCert(t, ecKey(t), now.Add(-time.Hour), 365*24*time.Hour)
	weak := newCert(t, mustRSA(1024), now.Add(-time.Hour), 365*24*time.Hour)

	base := oauth.Config{Provider: oauth.Microsoft, TenantID: "contoso.example",
		ClientID: "app", Protocol: "imap"}
	with := func(f func(*oauth.Config)) oauth.Config {
		c := withCert(base, good)
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  oauth.Config
		want []string // substrings of the error; none: valid
	}{
		{"valid", withCert(base, good), nil},
		{"valid with a secret too (the certificate wins)", with(func(c *oauth.Config) { c.ClientSecret = "s" }), nil},
		{"valid client credentials without a secret", with(func(c *oauth.Config) { c.Grant = oauth.GrantClientCredentials }), nil},
		{"valid PKCS#1 key", with(func(c *oauth.Config) { c.ClientPrivateKey = pkcs1PEM(certKey()) }), nil},
		{"valid key and certificate in one text", with(func(c *oauth.Config) {
			c.ClientCertificate = good.KeyPEM + good.CertPEM
			c.ClientPrivateKey = c.ClientCertificate
		}), nil},
		{"valid custom provider", oauth.Config{Provider: oauth.Custom, ClientID: "app",
			TokenURL: "https://id.example/token", ClientCertificate: good.CertPEM, ClientPrivateKey: good.KeyPEM}, nil},
		{"certificate without key", with(func(c *oauth.Config) { c.ClientPrivateKey = " " }),
			[]string{"client_private_key is empty but client_certificate is set"}},
		{"key without certificate", with(func(c *oauth.Config) { c.ClientCertificate = "" }),
			[]string{"client_certificate is empty but client_private_key is set"}},
		{"key of another certificate", with(func(c *oauth.Config) { c.ClientPrivateKey = other.KeyPEM }),
			[]string{"client_private_key does not belong to client_certificate"}},
		{"expired", withCert(base, expired), []string{"client_certificate expired on " +
			expired.Cert.NotAfter.UTC().Format(time.DateOnly) + ": create a new certificate, upload its " +
			"public part under Certificates & secrets → Certificates in the app registration"}},
		{"not yet valid", withCert(base, future), []string{"client_certificate is not valid before",
			"check the server's clock"}},
		{"EC key", withCert(base, ec), []string{"client_private_key is not an RSA key (EC)",
			"client_certificate does not hold an RSA key (ECDSA)", "Microsoft accepts only RSA keys"}},
		{"1024-bit key", withCert(base, weak), []string{"client_private_key is an RSA key of only 1024 bits"}},
		{"not PEM", with(func(c *oauth.Config) { c.ClientCertificate = "MIIC...base64 without armour" }),
			[]string{"client_certificate holds no PEM certificate"}},
		{"key pasted as certificate", with(func(c *oauth.Config) { c.ClientCertificate = good.KeyPEM }),
			[]string{"client_certificate holds no PEM certificate"}},
		{"certificate pasted as key", with(func(c *oauth.Config) { c.ClientPrivateKey = good.CertPEM }),
			[]string{"client_private_key holds no PEM private key"}},
		{"encrypted key", with(func(c *oauth.Config) {
			c.ClientPrivateKey = strings.ReplaceAll(good.KeyPEM, "PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
		}), []string{"client_private_key is encrypted with a passphrase"}},
		{"garbled key", with(func(c *oauth.Config) {
			c.ClientPrivateKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}), []string{"client_private_key cannot be parsed as a PKCS#8 or PKCS#1 RSA key"}},
		{"google", oauth.Config{Provider: oauth.Google, ClientID: "app", Protocol: "imap",
			ClientCertificate: good.CertPEM, ClientPrivateKey: good.KeyPEM},
			[]string{"client_certificate is not supported for google"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, want := range tt.want {
				require.ErrorContains(t, err, want)
			}
			var ce *oauth.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, []string{"client_certificate", "client_private_key"}, ce.Column)
			require.True(t, oauth.NeedsReauth(err))
			for _, secret := range append(keyMaterial(good.KeyPEM), keyMaterial(other.KeyPEM)...) {
				require.NotContains(t, err.Error(), secret, "key material in Validate() error")
			}
		})
	}
}

func TestValidateAt_UsesTheClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	c := newCert(t, certKey(), start, 365*24*time.Hour)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, ClientID: "app", Protocol: "imap"}, c)

	require.NoError(t, cfg.ValidateAt(start.Add(time.Hour)))
	require.ErrorContains(t, cfg.ValidateAt(start.Add(366*24*time.Hour)), "client_certificate expired on 2026-03-04")
	require.ErrorContains(t, cfg.ValidateAt(start.Add(-time.Hour)), "client_certificate is not valid before 2025-03-04T00:00:00Z")
}

func TestCredentialExpiry(t *testing.T) {
	t.Parallel()
	c := newCert(t, certKey(), time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC), 365*24*time.Hour)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, ClientID: "app"}, c)

	got, ok := cfg.CredentialExpiry()
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), got.UTC())
	require.True(t, cfg.UsesCertificate())

	_, ok = oauth.Config{ClientSecret: "s"}.CredentialExpiry()
	require.False(t, ok, "CredentialExpiry() of a secret config reported a certificate")
	_, ok = oauth.Config{ClientCertificate: "not pem", ClientPrivateKey: c.KeyPEM}.CredentialExpiry()
	require.False(t, ok)
}

func TestConfigStringHidesPrivateKey(t *testing.T) {
	t.Parallel()
	c := newCert(t, certKey(), time.Now().Add(-time.Hour), time.Hour*24)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, ClientID: "app", Protocol: "imap"}, c)
	out := cfg.String() + cfg.GoString() + cfg.LogValue().String()
	require.Contains(t, cfg.String(), "client_certificate=(set) client_private_key=(set)")
	for _, secret := range keyMaterial(c.KeyPEM) {
		require.NotContains(t, out, secret)
	}
}

func TestValidate_ChainWithCAFirst(t *testing.T) {
	t.Parallel()
	now := time.Now()
	leaf := newCert(t, certKey(), now.Add(-time.Hour), 365*24*time.Hour)
	ca := newCert(t, otherKey(), now.Add(-time.Hour), 10*365*24*time.Hour)
	cfg := withCert(oauth.Config{Provider: oauth.Microsoft, TenantID: "contoso.onmicrosoft.com", ClientID: "app", Protocol: "imap"}, leaf)
	cfg.ClientCertificate = ca.CertPEM + leaf.CertPEM // openssl pkcs12 may export the CA first
	require.NoError(t, cfg.Validate())
	got, ok := cfg.CredentialExpiry()
	require.True(t, ok)
	require.WithinDuration(t, leaf.Cert.NotAfter, got, time.Second, "the expiry is the leaf's, not the CA's")
}
