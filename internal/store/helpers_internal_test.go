package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// sqliteForTest is a migrated embedded database in t's temp dir, for the
// package's own tests (storetest imports this package, so they cannot use
// it), with one mailbox.
func sqliteForTest(t *testing.T) (*DB, Mailbox) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+t.TempDir()+"/test.db")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	mb := Mailbox{Name: "test", Protocol: "imap", Host: "h", Port: 993, UseSSL: true, Username: "u", RefreshToken: "Old-1"}
	require.NoError(t, db.Mailboxes().Create(ctx, &mb))
	return db, mb
}
