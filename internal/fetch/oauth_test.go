package fetch_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

func TestSixPassesInOneTokenLifetimeRefreshOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := oauthtest.NewClock(time.Now())
		b := setupWith(t, db, oauthtest.Options{Now: clk.Now})
		b.runner.Now = clk.Now
		b.runner.OAuth = &oauth.Client{Now: clk.Now}
		const user = "cache@example.com"
		b.addMailbox(t, "Cache", user, b.tokens.IssueRefreshToken(clientID, user))
		ctx := context.Background()
		// Every 10 minutes: 0, 10, …, 50 min all fall before the access
		// token's expiry (3599 s) minus refresh_before_seconds (300 s).
		for pass := range 6 {
			b.deliver(t, user, mail(pass+1, ""))
			sum, err := b.runner.RunOnce(ctx)
			require.NoError(t, err)
			require.True(t, sum.OK(), "pass %d: %v", pass, sum.Failed)
			clk.Add(10 * time.Minute)
		}
		require.Equal(t, 1, b.tokens.Requests(), "six passes within one token lifetime")
		sum, err := b.runner.RunOnce(ctx) // 60 min: within 5 min of expiry
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		require.Equal(t, 2, b.tokens.Requests(), "refreshed ahead of expiry")
	})
}

func TestDeadRefreshTokenWaitsForANewOne(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "dead@example.com"
		id := b.addMailbox(t, "Dead", user, "revoked-long-ago")
		b.deliver(t, user, mail(1, ""))

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, 1)
		require.Equal(t, 1, b.tokens.Requests())

		// Parked: later passes do not replay the dead token.
		for range 3 {
			sum, err = b.runner.RunOnce(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, sum.Waiting)
		}
		require.Equal(t, 1, b.tokens.Requests(), "a refused refresh token is not sent again")
		mb, err := db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.StatusNeedsReauth, mb.Status)
		require.Contains(t, mb.LastError, "AADSTS70008")

		// The admin stores a new refresh token: the next pass resumes.
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = ? WHERE id = ?", b.tokens.IssueRefreshToken(clientID, user), id))
		sum, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "%v", sum.Failed)
		mb, err = db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.StatusActive, mb.Status)
		require.Empty(t, mb.LastError)
		require.Zero(t, mb.ConsecutiveFailures)
	})
}

func TestProviderOutageKeepsTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const user = "outage@example.com"
		rt := b.tokens.IssueRefreshToken(clientID, user)
		id := b.addMailbox(t, "Outage", user, rt)
		tests := []struct {
			name      string
			fail      oauthtest.Failure
			wantAfter time.Duration
			wantText  string
		}{
			{"503", oauthtest.Unavailable(), 45 * time.Second, "503"},
			{"502 from a proxy", oauthtest.BadGateway(), 45 * time.Second, "502"},
			{"429 with Retry-After", oauthtest.Throttled(2 * time.Hour), 2 * time.Hour, "429"},
		}
		for _, tt := range tests {
			require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET next_attempt_at = NULL WHERE id = ?", id))
			b.tokens.FailNext(tt.fail)
			start := time.Now()
			sum, err := b.runner.RunOnce(ctx)
			require.NoError(t, err)
			require.Len(t, sum.Failed, 1, tt.name)
			mb, err := db.Mailboxes().Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, rt, mb.RefreshToken, "%s: the refresh token must survive an outage", tt.name)
			require.Equal(t, store.StatusFailing, mb.Status, tt.name)
			require.Contains(t, mb.LastError, tt.wantText, tt.name)
			require.GreaterOrEqual(t, mb.NextAttemptAt.Sub(start), tt.wantAfter, "%s: next attempt", tt.name)
			sum, err = b.runner.RunOnce(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, sum.Waiting, "%s: backing off", tt.name)
		}
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET next_attempt_at = NULL WHERE id = ?", id))
		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, sum.OK(), "recovers once the provider is back: %v", sum.Failed)
	})
}

// TestTokenErrorsLeaveActionableStatus runs each row of CONTEXT.md's
// AADSTS table through a pass.
func TestTokenErrorsLeaveActionableStatus(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setup(t, db)
	ctx := context.Background()
	tests := []struct {
		fail   oauthtest.Failure
		status string
		words  []string
	}{
		{oauthtest.ExpiredRefreshToken(), store.StatusNeedsReauth, []string{"AADSTS70008", "Do this:"}},
		{oauthtest.UnusedRefreshToken(), store.StatusNeedsReauth, []string{"AADSTS700082", "90 days"}},
		{oauthtest.GrantRevoked(), store.StatusNeedsReauth, []string{"AADSTS50173"}},
		{oauthtest.ConsentMissing(), store.StatusNeedsReauth, []string{"AADSTS65001", "consent"}},
		{oauthtest.WrongSecret(), store.StatusNeedsReauth, []string{"AADSTS7000215", "value"}},
		{oauthtest.SecretExpired(), store.StatusNeedsReauth, []string{"AADSTS7000222", "new client secret"}},
		{oauthtest.MFARequired(), store.StatusNeedsReauth, []string{"AADSTS50076"}},
		{oauthtest.ConditionalAccess(), store.StatusNeedsReauth, []string{"AADSTS53003"}},
		{oauthtest.TenantNotFound(), store.StatusNeedsReauth, []string{"AADSTS90002", "tenant"}},
		{oauthtest.AppNotFound(), store.StatusNeedsReauth, []string{"AADSTS700016", "client_id"}},
		{oauthtest.SingleTenantOnCommon(), store.StatusNeedsReauth, []string{"AADSTS50194"}},
		{oauthtest.Unavailable(), store.StatusFailing, []string{"503"}},
	}
	for i, tt := range tests {
		user := "err" + string(rune('a'+i)) + "@example.com"
		id := b.addMailbox(t, user, user, b.tokens.IssueRefreshToken(clientID, user))
		b.tokens.FailNext(tt.fail)
		mb, err := db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		_, err = b.runner.FetchMailbox(ctx, mb)
		require.Error(t, err)
		mb, err = db.Mailboxes().Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, tt.status, mb.Status, "AADSTS %d", tt.fail.AADSTS)
		for _, w := range tt.words {
			require.Contains(t, mb.LastError, w, "AADSTS %d", tt.fail.AADSTS)
		}
		require.NotContains(t, mb.LastError, clientSecret)
	}
}

func TestSecretExpiryIsWarnedAndNamed(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setup(t, db)
	ctx := context.Background()
	const user = "soon@example.com"
	id := b.addMailbox(t, "Soon", user, b.tokens.IssueRefreshToken(clientID, user))
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret_expires_at = ? WHERE id = ?", time.Now().Add(12*24*time.Hour), id))
	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "%v", sum.Failed)
	mb, err := db.Mailboxes().Get(ctx, id)
	require.NoError(t, err)
	require.Contains(t, mb.Warning, "client secret expires on")
	require.Contains(t, b.logs.String(), "client secret expires on")

	// Past the date the provider refuses the client: the expiry is named
	// as the cause.
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret_expires_at = ?, access_token = NULL WHERE id = ?", time.Now().Add(-time.Hour), id))
	b.tokens.FailNext(oauthtest.SecretExpired())
	sum, err = b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, sum.Failed, 1)
	mb, err = db.Mailboxes().Get(ctx, id)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(mb.LastError, "the client secret expired on"), "last_error = %q", mb.LastError)
}

// TestTokenExpiringMidSessionIsRefreshed: Exchange ends a session whose
// access token expires with "* BYE Session invalidated -
// AccessTokenExpired"; the pass refreshes and carries on.
func TestTokenExpiringMidSessionIsRefreshed(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	var mu sync.Mutex
	expired := map[string]bool{} // tokens the server ends sessions for
	b := setupWith(t, db, oauthtest.Options{}, mailboxtest.IMAPOptions{
		SessionValid: func(_, tok string) bool {
			mu.Lock()
			defer mu.Unlock()
			return !expired[tok]
		},
	})
	tokens, logs := b.tokens, b.logs
	const user = "bye@example.com"
	id := b.addMailbox(t, "Bye", user, tokens.IssueRefreshToken(clientID, user))
	b.deliver(t, user, mail(1, ""))
	ctx := context.Background()
	sum, err := b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "%v", sum.Failed)

	// The cached token still logs in, but the server ends the session at
	// the first FETCH: the pass must refresh, reconnect and carry on.
	mb, err := db.Mailboxes().Get(ctx, id)
	require.NoError(t, err)
	mu.Lock()
	expired[mb.AccessToken] = true
	mu.Unlock()
	b.deliver(t, user, mail(2, ""), mail(3, ""))
	sum, err = b.runner.RunOnce(ctx)
	require.NoError(t, err)
	require.True(t, sum.OK(), "RunOnce() = %v\n%s", sum.Failed, logs.String())
	require.Equal(t, 2, sum.Runs[0].MessagesFetched)
	require.Contains(t, logs.String(), "access token expired")
	require.Equal(t, 2, tokens.Requests(), "one refresh for the first pass, one after the BYE")
	require.Equal(t, int64(3), count(t, db, "SELECT count(*) FROM ticket_messages"))
}
