// Package mailboxtest runs real mail protocol servers in-process, on
// 127.0.0.1, for tests and for `fetcher demo`: the same wire protocol a
// production server speaks, with XOAUTH2 checked against a token validator.
package mailboxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Cert is a self-signed certificate (by default for 127.0.0.1 and
// localhost), with the pool a client must trust to verify it.
type Cert struct {
	TLS  tls.Certificate
	Pool *x509.CertPool
	// PEM is the certificate in PEM form, for a CA file.
	PEM []byte
}

// CertOptions shape a certificate made by NewCertWith, for tests of
// certificates a client must refuse.
type CertOptions struct {
	// Names are the host names and IP addresses the certificate is for;
	// none means localhost, 127.0.0.1 and ::1.
	Names []string
	// NotBefore and NotAfter bound its validity; zero means from an hour
	// ago to a day from now.
	NotBefore, NotAfter time.Time
}

// NewCert makes a fresh self-signed certificate for 127.0.0.1 and
// localhost, valid for a day.
func NewCert() (*Cert, error) { return NewCertWith(CertOptions{}) }

// NewCertWith makes a fresh self-signed certificate as opts say.
func NewCertWith(opts CertOptions) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fetcher test server"},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	names := opts.Names
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1", "::1"}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Cert{
		TLS:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Pool: pool,
		PEM:  pemEncode(der),
	}, nil
}
