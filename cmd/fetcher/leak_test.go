package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// Known secrets of the leak test. Each is long and distinctive, so a
// match is never a coincidence.
const (
	leakClientSecret = "LeakClientSecret~7f3a9c2e5b"
	leakWrongSecret  = "LeakWrongSecret~1d4e6a8c0f"
	leakPassword     = "LeakPassword!5c7e9a1b3d"
	leakBadPassword  = "LeakBadPassword!2b4d6f8a0c"
	// leakSMTPPassword logs the SMTPBadPassword mailbox in to IMAP; the
	// SMTP server wants another one, so its AUTH PLAIN is refused.
	leakSMTPPassword = "LeakSMTPPassword!8d0f2b4c6e"
)

// The SMTP side of the leak test: like Exchange, the server takes only
// tokens carrying SMTP.Send, which the fetching token lacks.
const (
	leakSendScope   = "https://outlook.office.com/SMTP.Send"
	leakSMTPRefused = "smtpno@example.com" // its tokens are refused, as with SMTP AUTH off
)

// tokenRecorder remembers every access token the IMAP server was shown.
type tokenRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *tokenRecorder) add(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, tok)
}

func (r *tokenRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestNoSecretInAnyOutput runs the real fetcher process twice over
// mailboxes that succeed and fail in every way a credential can (a
// refresh, a revoked refresh token, a wrong client secret, a password
// login, a wrong password), with debug logs, JSON logs and the protocol
// trace on. Four of them send notifications over SMTP (docs/notifications.md)
// as new mail arrives before each run: with a second, SMTP.Send token
// (XOAUTH2), with the password (AUTH PLAIN), with tokens the server
// refuses, and with a password it refuses, so the sending token's refresh,
// the SMTP trace and the refusal texts (smtp_last_error, outbox.last_error)
// are all written. Then it searches everything the processes printed and
// every row of every table for each secret: client secrets, passwords,
// refresh and access tokens of both kinds, the XOAUTH2 and PLAIN strings
// built from them, and the encryption key. None may appear. (The secrets'
// own columns hold only ciphertext, since a key is configured.)
func TestNoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	tokens := oauthtest.NewServer(oauthtest.Options{Strict: true})
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", leakClientSecret)
	var shown tokenRecorder
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: func(u, tok string) bool {
		shown.add(tok)
		got, ok := tokens.AccessTokenUser(tok)
		return ok && got == u
	}})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	var smtpShown tokenRecorder
	smtpSrv, err := mailboxtest.StartSMTP(mailboxtest.SMTPOptions{
		Security: "starttls", Cert: srv.Cert, NoInitialResponse: true,
		CheckToken: func(u, tok string) bool {
			smtpShown.add(tok)
			at, ok := tokens.AccessToken(tok)
			return ok && u != leakSMTPRefused && at.User == u && slices.Contains(at.Scopes, leakSendScope)
		},
		Passwords: map[string]string{"pw@example.com": leakPassword, "smtpbadpw@example.com": leakPassword},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = smtpSrv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, srv.Cert.PEM, 0o600))
	key := genkey(t)

	issued := map[string]string{}
	oauthBox := func(name, user, clientSecret string) {
		srv.AddUser(user, "")
		issued[name] = tokens.IssueRefreshToken("app", user)
		require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
			(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret, refresh_token, authority_url)
			VALUES (?, 'imap', ?, ?, true, ?, 'microsoft', 'contoso.onmicrosoft.com', 'app', ?, ?, ?)`,
			name, srv.Host(), srv.Port(), user, clientSecret, issued[name], tokens.URL()))
	}
	passwordBox := func(name, user, serverPassword, rowPassword string) {
		srv.AddUser(user, serverPassword)
		require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
			(name, protocol, host, port, use_ssl, username, auth_type, password)
			VALUES (?, 'imap', ?, ?, true, ?, 'password', ?)`,
			name, srv.Host(), srv.Port(), user, rowPassword))
	}
	// sends turns sending on for a mailbox, with a ticket type that tells
	// an admin of each new ticket and acknowledges it.
	sends := func(name string) {
		require.NoError(t, db.Exec(ctx, `UPDATE mailboxes SET smtp_enabled = true, smtp_host = ?, smtp_port = ?,
			smtp_security = 'starttls' WHERE name = ?`, smtpSrv.Host(), smtpSrv.Port(), name))
		require.NoError(t, db.Exec(ctx, `INSERT INTO ticket_types (name, mailbox_id, admin_email, acknowledge)
			SELECT ?, id, 'lead@example.com', true FROM mailboxes WHERE name = ?`, name+" tickets", name))
	}
	oauthBox("Good", "good@example.com", leakClientSecret)
	sends("Good")
	oauthBox("Revoked", "revoked@example.com", leakClientSecret)
	tokens.RevokeUser("revoked@example.com")
	oauthBox("WrongSecret", "wrong@example.com", leakWrongSecret)
	passwordBox("Password", "pw@example.com", leakPassword, leakPassword)
	sends("Password")
	passwordBox("BadPassword", "badpw@example.com", leakPassword, leakBadPassword)
	oauthBox("SMTPRefused", leakSMTPRefused, leakClientSecret)
	sends("SMTPRefused")
	passwordBox("SMTPBadPassword", "smtpbadpw@example.com", leakSMTPPassword, leakSMTPPassword)
	sends("SMTPBadPassword")
	receiving := []string{"good@example.com", "pw@example.com", leakSMTPRefused, "smtpbadpw@example.com"}

	env := map[string]string{
		"DATABASE_URL": db.URL(), "FETCHER_CA_FILE": ca, "FETCHER_SECRET_KEY": key,
		"FETCHER_LOG_LEVEL": "debug", "FETCHER_LOG_FORMAT": "json", "FETCHER_PROTOCOL_TRACE": "true",
	}
	var output strings.Builder
	for run := range 2 {
		// New mail before each run: the first run gets the sending token,
		// the second sends with the cached one.
		for _, user := range receiving {
			_, err := srv.Deliver(user, "INBOX", []byte(fmt.Sprintf(
				"From: a@example.org\r\nSubject: hello %d\r\nMessage-ID: <%d.%s>\r\n\r\nbody\r\n", run, run, user)))
			require.NoError(t, err)
		}
		cmd, out := fetcherProcess(t, env, "run", "--once")
		_ = cmd.Wait() // exit status 1: some mailboxes fail by design
		output.WriteString(out.String())
	}
	text := output.String()
	// The scenarios happened: otherwise the search below proves nothing.
	// (Checked without printing the output, which holds the secrets
	// should the redaction be broken.)
	for _, want := range []string{`"mailbox":"Good"`, "AADSTS7000215", "AADSTS50173", "mailbox 1: C: T1 AUTHENTICATE XOAUTH2 [redacted]", "LOGIN", `"ok":true`,
		"mailbox 1: C: AUTH XOAUTH2", "mailbox 1: S: 235", "mailbox 4: C: AUTH PLAIN", "mailbox 4: S: 235", "S: 535 5.7.3", "S: 535 5.7.8",
		"mailbox 1: C: DATA", `"msg":"notifications sent"`} {
		//nolint:testifylint // Contains would print the output, secrets and all
		require.True(t, strings.Contains(text, want), "the output lacks %q", want)
	}
	// Mail was sent (twice two notifications each) and refused, both ways.
	sentBy := map[string]int{}
	for _, m := range smtpSrv.Messages() {
		sentBy[m.User]++
	}
	require.Equal(t, map[string]int{"good@example.com": 4, "pw@example.com": 4}, sentBy, "notifications the SMTP server accepted")
	refused := map[string]int{}
	for _, a := range smtpSrv.AuthLog() {
		if !a.OK {
			refused[a.Mechanism]++
		}
	}
	require.Positive(t, refused["XOAUTH2"], "a refused XOAUTH2 login")
	require.Positive(t, refused["PLAIN"], "a refused PLAIN login")
	for _, name := range []string{"SMTPRefused", "SMTPBadPassword"} {
		var smtpErr, outboxErr string
		require.NoError(t, db.QueryRow(ctx, `SELECT coalesce(smtp_last_error, ''),
			(SELECT coalesce(max(o.last_error), '') FROM outbox o WHERE o.mailbox_id = m.id AND o.status = 'pending')
			FROM mailboxes m WHERE name = ?`, []any{name}, &smtpErr, &outboxErr))
		require.Contains(t, smtpErr, "535", "%s: smtp_last_error", name)
		require.Contains(t, outboxErr, "535", "%s: outbox.last_error", name)
	}

	secrets := leakSecrets(t, ctx, db, key, issued, append(shown.all(), smtpShown.all()...))
	require.GreaterOrEqual(t, len(secrets), 30)
	dump := dumpTables(t, ctx, db)
	require.Contains(t, dump, "AADSTS50173", "last_error is in the dump")
	require.Contains(t, dump, "5.7.3", "smtp_last_error and outbox.last_error are in the dump")
	for _, s := range secrets {
		//nolint:testifylint // NotContains would print the secret on failure
		require.False(t, strings.Contains(text, s), "secret %.10s… leaked into the output", s)
		//nolint:testifylint // as above
		require.False(t, strings.Contains(dump, s), "secret %.10s… leaked into a table", s)
	}
	// The SMTP logins are in the trace, hidden: the XOAUTH2 response on its
	// own line, PLAIN's on the AUTH line.
	for _, want := range []string{"mailbox 1: C: AUTH XOAUTH2\n", "mailbox 1: C: [redacted]\n", "mailbox 4: C: AUTH PLAIN [redacted]\n"} {
		//nolint:testifylint // Contains would print the output, secrets and all
		require.True(t, strings.Contains(text, want), "the output lacks %q", want)
	}
}

// leakSecrets lists every secret of the run: those the test set, those
// the token endpoint issued (the access tokens the IMAP and SMTP servers
// were shown, and every mailbox's tokens and passwords read back through
// the key), and the XOAUTH2, PLAIN and LOGIN responses built from them.
func leakSecrets(t *testing.T, ctx context.Context, db *store.DB, key string, issued map[string]string, access []string) []string {
	t.Helper()
	require.NotEmpty(t, access)
	k, err := secret.ParseKey(key)
	require.NoError(t, err)
	keys, err := secret.NewKeyring(k)
	require.NoError(t, err)
	reader, err := store.Open(ctx, db.URL())
	require.NoError(t, err)
	defer reader.Close()
	reader.SetKeyring(keys)
	out := []string{leakClientSecret, leakWrongSecret, leakPassword, leakBadPassword, leakSMTPPassword, key}
	for _, rt := range issued {
		out = append(out, rt)
	}
	good, err := reader.Mailboxes().GetByName(ctx, "Good")
	require.NoError(t, err)
	require.NotEqual(t, issued["Good"], good.RefreshToken, "the refresh token was rotated")
	require.NotEmpty(t, good.SMTPAccessToken, "the sending token is cached apart: its scopes differ")
	require.NotEqual(t, good.AccessToken, good.SMTPAccessToken)
	all, err := reader.Mailboxes().List(ctx)
	require.NoError(t, err)
	var users []string
	for _, listed := range all {
		mb, err := reader.Mailboxes().Get(ctx, listed.ID)
		require.NoError(t, err)
		users = append(users, mb.Username)
		for _, s := range []string{mb.RefreshToken, mb.Password, mb.ClientSecret} {
			if s != "" {
				out = append(out, s)
			}
		}
		for _, tok := range []string{mb.AccessToken, mb.SMTPAccessToken} {
			if tok != "" {
				access = append(access, tok)
			}
		}
		if mb.Password != "" {
			// AUTH PLAIN's response (RFC 4616) and LOGIN's password.
			out = append(out, base64.StdEncoding.EncodeToString([]byte("\x00"+mb.Username+"\x00"+mb.Password)),
				base64.StdEncoding.EncodeToString([]byte(mb.Password)))
		}
	}
	for _, tok := range access {
		out = append(out, tok)
		for _, user := range users {
			out = append(out, base64.StdEncoding.EncodeToString([]byte("user="+user+"\x01auth=Bearer "+tok+"\x01\x01")))
		}
	}
	return out
}

// dumpTables returns every row of every table in the test's database as
// text.
func dumpTables(t *testing.T, ctx context.Context, db *store.DB) string {
	t.Helper()
	var names string
	require.NoError(t, db.QueryRow(ctx, `SELECT string_agg(table_name, ' ') FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`, nil, &names))
	var b strings.Builder
	for _, name := range strings.Fields(names) {
		var rows string
		require.NoError(t, db.QueryRow(ctx, `SELECT COALESCE(string_agg(t::text, E'\n'), '') FROM "`+name+`" t`, nil, &rows))
		b.WriteString(rows)
	}
	return b.String()
}
