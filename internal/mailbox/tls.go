package mailbox

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrPlaintext is wrapped by Open when the login would cross a connection
// that is not encrypted and the account does not set AllowPlaintext.
var ErrPlaintext = errors.New("the connection is not encrypted, so the password or token would cross the network in clear")

// plaintextError is the refusal to log in over an unencrypted connection.
func plaintextError(acct Account, mech string) error {
	return fmt.Errorf("%s login for %s not sent to %s: %w; use TLS or STARTTLS (allow plain text only for a local test server)",
		mech, acct.Username, acct.addr(), ErrPlaintext)
}

// TLSProblem is why a TLS handshake failed in a way a person must fix.
type TLSProblem int

// TLS problems.
const (
	// CertUntrusted: the certificate chains to no trusted authority (a
	// private CA, a self-signed certificate, a missing intermediate).
	CertUntrusted TLSProblem = iota + 1
	// CertExpired: the certificate is expired, or not valid yet.
	CertExpired
	// CertWrongName: the certificate is for another host name.
	CertWrongName
	// OldTLSVersion: the server offers no TLS version from 1.2 up.
	OldTLSVersion
)

// TLSError is a TLS handshake that failed for a reason retrying will not
// fix: the server's certificate cannot be trusted, or the server speaks only
// TLS versions older than 1.2.
type TLSError struct {
	// Host is the name the certificate was checked against.
	Host    string
	Addr    string
	Problem TLSProblem
	// Detail says more: the issuer, the expiry, the names the certificate
	// is for.
	Detail string
	Err    error
}

func (e *TLSError) Error() string {
	var what string
	switch e.Problem {
	case CertUntrusted:
		what = "the server's certificate is not trusted"
	case CertExpired:
		what = "the server's certificate is expired or not yet valid"
	case CertWrongName:
		what = "the server's certificate is for another name, not " + e.Host
	case OldTLSVersion:
		what = "the server offers only TLS versions older than 1.2, which are not allowed (RFC 8996)"
	default:
		what = "the handshake failed"
	}
	if e.Detail != "" {
		what += " (" + e.Detail + ")"
	}
	return fmt.Sprintf("TLS handshake with %s: %s: %v", e.Addr, what, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// tlsError describes a failed handshake: a *TLSError when a person must
// act, a NetError (worth retrying) when the connection broke.
func tlsError(acct Account, err error) error {
	if problem, detail := tlsProblem(err); problem != 0 {
		return &TLSError{Host: acct.Host, Addr: acct.addr(), Problem: problem, Detail: detail, Err: err}
	}
	return &NetError{Op: fmt.Sprintf("TLS handshake with %s", acct.addr()), Err: err}
}

// tlsProblem reads a handshake error for a certificate or version problem.
func tlsProblem(err error) (TLSProblem, string) {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return CertUntrusted, issuedBy(unknown.Cert)
	case errors.As(err, &hostname):
		return CertWrongName, namesOf(hostname.Certificate)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return CertExpired, validity(invalid.Cert)
	case errors.As(err, &invalid):
		return CertUntrusted, invalid.Detail
	case oldVersion(err):
		return OldTLSVersion, ""
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return CertUntrusted, ""
	}
	return 0, ""
}

// oldVersion reports a handshake that found no common TLS version: the
// server refused ours (alert protocol_version) or picked one below 1.2.
// crypto/tls gives neither a type of its own.
func oldVersion(err error) bool {
	return strings.Contains(err.Error(), "protocol version")
}

func issuedBy(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("issued by %q", c.Issuer.String())
}

func namesOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return "it is for " + strings.Join(names, ", ")
}

func validity(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("valid from %s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
}
