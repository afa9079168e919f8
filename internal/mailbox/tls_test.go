package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// testServer is what these tests need of an IMAP or POP3 test server.
type testServer interface {
	Host() string
	Port() int
	Logins() int
	Received() []byte
	Close() error
}

// serverSpec says which server to start.
type serverSpec struct {
	protocol string // imap or pop3
	security string // tls, starttls or plain
	cert     *mailboxtest.Cert
	maxTLS   uint16
}

func startServer(t *testing.T, spec serverSpec) testServer {
	t.Helper()
	check := func(u, tok string) bool { return u == user && tok == goodToken }
	var srv testServer
	switch spec.protocol {
	case "imap":
		s, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{Security: spec.security, Cert: spec.cert, MaxTLSVersion: spec.maxTLS, CheckToken: check})
		require.NoError(t, err)
		s.AddUser(user, pop3Password)
		srv = s
	case "pop3":
		s, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{Security: spec.security, Cert: spec.cert, MaxTLSVersion: spec.maxTLS, CheckToken: check})
		require.NoError(t, err)
		s.AddUser(user, pop3Password)
		srv = s
	default:
		t.Fatalf("no protocol %q", spec.protocol)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func accountOf(srv testServer, protocol string, sec mailbox.Security) mailbox.Account {
	return mailbox.Account{Protocol: protocol, Host: srv.Host(), Port: srv.Port(), Security: sec, Username: user, AccessToken: goodToken}
}

var securities = map[string]mailbox.Security{"tls": mailbox.TLS, "starttls": mailbox.StartTLS, "plain": mailbox.Plain}

func newCert(t *testing.T, opts mailboxtest.CertOptions) *mailboxtest.Cert {
	t.Helper()
	cert, err := mailboxtest.NewCertWith(opts)
	require.NoError(t, err)
	return cert
}

// TestCertificateRefused: a certificate the fetcher cannot trust ends the
// session before any login, with an error that names the host and says
// what is wrong with the certificate, over implicit TLS and STARTTLS.
func TestCertificateRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cert    mailboxtest.CertOptions
		trust   bool // trust the certificate's own CA
		problem mailbox.TLSProblem
		says    string
	}{
		{name: "untrusted", problem: mailbox.CertUntrusted, says: "not trusted"},
		{name: "expired", trust: true, cert: mailboxtest.CertOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)},
			problem: mailbox.CertExpired, says: "expired"},
		{name: "wrong name", trust: true, cert: mailboxtest.CertOptions{Names: []string{"mail.example.com"}},
			problem: mailbox.CertWrongName, says: "for another name, not 127.0.0.1 (it is for mail.example.com)"},
	}
	for _, tt := range tests {
		for _, protocol := range []string{"imap", "pop3"} {
			for _, security := range []string{"tls", "starttls"} {
				t.Run(tt.name+"/"+protocol+"/"+security, func(t *testing.T) {
					t.Parallel()
					cert := newCert(t, tt.cert)
					srv := startServer(t, serverSpec{protocol: protocol, security: security, cert: cert})
					opts := &mailbox.Options{CommandTimeout: 5 * time.Second}
					if tt.trust {
						opts.TLSConfig = &tls.Config{RootCAs: cert.Pool}
					}
					_, err := mailbox.Open(context.Background(), accountOf(srv, protocol, securities[security]), opts)
					var te *mailbox.TLSError
					require.ErrorAs(t, err, &te)
					require.Equal(t, tt.problem, te.Problem, "%v", err)
					require.Contains(t, err.Error(), net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())))
					require.Contains(t, err.Error(), tt.says)
					require.False(t, mailbox.IsTemporary(err), "a person must act: %v", err)
					require.Zero(t, srv.Logins())
				})
			}
		}
	}
}

// TestOldTLSVersionRefused: a server that speaks only TLS 1.0 and 1.1
// (deprecated by RFC 8996) is refused, even when the shared options ask
// for less than TLS 1.2.
func TestOldTLSVersionRefused(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"imap", "pop3"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			cert := newCert(t, mailboxtest.CertOptions{})
			srv := startServer(t, serverSpec{protocol: protocol, security: "tls", cert: cert, maxTLS: tls.VersionTLS11})
			addr := net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port()))

			// The server does speak TLS 1.1 to a client that accepts it.
			old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			require.NoError(t, err)
			require.Equal(t, uint16(tls.VersionTLS11), old.ConnectionState().Version)
			old.Close()

			opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS10}, CommandTimeout: 5 * time.Second}
			_, err = mailbox.Open(context.Background(), accountOf(srv, protocol, mailbox.TLS), opts)
			var te *mailbox.TLSError
			require.ErrorAs(t, err, &te)
			require.Equal(t, mailbox.OldTLSVersion, te.Problem, "%v", err)
			require.Contains(t, err.Error(), addr)
			require.Contains(t, err.Error(), "older than 1.2")
			require.Zero(t, srv.Logins())
			require.Equal(t, uint16(tls.VersionTLS10), opts.TLSConfig.MinVersion, "the caller's config must not change")
		})
	}
}

// credentials lists the forms in which a login could give away the
// password or token: as sent by LOGIN, PASS, or XOAUTH2 (base64).
func credentials() [][]byte {
	return [][]byte{
		[]byte(pop3Password),
		[]byte(goodToken),
		[]byte(base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, goodToken))),
	}
}

func requireNoCredentials(t *testing.T, received []byte) {
	t.Helper()
	for _, c := range credentials() {
		require.False(t, bytes.Contains(received, c), "the server received %q in: %q", c, received)
	}
}

// TestPlaintextLoginWithheld: over an unencrypted connection no password,
// token or XOAUTH2 string leaves the client unless the account allows
// plain text; what the server received is checked byte for byte.
func TestPlaintextLoginWithheld(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"imap", "pop3"} {
		for _, login := range []string{"XOAUTH2", "password"} {
			t.Run(protocol+"/"+login, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, serverSpec{protocol: protocol, security: "plain"})
				acct := accountOf(srv, protocol, mailbox.Plain)
				if login == "password" {
					acct.AccessToken, acct.Password = "", pop3Password
				}
				opts := &mailbox.Options{CommandTimeout: 5 * time.Second}
				_, err := mailbox.Open(context.Background(), acct, opts)
				require.ErrorIs(t, err, mailbox.ErrPlaintext)
				require.False(t, mailbox.IsAuth(err))
				require.False(t, mailbox.IsTemporary(err))
				require.Zero(t, srv.Logins())
				requireNoCredentials(t, srv.Received())

				acct.AllowPlaintext = true
				s, err := mailbox.Open(context.Background(), acct, opts)
				require.NoError(t, err)
				require.NoError(t, s.Close())
				require.Equal(t, 1, srv.Logins())
				sent := acct.Password
				if login == "XOAUTH2" {
					sent = base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, goodToken))
				}
				require.Contains(t, string(srv.Received()), sent, "allowed, the login crosses in clear (and the recording sees it)")
			})
		}
	}
}

// TestSTARTTLSNotOffered: an account that asks for STARTTLS never logs in
// on a server that does not offer it, even when plain text is allowed.
func TestSTARTTLSNotOffered(t *testing.T) {
	t.Parallel()
	for protocol, verb := range map[string]string{"imap": "STARTTLS", "pop3": "STLS"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverSpec{protocol: protocol, security: "plain"})
			acct := accountOf(srv, protocol, mailbox.StartTLS)
			acct.AllowPlaintext = true
			_, err := mailbox.Open(context.Background(), acct, &mailbox.Options{CommandTimeout: 5 * time.Second})
			require.ErrorContains(t, err, "refused "+verb+", so the login is not sent in clear")
			require.False(t, mailbox.IsAuth(err))
			require.Zero(t, srv.Logins())
			received := srv.Received()
			require.Contains(t, string(received), verb, "the client asked for the upgrade")
			requireNoCredentials(t, received)
			for _, cmd := range []string{"LOGIN", "AUTHENTICATE", "AUTH ", "USER", "PASS"} {
				require.NotContains(t, string(received), cmd)
			}
		})
	}
}
