package fetch_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestProviders runs a pass for each way a token endpoint can be named and
// behave: Microsoft with a tenant and authority, a custom provider by
// token_url, and a provider that returns no new refresh token (as Google
// does), whose old refresh token must be kept.
func TestProviders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       oauthtest.Options
		columns    string
		wantRotate bool
	}{
		{"microsoft", oauthtest.Options{}, "oauth_provider = 'microsoft', tenant_id = 'contoso.onmicrosoft.com', authority_url = :url", true},
		{"custom", oauthtest.Options{}, "oauth_provider = 'custom', token_url = :url || '/token', auth_url = :url || '/authorize', scopes = 'offline_access https://outlook.office.com/IMAP.AccessAsUser.All'", true},
		{"no rotation", oauthtest.Options{RotateOff: true}, "oauth_provider = 'custom', token_url = :url || '/token', auth_url = :url || '/authorize', scopes = 'https://outlook.office.com/IMAP.AccessAsUser.All'", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.SQLite(t)
			ctx := context.Background()
			tokens := oauthtest.NewServer(tt.opts)
			t.Cleanup(tokens.Close)
			tokens.AddClient(clientID, clientSecret)
			srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: func(u, tok string) bool {
				got, ok := tokens.AccessTokenUser(tok)
				return ok && got == u
			}})
			require.NoError(t, err)
			t.Cleanup(func() { srv.Close() })
			const user = "p@example.com"
			srv.AddUser(user, "")
			_, err = srv.Deliver(user, "INBOX", []byte(mail(1, "")))
			require.NoError(t, err)
			rt := tokens.IssueRefreshToken(clientID, user)
			require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes (name, protocol, host, port, username, client_id, client_secret, refresh_token)
				VALUES ('p', 'imap', ?, ?, ?, ?, ?, ?)`, srv.Host(), srv.Port(), user, clientID, clientSecret, rt))
			// The test server's URL is a plain http://127.0.0.1:port address.
			require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET "+strings.ReplaceAll(tt.columns, ":url", "'"+tokens.URL()+"'")))

			runner := &fetch.Runner{DB: db, Logger: slog.Default(),
				Mailbox: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 5 * time.Second}}
			sum, err := runner.RunOnce(ctx)
			require.NoError(t, err)
			require.True(t, sum.OK(), "RunOnce() failed: %v", sum.Failed)
			require.Equal(t, 1, sum.Runs[0].TicketsCreated)
			mb, err := db.Mailboxes().GetByName(ctx, "p")
			require.NoError(t, err)
			require.Equal(t, store.StatusActive, mb.Status)
			require.Equal(t, tt.wantRotate, mb.RefreshToken != rt, "refresh token rotated")
			require.NotEmpty(t, mb.RefreshToken)
		})
	}
}
