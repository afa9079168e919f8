package fetch_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// mailServer is an IMAP or POP3 test server.
type mailServer interface {
	Host() string
	Port() int
	Logins() int
	Received() []byte
	AddUser(name, password string)
	Close() error
}

// tlsEnv is a database, a token endpoint and mail servers of one protocol
// with the certificates and TLS modes a test asks for.
type tlsEnv struct {
	db       *store.DB
	tokens   *oauthtest.Server
	protocol string
	logs     *logtest.Buffer
	deliver  map[mailServer]func(user string, raw []byte) error
}

func newTLSEnv(t *testing.T, db *store.DB, protocol string) *tlsEnv {
	t.Helper()
	tokens := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(tokens.Close)
	tokens.AddClient(clientID, clientSecret)
	return &tlsEnv{db: db, tokens: tokens, protocol: protocol, logs: &logtest.Buffer{},
		deliver: map[mailServer]func(string, []byte) error{}}
}

// server starts a server: security tls, starttls or plain; cert nil makes
// a fresh self-signed one; maxTLS caps its TLS version.
func (e *tlsEnv) server(t *testing.T, security string, cert *mailboxtest.Cert, maxTLS uint16) mailServer {
	t.Helper()
	check := func(u, tok string) bool {
		got, ok := e.tokens.AccessTokenUser(tok)
		return ok && got == u
	}
	var srv mailServer
	if e.protocol == "imap" {
		s, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{Security: security, Cert: cert, MaxTLSVersion: maxTLS, CheckToken: check})
		require.NoError(t, err)
		e.deliver[s] = func(user string, raw []byte) error { _, err := s.Deliver(user, "INBOX", raw); return err }
		srv = s
	} else {
		s, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{Security: security, Cert: cert, MaxTLSVersion: maxTLS, CheckToken: check})
		require.NoError(t, err)
		e.deliver[s] = func(user string, raw []byte) error { _, err := s.Deliver(user, raw); return err }
		srv = s
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// runner fetches with the shared options a deployment would have: the
// system's roots, plus roots when given (FETCHER_CA_FILE).
func (e *tlsEnv) runner(roots *x509.CertPool) *fetch.Runner {
	opts := &mailbox.Options{CommandTimeout: 5 * time.Second}
	if roots != nil {
		opts.TLSConfig = &tls.Config{RootCAs: roots}
	}
	return &fetch.Runner{DB: e.db, Mailbox: opts, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))}
}

// addMailbox inserts a row for a new user of srv with one message waiting,
// then applies set (SQL assignments) with args, as an admin would.
func (e *tlsEnv) addMailbox(t *testing.T, name string, srv mailServer, set string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	user := strings.ToLower(strings.ReplaceAll(name, " ", "-")) + "@example.com"
	srv.AddUser(user, "")
	require.NoError(t, e.deliver[srv](user, []byte(mail(1, ""))))
	require.NoError(t, e.db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, username, oauth_provider, tenant_id, client_id, client_secret, authority_url, refresh_token)
		VALUES (?, ?, ?, ?, ?, 'microsoft', ?, ?, ?, ?, ?)`,
		name, e.protocol, srv.Host(), srv.Port(), user, tenant, clientID, clientSecret, e.tokens.URL(), e.tokens.IssueRefreshToken(clientID, user)))
	mb, err := e.db.Mailboxes().GetByName(ctx, name)
	require.NoError(t, err)
	if set != "" {
		require.NoError(t, e.db.Exec(ctx, "UPDATE mailboxes SET "+set+" WHERE id = ?", append(args, mb.ID)...))
	}
	return mb.ID
}

func (e *tlsEnv) pass(t *testing.T, r *fetch.Runner) fetch.Summary {
	t.Helper()
	sum, err := r.RunOnce(context.Background())
	require.NoError(t, err)
	return sum
}

// requireFetched checks that the mailbox stored its message and is active.
func (e *tlsEnv) requireFetched(t *testing.T, id int64) {
	t.Helper()
	mb, err := e.db.Mailboxes().Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, store.StatusActive, mb.Status, "%s: %s", mb.Name, mb.LastError)
	require.Equal(t, int64(1), count(t, e.db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id), mb.Name)
}

// requireRefused checks that the mailbox failed with a last_error holding
// each of says, and stored nothing.
func (e *tlsEnv) requireRefused(t *testing.T, id int64, says ...string) string {
	t.Helper()
	mb, err := e.db.Mailboxes().Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, store.StatusFailing, mb.Status, mb.Name)
	for _, s := range says {
		require.Contains(t, mb.LastError, s, mb.Name)
	}
	require.Zero(t, count(t, e.db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", id), mb.Name)
	return mb.LastError
}

// skipVerifyWarnings counts the tls_skip_verify warnings logged for id.
func (e *tlsEnv) skipVerifyWarnings(t *testing.T, id int64, name string) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	for sc.Scan() {
		var line struct {
			Level     string `json:"level"`
			Msg       string `json:"msg"`
			MailboxID int64  `json:"mailbox_id"`
			Mailbox   string `json:"mailbox"`
			Fix       string `json:"fix"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		if line.Level == "WARN" && strings.Contains(line.Msg, "tls_skip_verify") && line.MailboxID == id {
			require.Equal(t, name, line.Mailbox)
			require.Contains(t, line.Msg, "anyone on the network path")
			require.Contains(t, line.Fix, "set tls_ca_cert")
			n++
		}
	}
	return n
}

func addr(srv mailServer) string { return net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())) }

// TestServerCertificates runs one pass over mailboxes of one self-signed
// server, fetched at the same time with different TLS settings: only those
// that trust its CA, or skip verification, get in; trusting it on one
// mailbox changes nothing for the others.
func TestServerCertificates(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"imap", "pop3"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				e := newTLSEnv(t, db, protocol)
				cert, err := mailboxtest.NewCert()
				require.NoError(t, err)
				other, err := mailboxtest.NewCert()
				require.NoError(t, err)
				srv := e.server(t, "tls", cert, 0)
				byDefault := e.addMailbox(t, "By default", srv, "")
				ownCA := e.addMailbox(t, "Own CA", srv, "tls_ca_cert = ?", string(cert.PEM))
				otherCA := e.addMailbox(t, "Other CA", srv, "tls_ca_cert = ?", string(other.PEM))
				skip := e.addMailbox(t, "Skip verify", srv, "tls_skip_verify = true")
				r := e.runner(nil)

				sum := e.pass(t, r)
				require.Len(t, sum.Failed, 2, "%v", sum.Failed)
				e.requireFetched(t, ownCA)
				e.requireFetched(t, skip)
				for _, id := range []int64{byDefault, otherCA} {
					msg := e.requireRefused(t, id, addr(srv), "not trusted", "tls_ca_cert", "FETCHER_CA_FILE")
					require.NotContains(t, strings.ToLower(msg), "skip", "never advise turning verification off")
				}
				require.Equal(t, 2, srv.Logins(), "the refused mailboxes sent no login")
				require.Nil(t, r.Mailbox.TLSConfig, "the shared options are left as they were")

				e.pass(t, r)
				require.Equal(t, 2, e.skipVerifyWarnings(t, skip, "Skip verify"), "one warning per run")
				require.Zero(t, e.skipVerifyWarnings(t, ownCA, "Own CA"))
			})
		})
	}
}

// TestGlobalCAFile: a server whose CA is in FETCHER_CA_FILE (the shared
// roots: the system's plus the file's) is trusted for every mailbox, and a
// mailbox's own tls_ca_cert adds to those roots rather than replacing them.
func TestGlobalCAFile(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"imap", "pop3"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			e := newTLSEnv(t, storetest.SQLite(t), protocol)
			global, err := mailboxtest.NewCert()
			require.NoError(t, err)
			own, err := mailboxtest.NewCert()
			require.NoError(t, err)
			globalSrv := e.server(t, "tls", global, 0)
			ownSrv := e.server(t, "tls", own, 0)
			roots, err := x509.SystemCertPool()
			require.NoError(t, err)
			require.True(t, roots.AppendCertsFromPEM(global.PEM))
			plain := e.addMailbox(t, "Global CA", globalSrv, "")
			both := e.addMailbox(t, "Own CA on top", globalSrv, "tls_ca_cert = ?", string(own.PEM))
			ownOnly := e.addMailbox(t, "Own server", ownSrv, "tls_ca_cert = ?", string(own.PEM))

			sum := e.pass(t, e.runner(roots))
			require.True(t, sum.OK(), "%v", sum.Failed)
			for _, id := range []int64{plain, both, ownOnly} {
				e.requireFetched(t, id)
			}
		})
	}
}

// TestTransportRefusals: a server that only speaks TLS 1.0/1.1, a
// plain-text login the row does not allow, and a STARTTLS the server does
// not offer all fail the mailbox without a credential crossing the wire;
// allow_plaintext lets a local test server in.
func TestTransportRefusals(t *testing.T) {
	t.Parallel()
	for protocol, starttls := range map[string]string{"imap": "STARTTLS", "pop3": "STLS"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			e := newTLSEnv(t, storetest.SQLite(t), protocol)
			legacyCert, err := mailboxtest.NewCert()
			require.NoError(t, err)
			legacy := e.server(t, "tls", legacyCert, tls.VersionTLS11)
			refusing := e.server(t, "plain", nil, 0)
			allowing := e.server(t, "plain", nil, 0)
			old := e.addMailbox(t, "Legacy TLS", legacy, "tls_ca_cert = ?", string(legacyCert.PEM))
			plain := e.addMailbox(t, "Plain", refusing, "use_ssl = false")
			noSTARTTLS := e.addMailbox(t, "No STARTTLS", refusing, "use_ssl = false, starttls = true, allow_plaintext = true")
			allowed := e.addMailbox(t, "Plain allowed", allowing, "use_ssl = false, allow_plaintext = true")

			sum := e.pass(t, e.runner(nil))
			require.Len(t, sum.Failed, 3, "%v", sum.Failed)
			e.requireRefused(t, old, addr(legacy), "older than 1.2", "TLS 1.2 or later")
			e.requireRefused(t, plain, "use_ssl", "allow_plaintext")
			e.requireRefused(t, noSTARTTLS, "refused "+starttls+", so the login is not sent in clear")
			e.requireFetched(t, allowed)

			require.Zero(t, legacy.Logins()+refusing.Logins())
			got := string(refusing.Received())
			require.Contains(t, got, starttls, "the STARTTLS mailbox asked for the upgrade")
			for _, login := range []string{"LOGIN", "AUTHENTICATE", "AUTH ", "USER ", "PASS "} {
				require.NotContains(t, got, login, "no login may follow a refused upgrade")
			}
			require.Contains(t, string(allowing.Received()), map[string]string{"imap": "AUTHENTICATE", "pop3": "AUTH"}[protocol],
				"allowed, the login goes in clear (and the recording sees it)")
		})
	}
}
