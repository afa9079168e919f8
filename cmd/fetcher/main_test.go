package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

type result struct {
	code           int
	stdout, stderr string
}

// runMain runs the program as a user would, with env as its environment.
func runMain(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := m.Run(ctx, args)
	return result{code, out.String(), errOut.String()}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantText string
	}{
		{"help", nil, []string{"help"}, exitOK, "fetcher run"},
		{"no command", nil, nil, exitUsage, "Usage:"},
		{"unknown command", nil, []string{"fetch"}, exitUsage, `unknown command "fetch"`},
		{"bad interval env", map[string]string{"FETCHER_INTERVAL": "ten"}, []string{"run", "--once"}, exitUsage, "FETCHER_INTERVAL"},
		{"bad log format", nil, []string{"run", "--log-format", "xml"}, exitUsage, "--log-format"},
		{"bad concurrency env", map[string]string{"FETCHER_CONCURRENCY": "many"}, []string{"run", "--once"}, exitUsage, "FETCHER_CONCURRENCY"},
		{"concurrency out of range", nil, []string{"run", "--once", "--concurrency", "0"}, exitUsage, "--concurrency"},
		{"command timeout too short", map[string]string{"FETCHER_COMMAND_TIMEOUT": "1ms"}, []string{"run", "--once"}, exitUsage, "FETCHER_COMMAND_TIMEOUT"},
		{"size limit too small", nil, []string{"run", "--once", "--max-message-bytes", "1000"}, exitUsage, "--max-message-bytes"},
		{"stray argument", nil, []string{"migrate", "now"}, exitUsage, "takes no arguments"},
		{"command help", nil, []string{"run", "--help"}, exitOK, "-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, context.Background(), tt.env, tt.args...)
			require.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stdout+r.stderr, tt.wantText)
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			url := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
			if d == store.Postgres {
				url = storetest.PostgresURL(t)
			}
			all, err := store.Migrations(d)
			require.NoError(t, err)
			env := map[string]string{"DATABASE_URL": url}
			r := runMain(t, context.Background(), env, "migrate")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, fmt.Sprintf("%d migrations applied", len(all)))
			r = runMain(t, context.Background(), env, "migrate")
			require.Contains(t, r.stdout, "0 migrations applied")
			r = runMain(t, context.Background(), env, "migrate", "--down")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "reverted: "+all[len(all)-1].Version)
		})
	}
}

func TestDemoCommand(t *testing.T) {
	t.Parallel()
	r := runMain(t, context.Background(), nil, "demo")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{"First pass: fetched 3, new tickets 3", "Second pass: fetched 1, new tickets 0, replies threaded 1", "Drucker im Büro defekt", "Mailbox status: active", "Token requests: 2",
		"to helpdesk-lead@demo.example       [#1] New ticket: Drucker im Büro defekt", "to anna.schmidt@example.de          [#1] Drucker im Büro defekt"} {
		require.Contains(t, r.stdout, want)
	}
}

// TestRunOnceEndToEnd is the issue's acceptance scenario: mailboxes added
// by SQL, `fetcher run --once` twice, one ticket per message, the rotated
// refresh token stored, a wrong refresh token leaving its mailbox
// needs_reauth while the other is fetched.
func TestRunOnceEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			env, tokens, imapSrv := servers(t, db)
			good := tokens.IssueRefreshToken("app", "help@example.com")
			insertMailbox(t, db, "Help", "help@example.com", good, imapSrv, tokens)
			insertMailbox(t, db, "Stale", "stale@example.com", "M.C512_BAY.0.U.-stale-token", imapSrv, tokens)
			imapSrv.AddUser("help@example.com", "")
			imapSrv.AddUser("stale@example.com", "")
			for _, subj := range []string{"Login fails", "Need a license"} {
				_, err := imapSrv.Deliver("help@example.com", "INBOX", []byte("From: a@example.org\r\nSubject: "+subj+"\r\nMessage-ID: <"+strings.ReplaceAll(subj, " ", ".")+"@example.org>\r\n\r\nbody\r\n"))
				require.NoError(t, err)
			}

			r := runMain(t, ctx, env, "run", "--once")
			require.Equal(t, exitFailed, r.code, "one mailbox has a bad token: %s", r.stderr)
			require.Contains(t, r.stdout, "2 mailboxes, 1 failed: 2 messages fetched, 2 tickets created")
			r = runMain(t, ctx, env, "run", "--once")
			require.Contains(t, r.stdout, "2 mailboxes, 1 failed: 0 messages fetched")

			var tickets, messages int64
			require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM tickets", nil, &tickets))
			require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM ticket_messages", nil, &messages))
			require.Equal(t, []int64{2, 2}, []int64{tickets, messages})

			help, err := db.Mailboxes().GetByName(ctx, "Help")
			require.NoError(t, err)
			require.NotEqual(t, good, help.RefreshToken, "refresh_token must hold the rotated token")
			stale, err := db.Mailboxes().GetByName(ctx, "Stale")
			require.NoError(t, err)
			require.Equal(t, store.StatusNeedsReauth, stale.Status)
			require.Contains(t, stale.LastError, "AADSTS70008")
			require.Contains(t, stale.LastError, "run fetcher authorize")
			require.NotContains(t, r.stderr, "stale-token")
			require.NotContains(t, r.stderr, "app-secret")
		})
	}
}

func TestRunLoopStopsOnSignal(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, _, _ := servers(t, db)
	env["FETCHER_INTERVAL"] = "1s"
	env["FETCHER_LOG_LEVEL"] = "debug" // a pass with nothing due logs at debug
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut logtest.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"run"}) }()
	require.Eventually(t, func() bool { return strings.Count(errOut.String(), "pass done") >= 2 },
		20*time.Second, 50*time.Millisecond, "the loop must pass again after --interval")
	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, errOut.String())
		require.Contains(t, errOut.String(), "fetcher stopped")
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
}

// servers starts a token endpoint and an IMAP server and returns the
// environment pointing the fetcher at db and trusting the server's CA.
func servers(t *testing.T, db *store.DB) (map[string]string, *oauthtest.Server, *mailboxtest.IMAPServer) {
	t.Helper()
	return serversWith(t, db, oauthtest.Options{})
}

func serversWith(t *testing.T, db *store.DB, opts oauthtest.Options) (map[string]string, *oauthtest.Server, *mailboxtest.IMAPServer) {
	t.Helper()
	tokens := oauthtest.NewServer(opts)
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", "app-secret")
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: func(u, tok string) bool {
		got, ok := tokens.AccessTokenUser(tok)
		return ok && got == u
	}})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, srv.Cert.PEM, 0o600))
	return map[string]string{"DATABASE_URL": db.URL(), "FETCHER_CA_FILE": ca, "FETCHER_LOG_FORMAT": "text"}, tokens, srv
}

func insertMailbox(t *testing.T, db *store.DB, name, user, rt string, srv *mailboxtest.IMAPServer, tokens *oauthtest.Server) {
	t.Helper()
	require.NoError(t, db.Exec(context.Background(), `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret, refresh_token, authority_url)
		VALUES (?, 'imap', ?, ?, true, ?, 'microsoft', 'contoso.onmicrosoft.com', 'app', 'app-secret', ?, ?)`,
		name, srv.Host(), srv.Port(), user, rt, tokens.URL()))
}
