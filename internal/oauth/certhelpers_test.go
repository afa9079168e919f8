package oauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// RSA 2048 keys take a while to generate, more so under -race: each is
// made once for the whole package.
var (
	certKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// newCert makes a self-signed certificate for key valid from notBefore for
// life.
func newCert(t *testing.T, key crypto.Signer, notBefore time.Time, life time.Duration) oauthtest.Certificate {
	t.Helper()
	c, err := oauthtest.NewCertificate(key, notBefore, notBefore.Add(life))
	require.NoError(t, err)
	return c
}

// withCert returns cfg with c as its certificate credential.
func withCert(cfg oauth.Config, c oauthtest.Certificate) oauth.Config {
	cfg.ClientCertificate, cfg.ClientPrivateKey = c.CertPEM, c.KeyPEM
	return cfg
}

// pkcs1PEM is key as a PKCS#1 "RSA PRIVATE KEY" block, as openssl 1.x wrote.
func pkcs1PEM(key *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// keyMaterial returns the base64 lines of a PEM text, each of which must
// never appear in an error or a log.
func keyMaterial(pemText string) []string {
	var lines []string
	for _, l := range strings.Split(pemText, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}
