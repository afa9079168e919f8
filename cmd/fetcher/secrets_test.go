package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

func genkey(t *testing.T) string {
	t.Helper()
	r := runMain(t, context.Background(), nil, "secrets", "genkey")
	require.Equal(t, exitOK, r.code, r.stderr)
	key := strings.TrimSpace(r.stdout)
	_, err := secret.ParseKey(key)
	require.NoError(t, err)
	return key
}

// plainMailbox inserts a mailbox whose secrets are plain text, as an
// admin's SQL would.
func plainMailbox(t *testing.T, url, name string) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	mb := store.Mailbox{Name: name, Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: "u@example.com", OAuthProvider: "microsoft", ClientID: "c",
		ClientSecret: "PlainSecret-" + name, RefreshToken: "PlainRefresh-" + name, Enabled: true}
	require.NoError(t, db.Mailboxes().Create(ctx, &mb))
	return mb.ID
}

func storedRefreshToken(t *testing.T, url string, id int64) string {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.QueryRow(context.Background(), "SELECT refresh_token FROM mailboxes WHERE id = ?", []any{id}, &v))
	return v
}

func TestSecretsRotateCommand(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			url := "sqlite:" + filepath.Join(t.TempDir(), "s.db")
			if d == store.Postgres {
				url = storetest.PostgresURL(t)
			}
			ctx := context.Background()
			id := plainMailbox(t, url, "a")
			oldKey, newKey := genkey(t), genkey(t)

			r := runMain(t, ctx, map[string]string{"DATABASE_URL": url}, "secrets", "status")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "no secret key configured")
			require.Regexp(t, `plain text\s+2`, r.stdout)
			require.Contains(t, r.stderr, "NO SECRET KEY CONFIGURED")

			// First key: the plain values are encrypted.
			env := map[string]string{"DATABASE_URL": url, "FETCHER_SECRET_KEY": oldKey}
			r = runMain(t, ctx, env, "secrets", "rotate")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "2 values in 1 mailboxes")
			first := storedRefreshToken(t, url, id)
			require.True(t, secret.IsSealed(first))

			// Rotation: new key, old key still decrypts.
			env = map[string]string{"DATABASE_URL": url, "FETCHER_SECRET_KEY": newKey, "FETCHER_SECRET_KEY_OLD": oldKey}
			r = runMain(t, ctx, env, "secrets", "status")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Regexp(t, `\(old: rotate\)\s+2`, r.stdout)
			r = runMain(t, ctx, env, "secrets", "rotate")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "FETCHER_SECRET_KEY_OLD can be removed")
			second := storedRefreshToken(t, url, id)
			require.NotEqual(t, secret.KeyID(first), secret.KeyID(second))

			// The new key alone now opens everything.
			keys, err := secret.NewKeyring(mustKey(t, newKey))
			require.NoError(t, err)
			plain, err := keys.Open(second, secret.Place("mailboxes", "refresh_token", id))
			require.NoError(t, err)
			require.Equal(t, "PlainRefresh-a", plain)

			// Without the key the values cannot be used, and status says so.
			r = runMain(t, ctx, map[string]string{"DATABASE_URL": url, "FETCHER_SECRET_KEY": oldKey}, "secrets", "status")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Regexp(t, `NOT CONFIGURED\)\s+2`, r.stdout)
			r = runMain(t, ctx, map[string]string{"DATABASE_URL": url, "FETCHER_SECRET_KEY": oldKey}, "secrets", "rotate")
			require.Equal(t, exitFailed, r.code)
			require.Contains(t, r.stdout, "FAILED mailbox")
			for _, out := range []string{r.stdout, r.stderr} {
				require.NotContains(t, out, "PlainRefresh-a")
				require.NotContains(t, out, "PlainSecret-a")
				require.NotContains(t, out, newKey)
				require.NotContains(t, out, oldKey)
			}
		})
	}
}

func mustKey(t *testing.T, text string) []byte {
	t.Helper()
	k, err := secret.ParseKey(text)
	require.NoError(t, err)
	return k
}

func TestSecretKeySettings(t *testing.T) {
	t.Parallel()
	key := genkey(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	openFile := filepath.Join(dir, "open-key")
	require.NoError(t, os.WriteFile(openFile, []byte(key), 0o644))
	db := func() string { return "sqlite:" + filepath.Join(t.TempDir(), "k.db") }

	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
		want     string
	}{
		{"no key warns", map[string]string{}, exitOK, "NO SECRET KEY CONFIGURED"},
		{"production refuses", map[string]string{"FETCHER_ENV": "production"}, exitUsage, "FETCHER_ENV is production but no secret key"},
		{"production with key", map[string]string{"FETCHER_ENV": "production", "FETCHER_SECRET_KEY": key}, exitOK, "encrypting with key"},
		{"key file", map[string]string{"FETCHER_SECRET_KEY_FILE": keyFile}, exitOK, "encrypting with key"},
		{"key file others can read", map[string]string{"FETCHER_SECRET_KEY_FILE": openFile}, exitOK, "chmod 600"},
		{"missing key file", map[string]string{"FETCHER_SECRET_KEY_FILE": filepath.Join(dir, "none")}, exitUsage, "FETCHER_SECRET_KEY_FILE"},
		{"both", map[string]string{"FETCHER_SECRET_KEY": key, "FETCHER_SECRET_KEY_FILE": keyFile}, exitUsage, "not both"},
		{"bad key", map[string]string{"FETCHER_SECRET_KEY": "hunter2"}, exitUsage, "fetcher secrets genkey"},
		{"bad old key", map[string]string{"FETCHER_SECRET_KEY": key, "FETCHER_SECRET_KEY_OLD": "x"}, exitUsage, "old secret key 1"},
		{"old key alone", map[string]string{"FETCHER_SECRET_KEY_OLD": key}, exitUsage, "without FETCHER_SECRET_KEY"},
		{"bad env", map[string]string{"FETCHER_ENV": "staging"}, exitUsage, "FETCHER_ENV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.env["DATABASE_URL"] = db()
			r := runMain(t, context.Background(), tt.env, "secrets", "status")
			require.Equal(t, tt.wantCode, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout+r.stderr, tt.want)
			require.NotContains(t, r.stdout+r.stderr, key, "the key itself is never printed")
		})
	}
}

func TestRunRefusesWithoutKeyInProduction(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p.db"), "FETCHER_ENV": "production"}
	r := runMain(t, context.Background(), env, "run", "--once")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "fetcher secrets genkey")
}

func TestSecretsUsage(t *testing.T) {
	t.Parallel()
	r := runMain(t, context.Background(), nil, "secrets")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "fetcher secrets rotate")
	r = runMain(t, context.Background(), nil, "secrets", "shred")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, `unknown secrets command "shred"`)
}

// TestAuthorizeRepairsAnUndecryptableToken: a refresh token that cannot
// be decrypted (copied from another row, or sealed under a lost key) is
// what `fetcher authorize` replaces, so it must not stop the sign-in.
func TestAuthorizeRepairsAnUndecryptableToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	env["FETCHER_SECRET_KEY"] = genkey(t)
	addReauthMailbox(t, db, supportInbox, "refresh_token", "http://127.0.0.1/testApp/", tokens, imapSrv)
	imapSrv.AddUser(supportUser, "")
	keys, err := secret.NewKeyring(mustKey(t, env["FETCHER_SECRET_KEY"]))
	require.NoError(t, err)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = ?, access_token = ? WHERE name = ?",
		"enc:v1:"+keys.PrimaryID()+":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"enc:v1:"+keys.PrimaryID()+":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", supportInbox))

	r := runMain(t, ctx, env, "run", "--once")
	require.Equal(t, exitFailed, r.code)
	var lastError string
	require.NoError(t, db.QueryRow(ctx, "SELECT last_error FROM mailboxes WHERE name = ?", []any{supportInbox}, &lastError))
	require.Contains(t, lastError, "refresh_token cannot be decrypted")
	require.Contains(t, lastError, "fetcher authorize")

	run := startMain(t, env, nil, "authorize", supportInbox, "--timeout", "30s")
	status, page := browse(t, browserConsent(t, run.printed(t, authorizeAddress)[0]).String())
	require.Equal(t, 200, status, page)
	require.Equal(t, exitOK, run.wait(t), run.errOut.String())

	r = runMain(t, ctx, env, "run", "--once")
	require.Equal(t, exitOK, r.code, r.stderr)
}
