// Package storetest gives each test a migrated database of its own: a fresh
// Postgres database, dropped when the test ends, or a SQLite file in the
// test's temp dir. Postgres is required, never skipped: CI starts it, and a
// test run that silently skipped the Postgres half would prove nothing.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
)

// DefaultURL is the admin connection used when TEST_DATABASE_URL is unset:
// the local Postgres every development machine and CI run has.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the server connection tests create their databases through.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Dialects lists the databases every store-backed test runs on.
var Dialects = []string{store.Postgres, store.SQLite}

// Open returns a migrated database of the given dialect for t.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	if dialect == store.Postgres {
		return Postgres(t)
	}
	return SQLite(t)
}

// Each runs fn as a subtest on each dialect with a database of its own.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// SQLite returns a migrated embedded database in t's temp dir.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	return openMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "fetcher.db"))
}

// Postgres returns a migrated database of its own on the test server,
// dropped when t ends.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	u := PostgresURL(t)
	return openMigrated(t, u)
}

// PostgresURL creates an empty database for t and returns its URL; it is
// dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	require.NoError(t, err, "connect to Postgres at %s: start it, or set TEST_DATABASE_URL", store.Redact(AdminURL()))
	defer func() { _ = admin.Close(ctx) }()
	name := "fetcher_test_" + randomHex(6)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err, "create test database")
	t.Cleanup(func() { dropDatabase(t, name) })
	u, err := url.Parse(AdminURL())
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func dropDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Errorf("drop test database %s: %v", name, err)
		return
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("drop test database %s: %v", name, err)
	}
}

func openMigrated(t testing.TB, rawURL string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, rawURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	return db
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
