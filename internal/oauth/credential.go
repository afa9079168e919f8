package oauth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// minRSABits is the smallest RSA key a certificate credential may use.
const minRSABits = 2048

// certificate is a parsed certificate credential: the certificate uploaded
// to the app registration and the private key that signs client assertions.
type certificate struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// UsesCertificate reports whether c authenticates the app with a certificate
// credential rather than a client secret: when client_certificate or
// client_private_key is set. With a certificate the secret is never sent,
// even when client_secret is also set; [Config.Validate] reports a half-set
// or unusable certificate.
func (c Config) UsesCertificate() bool {
	return strings.TrimSpace(c.ClientCertificate) != "" || strings.TrimSpace(c.ClientPrivateKey) != ""
}

// CredentialExpiry returns when the certificate credential stops working
// (the certificate's NotAfter), so the caller can warn ahead as it does for
// client_secret_expires_at. It reports false when c uses no certificate or
// client_certificate cannot be parsed ([Config.Validate] says why). A client
// secret's expiry is not known here: it is the caller's column.
func (c Config) CredentialExpiry() (time.Time, bool) {
	if !c.UsesCertificate() {
		return time.Time{}, false
	}
	cert, err := parseCertificate(c.ClientCertificate)
	if err != nil {
		return time.Time{}, false
	}
	if key, err := parsePrivateKey(c.ClientPrivateKey); err == nil {
		if match := certificateOf(c.ClientCertificate, key); match != nil {
			cert = match // the leaf, not a CA listed before it
		}
	}
	return cert.NotAfter, true
}

// checkCertificate validates the certificate credential at now.
func (c Config) checkCertificate(now time.Time) error {
	if !c.UsesCertificate() {
		return nil
	}
	if c.Provider == Google {
		return &ConfigError{"client_certificate", "is not supported for google",
			"clear client_certificate and client_private_key and use client_secret"}
	}
	_, err := c.certificate(now)
	return err
}

// certificate parses and checks the certificate credential: both halves
// set, an RSA key of at least minRSABits that belongs to the certificate,
// and a certificate valid at now. No error quotes the PEM text.
func (c Config) certificate(now time.Time) (*certificate, error) {
	if err := c.checkBothHalves(); err != nil {
		return nil, err
	}
	cert, certErr := parseCertificate(c.ClientCertificate)
	key, keyErr := parsePrivateKey(c.ClientPrivateKey)
	if err := errors.Join(certErr, keyErr); err != nil {
		return nil, err
	}
	if match := certificateOf(c.ClientCertificate, key); match != nil {
		cert = match // a chain may list its CA first
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, &ConfigError{"client_private_key", "does not belong to client_certificate",
			"store the private key the certificate was made with (or the certificate of this key)"}
	}
	if err := checkValidity(cert, now); err != nil {
		return nil, err
	}
	return &certificate{cert: cert, key: key}, nil
}

func (c Config) checkBothHalves() error {
	switch {
	case strings.TrimSpace(c.ClientPrivateKey) == "":
		return &ConfigError{"client_private_key", "is empty but client_certificate is set",
			"store the certificate's private key (PEM), or clear client_certificate to use client_secret"}
	case strings.TrimSpace(c.ClientCertificate) == "":
		return &ConfigError{"client_certificate", "is empty but client_private_key is set",
			"store the certificate (PEM) uploaded to the app registration, or clear client_private_key"}
	}
	return nil
}

// ErrNotYetValid matches (errors.Is) a certificate whose validity has not
// begun: time or a corrected clock fixes it, not a changed setting.
var ErrNotYetValid = errors.New("certificate not yet valid")

// notYetValid is the ConfigError of a certificate not valid yet.
type notYetValid struct{ *ConfigError }

func (e notYetValid) Unwrap() error { return e.ConfigError }

func (notYetValid) Is(target error) bool { return target == ErrNotYetValid }

// checkValidity reports a certificate that is expired or not yet valid at
// now: Microsoft refuses its assertions (AADSTS700027, "The key used is
// expired"), so no request is made.
func checkValidity(cert *x509.Certificate, now time.Time) error {
	const fix = "create a new certificate, upload its public part under Certificates & secrets " +
		"→ Certificates in the app registration, and store it and its key in client_certificate " +
		"and client_private_key (docs/certificate-credential.md)"
	switch {
	case now.After(cert.NotAfter):
		return &ConfigError{"client_certificate",
			"expired on " + cert.NotAfter.UTC().Format(time.DateOnly), fix}
	case now.Before(cert.NotBefore):
		return notYetValid{&ConfigError{"client_certificate", "is not valid before " +
			cert.NotBefore.UTC().Format(time.RFC3339), "check the server's clock, or " + fix}}
	}
	return nil
}

// parseCertificate reads the first CERTIFICATE block, so a chain or a file
// holding key and certificate together works.
func parseCertificate(text string) (*x509.Certificate, error) {
	block := findPEM(text, func(typ string) bool { return typ == "CERTIFICATE" })
	if block == nil {
		return nil, &ConfigError{"client_certificate", "holds no PEM certificate",
			"store the certificate as PEM text starting with -----BEGIN CERTIFICATE-----"}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, &ConfigError{"client_certificate", "is not a valid X.509 certificate",
			"store the certificate uploaded to the app registration, as PEM"}
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, &ConfigError{"client_certificate", "does not hold an RSA key (" +
			cert.PublicKeyAlgorithm.String() + ")", fixKeyType}
	}
	return cert, nil
}

// certificateOf returns the certificate in text whose public key is key's,
// or nil.
func certificateOf(text string, key *rsa.PrivateKey) *x509.Certificate {
	rest := []byte(text)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && key.PublicKey.Equal(cert.PublicKey) {
			return cert
		}
	}
}

// fixKeyType: Microsoft documents only RS256 and PS256 (both RSA) for
// client assertions; an EC certificate cannot sign one it accepts.
const fixKeyType = "Microsoft accepts only RSA keys for client assertions (RS256); create an " +
	"RSA 2048 certificate (docs/certificate-credential.md)"

func findPEM(text string, want func(typ string) bool) *pem.Block {
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil || want(block.Type) {
			return block
		}
	}
}

// parsePrivateKey reads the first private key block: PKCS#8 ("PRIVATE
// KEY") or PKCS#1 ("RSA PRIVATE KEY"). Neither the key nor the parser's
// error text goes into the error.
func parsePrivateKey(text string) (*rsa.PrivateKey, error) {
	block := findPEM(text, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") })
	switch {
	case block == nil:
		return nil, &ConfigError{"client_private_key", "holds no PEM private key",
			"store the key as PEM text starting with -----BEGIN PRIVATE KEY----- " +
				"or -----BEGIN RSA PRIVATE KEY-----"}
	case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
		return nil, &ConfigError{"client_private_key", "is encrypted with a passphrase",
			"store it unencrypted (openssl pkey -in key.pem -out plain.pem)"}
	}
	key, err := decodePrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, &ConfigError{"client_private_key", "is not an RSA key (" + keyKind(key) + ")", fixKeyType}
	}
	if bits := rsaKey.N.BitLen(); bits < minRSABits {
		return nil, &ConfigError{"client_private_key", fmt.Sprintf("is an RSA key of only %d bits", bits),
			"create a new certificate with an RSA key of 2048 bits or more (docs/certificate-credential.md)"}
	}
	return rsaKey, nil
}

func decodePrivateKey(der []byte) (any, error) {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, &ConfigError{"client_private_key", "cannot be parsed as a PKCS#8 or PKCS#1 RSA key",
		"store the certificate's private key as PEM (openssl pkey -in key.pem)"}
}

func keyKind(key any) string {
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		return "EC"
	}
	return fmt.Sprintf("%T", key)
}
