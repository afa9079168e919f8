package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

func testKeyring(t *testing.T, primary byte, old ...byte) *secret.Keyring {
	t.Helper()
	var olds [][]byte
	for _, o := range old {
		olds = append(olds, bytes.Repeat([]byte{o}, secret.KeySize))
	}
	k, err := secret.NewKeyring(bytes.Repeat([]byte{primary}, secret.KeySize), olds...)
	require.NoError(t, err)
	return k
}

// secretMailbox has a known value in every secret column.
func secretMailbox(name string) store.Mailbox {
	return store.Mailbox{
		Name: name, Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: "support@example.com", OAuthProvider: "microsoft", ClientID: "client",
		Password: "Pa55word-" + name, ClientSecret: "Cl1entSecret-" + name,
		ClientPrivateKey: "-----BEGIN PRIVATE KEY-----" + name, RefreshToken: "RefreshTok-" + name,
		AccessToken: "AccessTok-" + name, Enabled: true,
	}
}

var secretColumnNames = []string{"password", "client_secret", "client_private_key", "refresh_token", "access_token"}

// rawSecrets reads the secret columns as stored.
func rawSecrets(t *testing.T, db *store.DB, id int64) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, col := range secretColumnNames {
		var v string
		require.NoError(t, db.QueryRow(context.Background(), "SELECT COALESCE("+col+", '') FROM mailboxes WHERE id = ?", []any{id}, &v))
		out[col] = v
	}
	return out
}

func requireSealed(t *testing.T, db *store.DB, mb store.Mailbox, keyID string) {
	t.Helper()
	plain := map[string]string{"password": mb.Password, "client_secret": mb.ClientSecret,
		"client_private_key": mb.ClientPrivateKey, "refresh_token": mb.RefreshToken, "access_token": mb.AccessToken}
	for col, v := range rawSecrets(t, db, mb.ID) {
		require.True(t, secret.IsSealed(v), "%s stored as %q", col, v)
		require.Equal(t, keyID, secret.KeyID(v), col)
		require.NotContains(t, v, plain[col])
	}
}

func TestSecretsSealedOnCreateAndOpenedOnGet(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys := testKeyring(t, 1)
		db.SetKeyring(keys)
		mb := secretMailbox("a")
		require.NoError(t, db.Mailboxes().Create(ctx, &mb))
		require.Equal(t, "RefreshTok-a", mb.RefreshToken, "the caller keeps the plain value")
		requireSealed(t, db, mb, keys.PrimaryID())

		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, mb.Password, got.Password)
		require.Equal(t, mb.ClientSecret, got.ClientSecret)
		require.Equal(t, mb.ClientPrivateKey, got.ClientPrivateKey)
		require.Equal(t, mb.RefreshToken, got.RefreshToken)
		require.Equal(t, mb.AccessToken, got.AccessToken)

		list, err := db.Mailboxes().List(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Empty(t, list[0].RefreshToken+list[0].Password+list[0].ClientSecret, "List returns no secrets")
	})
}

func TestPlainSecretsFromSQLAreSealedOnFirstRead(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := secretMailbox("sql")
		require.NoError(t, db.Mailboxes().Create(ctx, &mb)) // no key yet: plain, as an admin's INSERT
		require.Equal(t, "RefreshTok-sql", rawSecrets(t, db, mb.ID)["refresh_token"])

		keys := testKeyring(t, 1)
		db.SetKeyring(keys)
		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "RefreshTok-sql", got.RefreshToken)
		requireSealed(t, db, mb, keys.PrimaryID())

		again, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

func TestTokensSealedByRefreshAndAuthorize(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys := testKeyring(t, 1)
		db.SetKeyring(keys)
		mb := secretMailbox("tok")
		require.NoError(t, db.Mailboxes().Create(ctx, &mb))

		var seen oauth.Token
		_, err := db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			seen = cur
			return oauth.Token{AccessToken: "NewAccess-1", RefreshToken: "NewRefresh-1", Expiry: time.Now().Add(time.Hour)}, nil
		})
		require.NoError(t, err)
		require.Equal(t, "RefreshTok-tok", seen.RefreshToken, "the refresh sees the plain token")
		raw := rawSecrets(t, db, mb.ID)
		require.True(t, secret.IsSealed(raw["refresh_token"]))
		require.NotContains(t, raw["access_token"], "NewAccess-1")

		require.NoError(t, db.Mailboxes().StoreAuthorization(ctx, mb.ID,
			oauth.Token{AccessToken: "AuthAccess-2", RefreshToken: "AuthRefresh-2", Expiry: time.Now().Add(time.Hour)}))
		raw = rawSecrets(t, db, mb.ID)
		require.True(t, secret.IsSealed(raw["refresh_token"]))
		require.True(t, secret.IsSealed(raw["access_token"]))
		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "AuthRefresh-2", got.RefreshToken)
		require.Equal(t, "AuthAccess-2", got.AccessToken)
	})
}

func TestSecretsTampering(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys := testKeyring(t, 1)
		db.SetKeyring(keys)
		a, b := secretMailbox("a"), secretMailbox("b")
		require.NoError(t, db.Mailboxes().Create(ctx, &a))
		require.NoError(t, db.Mailboxes().Create(ctx, &b))
		rawA := rawSecrets(t, db, a.ID)

		// b's refresh token replaced by a's ciphertext: it must not open.
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = ? WHERE id = ?", rawA["refresh_token"], b.ID))
		_, err := db.Mailboxes().Get(ctx, b.ID)
		var se *store.SecretError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "refresh_token", se.Column)
		require.ErrorIs(t, err, secret.ErrTampered)
		require.Contains(t, err.Error(), "fetcher authorize")

		// a's password column holding a's client secret ciphertext.
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET password = ? WHERE id = ?", rawA["client_secret"], a.ID))
		_, err = db.Mailboxes().Get(ctx, a.ID)
		require.ErrorIs(t, err, secret.ErrTampered)

		// Truncated ciphertext.
		c := secretMailbox("c")
		require.NoError(t, db.Mailboxes().Create(ctx, &c))
		cut := rawSecrets(t, db, c.ID)["client_secret"]
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret = ? WHERE id = ?", cut[:len(cut)-8], c.ID))
		_, err = db.Mailboxes().Get(ctx, c.ID)
		require.ErrorAs(t, err, &se)
		require.Equal(t, "client_secret", se.Column)

		// The bad rows are reported one by one; nothing leaks into the errors.
		enabled, bad, err := db.Mailboxes().ListEnabled(ctx)
		require.NoError(t, err)
		require.Empty(t, enabled)
		require.Len(t, bad, 3)
		for _, r := range bad {
			for _, v := range []string{"RefreshTok-", "Pa55word-", "Cl1entSecret-"} {
				require.NotContains(t, r.Err.Error(), v)
			}
		}
	})
}

func TestSecretsWrongOrMissingKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		db.SetKeyring(testKeyring(t, 1))
		mb := secretMailbox("k")
		require.NoError(t, db.Mailboxes().Create(ctx, &mb))

		db.SetKeyring(testKeyring(t, 2))
		_, err := db.Mailboxes().Get(ctx, mb.ID)
		require.ErrorIs(t, err, secret.ErrUnknownKey)
		require.Contains(t, err.Error(), "FETCHER_SECRET_KEY_OLD")

		db.SetKeyring(nil)
		_, err = db.Mailboxes().Get(ctx, mb.ID)
		require.ErrorIs(t, err, secret.ErrNoKey)
		require.Contains(t, err.Error(), "FETCHER_SECRET_KEY")
		_, err = db.Mailboxes().WithTokenLock(ctx, mb.ID, func(cur oauth.Token) (oauth.Token, error) {
			t.Fatal("the refresh must not run on tokens that cannot be read")
			return cur, nil
		})
		require.ErrorIs(t, err, secret.ErrNoKey)
	})
}

func TestResealRotatesKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		oldKeys := testKeyring(t, 1)
		db.SetKeyring(oldKeys)
		a, b := secretMailbox("a"), secretMailbox("b")
		require.NoError(t, db.Mailboxes().Create(ctx, &a))
		db.SetKeyring(nil)
		require.NoError(t, db.Mailboxes().Create(ctx, &b)) // plain

		use, err := db.Mailboxes().KeyUse(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{oldKeys.PrimaryID(): 5, "": 5}, use)

		newKeys := testKeyring(t, 2, 1)
		db.SetKeyring(newKeys)
		rep, err := db.Mailboxes().Reseal(ctx)
		require.NoError(t, err)
		require.Empty(t, rep.Failed)
		require.Equal(t, 2, rep.Mailboxes)
		require.Equal(t, 10, rep.Sealed)
		requireSealed(t, db, a, newKeys.PrimaryID())
		requireSealed(t, db, b, newKeys.PrimaryID())

		// Once every value is under the new key, the old one can go.
		db.SetKeyring(testKeyring(t, 2))
		got, err := db.Mailboxes().Get(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, a.RefreshToken, got.RefreshToken)
		rep, err = db.Mailboxes().Reseal(ctx)
		require.NoError(t, err)
		require.Zero(t, rep.Sealed, "nothing left to rotate")
	})
}

func TestResealReportsRowsItCannotOpen(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		db.SetKeyring(testKeyring(t, 1))
		a := secretMailbox("a")
		require.NoError(t, db.Mailboxes().Create(ctx, &a))
		db.SetKeyring(nil)
		b := secretMailbox("b")
		require.NoError(t, db.Mailboxes().Create(ctx, &b)) // plain
		db.SetKeyring(testKeyring(t, 3))                   // a's key was lost
		rep, err := db.Mailboxes().Reseal(ctx)
		require.NoError(t, err)
		require.Len(t, rep.Failed, 1)
		require.Contains(t, rep.Failed[0].Error(), fmt.Sprintf("mailbox %d:", a.ID))
		require.Equal(t, 5, rep.Sealed, "b's plain values are sealed all the same")
		require.ErrorIs(t, rep.Failed[0], secret.ErrUnknownKey)
	})
}

// TestFailureTextFromAHostileServer: an error quoting a server's reply may
// hold NUL bytes and invalid UTF-8, which Postgres refuses in text; the
// failure must be recorded all the same.
func TestFailureTextFromAHostileServer(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := secretMailbox("hostile")
		require.NoError(t, db.Mailboxes().Create(ctx, &mb))
		msg := "server said -ERR \x00bad\xff\xfe reply"
		require.NoError(t, db.Mailboxes().RecordFailure(ctx, mb.ID, store.Failure{Status: store.StatusFailing, Message: msg}))
		require.NoError(t, db.Mailboxes().SetWarning(ctx, mb.ID, msg))
		run, err := db.Runs().Start(ctx, mb.ID, "w")
		require.NoError(t, err)
		run.Error = msg
		require.NoError(t, db.Runs().Finish(ctx, run))
		got, err := db.Mailboxes().Get(ctx, mb.ID)
		require.NoError(t, err)
		require.Equal(t, "server said -ERR \uFFFDbad\uFFFD reply", got.LastError)
	})
}

// TestOneBadColumnLeavesTheOthersWorking: a tampered client secret is
// reported, while the row's other plain values are still encrypted and a
// broken access token (a cache) is simply dropped; a disabled mailbox with
// a broken secret is not reported at all.
func TestOneBadColumnLeavesTheOthersWorking(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys := testKeyring(t, 1)
		a := secretMailbox("a")
		require.NoError(t, db.Mailboxes().Create(ctx, &a)) // plain
		db.SetKeyring(keys)
		bad := "enc:v1:" + keys.PrimaryID() + ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret = ?, access_token = ? WHERE id = ?", bad, bad, a.ID))

		got, err := db.Mailboxes().Get(ctx, a.ID)
		var se *store.SecretError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "client_secret", se.Column)
		require.Equal(t, a.RefreshToken, got.RefreshToken, "the other columns are opened")
		require.Empty(t, got.AccessToken)
		raw := rawSecrets(t, db, a.ID)
		for _, col := range []string{"password", "refresh_token", "client_private_key"} {
			require.True(t, secret.IsSealed(raw[col]), "%s is encrypted despite its neighbour", col)
		}

		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET enabled = false WHERE id = ?", a.ID))
		enabled, badRows, err := db.Mailboxes().ListEnabled(ctx)
		require.NoError(t, err)
		require.Empty(t, enabled)
		require.Empty(t, badRows, "a disabled mailbox is not reported")
	})
}
