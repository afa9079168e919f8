package oauthtest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// AddClientCertificate registers cert as a certificate credential of
// clientID, as uploading it under Certificates & secrets does; the client
// is registered (without a secret) if it is not yet. A client may have
// several certificates and a secret. Token requests may then authenticate
// with a client assertion signed by the certificate's key (RFC 7523).
func (s *Server) AddClientCertificate(clientID string, cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[clientID]; !ok {
		s.clients[clientID] = ""
	}
	s.certs[clientID] = append(s.certs[clientID], cert)
}

// Certificate is a self-signed certificate credential made by
// [NewCertificate].
type Certificate struct {
	Cert    *x509.Certificate
	CertPEM string // a CERTIFICATE block, for mailboxes.client_certificate
	KeyPEM  string // a PKCS#8 PRIVATE KEY block, for mailboxes.client_private_key
}

// NewCertificate returns a self-signed certificate for key (an
// *rsa.PrivateKey, or another kind to test refusals), valid from notBefore
// to notAfter, like the one docs/certificate-credential.md makes with openssl.
func NewCertificate(key crypto.Signer, notBefore, notAfter time.Time) (Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "fetcher test"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Certificate{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Certificate{}, fmt.Errorf("marshal key: %w", err)
	}
	return Certificate{Cert: cert,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
	}, nil
}
