package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// brokenMailbox returns a mailbox in the state a dead refresh token leaves:
// needs_reauth, an error, a fingerprint and a backoff.
func brokenMailbox(t *testing.T, db *store.DB, name string) store.Mailbox {
	t.Helper()
	ctx := context.Background()
	mb := newMailbox(t, db, name)
	now := time.Now().UTC()
	require.NoError(t, db.Exec(ctx, `UPDATE mailboxes SET status = 'needs_reauth',
		last_error = 'invalid_grant AADSTS70008', last_error_at = ?, reauth_fingerprint = 'fp',
		consecutive_failures = 4, next_attempt_at = ?, access_token = 'at-old' WHERE id = ?`,
		now, now.Add(time.Hour), mb.ID))
	return mb
}

func TestStoreAuthorization(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := brokenMailbox(t, db, "reauth")
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

		err := db.Mailboxes().StoreAuthorization(ctx, mb.ID, oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: exp})
		require.NoError(t, err)

		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "rt-new", got.RefreshToken)
		require.Equal(t, "at-new", got.AccessToken)
		require.True(t, exp.Equal(got.AccessTokenExpiresAt), "AccessTokenExpiresAt = %v, want %v", got.AccessTokenExpiresAt, exp)
		require.Equal(t, store.StatusActive, got.Status)
		require.Empty(t, got.LastError)
		require.True(t, got.LastErrorAt.IsZero(), "LastErrorAt = %v, want NULL", got.LastErrorAt)
		require.Empty(t, got.ReauthFingerprint)
		require.True(t, got.NextAttemptAt.IsZero(), "NextAttemptAt = %v, want NULL", got.NextAttemptAt)
		require.Zero(t, got.ConsecutiveFailures)
	})
}

func TestStoreAuthorizationRefusesEmptyRefreshToken(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := brokenMailbox(t, db, "no-refresh")

		err := db.Mailboxes().StoreAuthorization(ctx, mb.ID, oauth.Token{AccessToken: "at-new"})
		require.ErrorContains(t, err, "no refresh token")

		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "rt-0", got.RefreshToken)
		require.Equal(t, "at-old", got.AccessToken)
		require.Equal(t, store.StatusNeedsReauth, got.Status)
		require.Equal(t, "invalid_grant AADSTS70008", got.LastError)
	})
}

func TestStoreAuthorizationUnknownMailbox(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	err := db.Mailboxes().StoreAuthorization(context.Background(), 404, oauth.Token{RefreshToken: "rt"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestStoreAuthorizationWaitsForRefresh: a worker refreshing with the old
// grant while the admin authorizes must not overwrite the new refresh token.
func TestStoreAuthorizationWaitsForRefresh(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "overlap")
		locked, release := make(chan struct{}), make(chan struct{})
		refreshed := make(chan error, 1)
		go func() {
			_, err := db.Mailboxes().WithTokenLock(ctx, mb.ID, func(oauth.Token) (oauth.Token, error) {
				close(locked)
				<-release
				return oauth.Token{AccessToken: "at-old-grant", RefreshToken: "rt-old-grant"}, nil
			})
			refreshed <- err
		}()
		<-locked
		stored := make(chan error, 1)
		go func() {
			stored <- db.Mailboxes().StoreAuthorization(ctx, mb.ID, oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new"})
		}()
		select {
		case err := <-stored:
			t.Fatalf("StoreAuthorization() = %v while a refresh held the row, want it to wait", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		require.NoError(t, <-refreshed)
		require.NoError(t, <-stored)

		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "rt-new", got.RefreshToken)
	})
}
