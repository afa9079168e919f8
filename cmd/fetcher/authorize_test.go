package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

const (
	supportInbox = "Support inbox"
	supportUser  = "help@example.com"
)

// running is a command started in the background.
type running struct {
	out, errOut *logtest.Buffer
	done        chan int
}

// startMain runs the program in the background with stdin as its input.
func startMain(t *testing.T, env map[string]string, stdin io.Reader, args ...string) *running {
	t.Helper()
	r := &running{out: &logtest.Buffer{}, errOut: &logtest.Buffer{}, done: make(chan int, 1)}
	m := &Main{Stdout: r.out, Stderr: r.errOut, Stdin: stdin, Getenv: func(k string) string { return env[k] }}
	go func() { r.done <- m.Run(context.Background(), args) }()
	return r
}

func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not end; stdout: %s\nstderr: %s", r.out.String(), r.errOut.String())
		return -1
	}
}

// printed waits for the command to print something re matches.
func (r *running) printed(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	require.Eventually(t, func() bool {
		m = re.FindStringSubmatch(r.out.String())
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "stdout: %s\nstderr: %s", r.out.String(), r.errOut.String())
	return m
}

var authorizeAddress = regexp.MustCompile(`http://127\.0\.0\.1:\d+/\S+/oauth2/v2\.0/authorize\?\S+`)

// addReauthMailbox inserts a mailbox, as an admin would, whose refresh
// token is missing: needs_reauth, with an error and a backoff.
func addReauthMailbox(t *testing.T, db *store.DB, name, grant, redirect string, tokens *oauthtest.Server, imapSrv *mailboxtest.IMAPServer) {
	t.Helper()
	require.NoError(t, db.Exec(context.Background(), `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, oauth_grant, tenant_id, client_id,
		 client_secret, redirect_url, authority_url, status, last_error, last_error_at, reauth_fingerprint,
		 consecutive_failures, next_attempt_at)
		VALUES (?, 'imap', ?, ?, true, ?, 'microsoft', ?, 'contoso.onmicrosoft.com', 'app', 'app-secret', ?, ?,
		 'needs_reauth', 'no refresh token is stored', ?, 'fp', 3, ?)`,
		name, imapSrv.Host(), imapSrv.Port(), supportUser, grant, redirect, tokens.URL(),
		time.Now().UTC(), time.Now().Add(time.Hour).UTC()))
}

func requireAuthorized(t *testing.T, db *store.DB, tokens *oauthtest.Server, r *running) {
	t.Helper()
	mb, err := db.Mailboxes().GetByName(context.Background(), supportInbox)
	require.NoError(t, err)
	require.NotEmpty(t, mb.RefreshToken)
	user, ok := tokens.AccessTokenUser(mb.AccessToken)
	require.True(t, ok, "access_token must be one the provider issued")
	require.Equal(t, supportUser, user)
	require.False(t, mb.AccessTokenExpiresAt.IsZero())
	require.Equal(t, store.StatusActive, mb.Status)
	require.Empty(t, mb.LastError)
	require.True(t, mb.LastErrorAt.IsZero())
	require.Empty(t, mb.ReauthFingerprint)
	require.True(t, mb.NextAttemptAt.IsZero())
	require.Zero(t, mb.ConsecutiveFailures)
	require.Contains(t, r.out.String(), `Authorized mailbox "Support inbox" (help@example.com)`)
	for _, secret := range []string{mb.RefreshToken, mb.AccessToken, "app-secret"} {
		require.NotContains(t, r.out.String()+r.errOut.String(), secret, "nothing secret may be printed or logged")
	}
}

// TestAuthorizeCommand is the scenario: a mailbox without a refresh
// token, `fetcher authorize`, the test as the browser, then a fetch.
func TestAuthorizeCommand(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, d)
			env, tokens, imapSrv := servers(t, db)
			addReauthMailbox(t, db, supportInbox, "refresh_token", "http://127.0.0.1/testApp/", tokens, imapSrv)
			imapSrv.AddUser(supportUser, "")
			_, err := imapSrv.Deliver(supportUser, "INBOX", []byte("From: a@example.org\r\nSubject: Printer\r\nMessage-ID: <p@example.org>\r\n\r\nbody\r\n"))
			require.NoError(t, err)

			r := startMain(t, env, nil, "authorize", supportInbox, "--timeout", "30s")
			authURL := r.printed(t, authorizeAddress)[0]
			answer := browserConsent(t, authURL)

			// A forged answer (another state) is refused and stores nothing.
			forged := *answer
			q := forged.Query()
			q.Set("state", "12345")
			forged.RawQuery = q.Encode()
			status, page := browse(t, forged.String())
			require.Equal(t, http.StatusBadRequest, status)
			require.Contains(t, page, "state does not match")
			mb, err := db.Mailboxes().GetByName(context.Background(), supportInbox)
			require.NoError(t, err)
			require.Empty(t, mb.RefreshToken)
			require.Equal(t, store.StatusNeedsReauth, mb.Status)

			status, page = browse(t, answer.String())
			require.Equal(t, http.StatusOK, status, page)
			require.Contains(t, page, "You can close this window")
			require.Equal(t, exitOK, r.wait(t), r.errOut.String())
			requireAuthorized(t, db, tokens, r)

			run := runMain(t, context.Background(), env, "run", "--once")
			require.Equal(t, exitOK, run.code, run.stderr)
			require.Contains(t, run.stdout, "1 tickets created")
		})
	}
}

func TestAuthorizeCommandPaste(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	addReauthMailbox(t, db, supportInbox, "refresh_token", "https://helpdesk.example.com/oauth/callback", tokens, imapSrv)
	stdin, keyboard := io.Pipe()
	t.Cleanup(func() { keyboard.Close() })

	r := startMain(t, env, stdin, "authorize", supportInbox)
	answer := browserConsent(t, r.printed(t, authorizeAddress)[0])
	require.Equal(t, "helpdesk.example.com", answer.Host)
	require.Contains(t, r.out.String(), "Paste the full address")
	_, err := io.WriteString(keyboard, answer.String()+"\n")
	require.NoError(t, err)

	require.Equal(t, exitOK, r.wait(t), r.errOut.String())
	requireAuthorized(t, db, tokens, r)
	require.NotContains(t, r.out.String()+r.errOut.String(), answer.Query().Get("code"))
}

func TestAuthorizeCommandDevice(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	addReauthMailbox(t, db, supportInbox, "refresh_token", "", tokens, imapSrv)

	r := startMain(t, env, nil, "authorize", "--device", supportInbox)
	code := r.printed(t, regexp.MustCompile(`enter the code (\w+)`))[1]
	require.True(t, tokens.ApproveDevice(code, supportUser))

	require.Equal(t, exitOK, r.wait(t), r.errOut.String())
	requireAuthorized(t, db, tokens, r)
}

func TestAuthorizeCommandTimeout(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	addReauthMailbox(t, db, supportInbox, "refresh_token", "http://127.0.0.1/testApp/", tokens, imapSrv)

	r := startMain(t, env, nil, "authorize", "--timeout", "1s", supportInbox)
	require.Equal(t, exitFailed, r.wait(t))
	require.Contains(t, r.errOut.String(), "timed out waiting for the sign-in")
	require.Contains(t, r.errOut.String(), `Do this: run fetcher authorize "Support inbox" again`)
	require.Contains(t, r.errOut.String(), "--timeout (now 1s")
	mb, err := db.Mailboxes().GetByName(context.Background(), supportInbox)
	require.NoError(t, err)
	require.Equal(t, store.StatusNeedsReauth, mb.Status)
	require.Empty(t, mb.RefreshToken)
}

func TestAuthorizeCommandAdminConsent(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, tokens, imapSrv := servers(t, db)
	addReauthMailbox(t, db, supportInbox, "refresh_token", "http://127.0.0.1/testApp/", tokens, imapSrv)
	addReauthMailbox(t, db, "App-only", "client_credentials", "", tokens, imapSrv)
	require.NoError(t, db.Exec(context.Background(), `INSERT INTO mailboxes (name, protocol, host, port, username, oauth_provider, client_id)
		VALUES ('Gmail', 'imap', 'imap.gmail.com', 993, 'x@gmail.com', 'google', 'g')`))

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"delegated", []string{"--admin-consent", supportInbox}, exitOK, []string{
			tokens.URL() + "/contoso.onmicrosoft.com/v2.0/adminconsent?", "client_id=app",
			"redirect_uri=http%3A%2F%2F127.0.0.1%2FtestApp%2F", `fetcher authorize "Support inbox"`}},
		{"app-only", []string{"App-only", "--admin-consent"}, exitOK, []string{
			"scope=https%3A%2F%2Foutlook.office365.com%2F.default", "New-ServicePrincipal -AppId app",
			"Add-MailboxPermission -Identity help@example.com"}},
		{"app-only without the flag", []string{"App-only"}, exitFailed, []string{
			"need no sign-in, only admin consent", `fetcher authorize --admin-consent "App-only"`}},
		{"google", []string{"--admin-consent", "Gmail"}, exitFailed, []string{
			"applies to Microsoft mailboxes only", `fetcher authorize "Gmail"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, context.Background(), env, append([]string{"authorize"}, tt.args...)...)
			require.Equal(t, tt.wantCode, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			for _, w := range tt.want {
				require.Contains(t, r.stdout+r.stderr, w)
			}
		})
	}
}

func TestAuthorizeCommandUsage(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env := map[string]string{"DATABASE_URL": db.URL()}
	require.NoError(t, db.Exec(context.Background(), `INSERT INTO mailboxes (name, protocol, host, port, username)
		VALUES ('Support inbox', 'imap', 'h', 993, 'u')`))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"help", []string{"authorize", "--help"}, exitOK, "Usage: fetcher authorize [flags] MAILBOX"},
		{"help lists flags", []string{"authorize", "-h"}, exitOK, "-admin-consent"},
		{"no mailbox", []string{"authorize"}, exitUsage, "one mailbox name"},
		{"two mailboxes", []string{"authorize", "a", "b"}, exitUsage, "got 2"},
		{"unknown flag after the name", []string{"authorize", "a", "--browser"}, exitUsage, "-browser"},
		{"both flows", []string{"authorize", "--device", "--admin-consent", "a"}, exitUsage, "either"},
		{"timeout too short", []string{"authorize", "--timeout", "500ms", "a"}, exitUsage, "too short"},
		{"timeout too long", []string{"authorize", "--timeout", "61m", "a"}, exitUsage, "at most 1h0m0s"},
		{"help names the default timeout", []string{"authorize", "-h"}, exitOK, "(default 5m0s)"},
		{"unknown mailbox", []string{"authorize", "Sales"}, exitFailed, `no mailbox is named "Sales"; mailboxes.name holds "Support inbox"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, context.Background(), env, tt.args...)
			require.Equal(t, tt.wantCode, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout+r.stderr, tt.wantText)
		})
	}
}

func TestSplitOperands(t *testing.T) {
	t.Parallel()
	var o authorizeOptions
	tests := []struct {
		args            []string
		flags, operands []string
	}{
		{[]string{"Support inbox"}, nil, []string{"Support inbox"}},
		{[]string{"--device", "Support inbox", "--timeout", "1m"}, []string{"--device", "--timeout", "1m"}, []string{"Support inbox"}},
		{[]string{"--database", "sqlite:x.db", "A", "B"}, []string{"--database", "sqlite:x.db"}, []string{"A", "B"}},
		{[]string{"--", "-odd name"}, []string{"--"}, []string{"-odd name"}},
	}
	for _, tt := range tests {
		flags, operands := splitOperands(tt.args, o.register)
		require.Equal(t, tt.flags, flags, "splitOperands(%q) flags", tt.args)
		require.Equal(t, tt.operands, operands, "splitOperands(%q) operands", tt.args)
	}
}

// browserConsent plays the user at the provider: it opens authURL and returns where
// the provider sends the browser, without going there.
func browserConsent(t *testing.T, authURL string) *url.URL {
	t.Helper()
	loc, err := oauthtest.NewBrowser().Consent(authURL)
	require.NoError(t, err)
	return loc
}

// browse opens u like a browser and returns the status and page.
func browse(t *testing.T, u string) (int, string) {
	t.Helper()
	status, page, err := oauthtest.NewBrowser().Open(u)
	require.NoError(t, err)
	return status, page
}
