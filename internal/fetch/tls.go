package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
)

// connOptions returns the connection options for mb: the runner's, or,
// when mb trusts CA certificates of its own (tls_ca_cert) or skips
// verification (tls_skip_verify), a copy with those applied. The runner's
// Options and their tls.Config are shared by every mailbox fetched at the
// same time, so they are never changed.
func (r *Runner) connOptions(mb store.Mailbox) (*mailbox.Options, error) {
	tracing := r.Mailbox != nil && r.Mailbox.DebugWriter != nil
	if strings.TrimSpace(mb.TLSCACert) == "" && !mb.TLSSkipVerify && !tracing {
		return r.Mailbox, nil
	}
	var opts mailbox.Options
	if r.Mailbox != nil {
		opts = *r.Mailbox
	}
	if tracing {
		// Mailboxes are fetched in parallel: each trace line says whose it is.
		opts.DebugWriter = &prefixWriter{w: opts.DebugWriter, prefix: []byte(fmt.Sprintf("mailbox %d: ", mb.ID))}
	}
	cfg := &tls.Config{}
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	}
	if strings.TrimSpace(mb.TLSCACert) != "" {
		pool, err := withCACerts(cfg.RootCAs, mb.TLSCACert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if mb.TLSSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	opts.TLSConfig = cfg
	return &opts, nil
}

// withCACerts returns the roots in effect (roots, or the system's when nil)
// plus the certificates in pemText, leaving roots as it was.
func withCACerts(roots *x509.CertPool, pemText string) (*x509.CertPool, error) {
	certs, err := parseCACerts(pemText)
	if err != nil {
		return nil, err
	}
	var pool *x509.CertPool
	if roots != nil {
		pool = roots.Clone()
	} else if pool, err = x509.SystemCertPool(); err != nil {
		pool = x509.NewCertPool() // no system roots here: the mailbox's own still count
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCACerts reads tls_ca_cert: one or more PEM CERTIFICATE blocks. No
// error quotes the column's text.
func parseCACerts(pemText string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(pemText)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, &ConfigError{"tls_ca_cert", fmt.Sprintf("holds a PEM %q block: keep only the server's CA certificates (-----BEGIN CERTIFICATE-----), never a key", block.Type)}
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &ConfigError{"tls_ca_cert", fmt.Sprintf("holds a certificate that cannot be parsed (%v): paste the server's CA certificate again, in PEM form", err)}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, &ConfigError{"tls_ca_cert", "holds no PEM certificate: paste the server's CA certificate, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----, or set it to NULL"}
	}
	return certs, nil
}

// warnSkipVerify logs, at every connection of a mailbox with
// tls_skip_verify, that it is unsafe and how to end it.
func (r *Runner) warnSkipVerify(mb store.Mailbox) {
	if !mb.TLSSkipVerify {
		return
	}
	r.mailboxLog(mb).Warn("TLS certificate verification is off for this mailbox (tls_skip_verify): "+
		"anyone on the network path can pose as the mail server and read the password or token and the mail",
		"fix", "set tls_ca_cert to the server's CA certificate (PEM) and tls_skip_verify = false")
}

// tlsAdvice adds to a certificate or TLS version failure what the admin
// should do, naming the settings. Skipping verification is never offered:
// it would hide the very attack the check exists for.
func tlsAdvice(err error) error {
	var te *mailbox.TLSError
	if !errors.As(err, &te) {
		return err
	}
	const privateCA = "if the server's certificate comes from a private CA or is self-signed, " +
		"put that CA certificate (PEM) in this mailbox's tls_ca_cert, or in the file FETCHER_CA_FILE names to trust it for every mailbox"
	var do string
	switch te.Problem {
	case mailbox.CertExpired:
		do = "the mail server's admin must renew its certificate (and check that this machine's clock is right); " + privateCA
	case mailbox.CertWrongName:
		do = "set host to a name the certificate is for, or have the server's certificate issued for " + te.Host + "; " + privateCA
	case mailbox.OldTLSVersion:
		do = "the mail server must be upgraded to offer TLS 1.2 or later"
	default:
		do = privateCA + "; if it should have a public certificate, the server must send its intermediate certificates too"
	}
	return fmt.Errorf("%w. Do this: %s", err, do)
}

// prefixWriter starts every line written through it with prefix. The
// mailbox package writes a trace one whole line per Write (after
// redaction), so a Write is a line.
type prefixWriter struct {
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append(append([]byte(nil), p.prefix...), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
