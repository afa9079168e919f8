package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
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
// trace on. Then it searches everything the processes printed and every
// row of every table for each secret: client secrets, passwords, refresh
// and access tokens, the XOAUTH2 strings built from them, and the
// encryption key. None may appear. (The secrets' own columns hold only
// ciphertext, since a key is configured.)
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
	oauthBox("Good", "good@example.com", leakClientSecret)
	oauthBox("Revoked", "revoked@example.com", leakClientSecret)
	tokens.RevokeUser("revoked@example.com")
	oauthBox("WrongSecret", "wrong@example.com", leakWrongSecret)
	passwordBox("Password", "pw@example.com", leakPassword, leakPassword)
	passwordBox("BadPassword", "badpw@example.com", leakPassword, leakBadPassword)
	for _, user := range []string{"good@example.com", "pw@example.com"} {
		_, err := srv.Deliver(user, "INBOX", []byte("From: a@example.org\r\nSubject: hello\r\nMessage-ID: <"+user+">\r\n\r\nbody\r\n"))
		require.NoError(t, err)
	}

	env := map[string]string{
		"DATABASE_URL": db.URL(), "FETCHER_CA_FILE": ca, "FETCHER_SECRET_KEY": key,
		"FETCHER_LOG_LEVEL": "debug", "FETCHER_LOG_FORMAT": "json", "FETCHER_PROTOCOL_TRACE": "true",
	}
	var output strings.Builder
	for range 2 {
		cmd, out := fetcherProcess(t, env, "run", "--once")
		_ = cmd.Wait() // exit status 1: some mailboxes fail by design
		output.WriteString(out.String())
	}
	text := output.String()
	// The scenarios happened: otherwise the search below proves nothing.
	for _, want := range []string{`"mailbox":"Good"`, "AADSTS7000215", "AADSTS50173", "mailbox 1: C: T1 AUTHENTICATE XOAUTH2 [redacted]", "LOGIN", `"ok":true`} {
		require.Contains(t, text, want)
	}

	secrets := leakSecrets(t, ctx, db, key, issued, shown.all())
	require.GreaterOrEqual(t, len(secrets), 12)
	dump := dumpTables(t, ctx, db)
	require.Contains(t, dump, "AADSTS50173", "last_error is in the dump")
	for _, s := range secrets {
		//nolint:testifylint // NotContains would print the secret on failure
		require.False(t, strings.Contains(text, s), "secret %.10s… leaked into the output", s)
		//nolint:testifylint // as above
		require.False(t, strings.Contains(dump, s), "secret %.10s… leaked into a table", s)
	}
}

// leakSecrets lists every secret of the run: those the test set, those
// the token endpoint issued (read back through the key), and the XOAUTH2
// initial responses built from the access tokens.
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
	out := []string{leakClientSecret, leakWrongSecret, leakPassword, leakBadPassword, key}
	for _, rt := range issued {
		out = append(out, rt)
	}
	good, err := reader.Mailboxes().GetByName(ctx, "Good")
	require.NoError(t, err)
	require.NotEqual(t, issued["Good"], good.RefreshToken, "the refresh token was rotated")
	out = append(out, good.RefreshToken, good.AccessToken)
	for _, tok := range access {
		out = append(out, tok)
		for _, user := range []string{"good@example.com"} {
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
