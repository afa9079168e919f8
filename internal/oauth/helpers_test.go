package oauth_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// Known secret values: tests assert none of them ever shows up in a log line
// or an error string.
const (
	testClientID = "11111111-2222-3333-4444-555555555555"
	testSecret   = "Xy8Q~s3cr3tVALUE.abcdefghijklmnopqrstu"
	testTenant   = "contoso.example"
	testUser     = "support@contoso.example"
	imapScope    = "https://outlook.office.com/IMAP.AccessAsUser.All"
)

// fakeClock is an injected clock tests can move.
func newFakeClock() *oauthtest.Clock {
	return oauthtest.NewClock(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
}

type testBundle struct {
	srv    *oauthtest.Server
	client *oauth.Client
	clock  *oauthtest.Clock
	logs   *logtest.Buffer
	cfg    oauth.Config // Microsoft delegated IMAP against srv
}

func setup(t *testing.T, opts oauthtest.Options) *testBundle {
	t.Helper()
	clock := newFakeClock()
	opts.Now = clock.Now
	srv := oauthtest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddClient(testClientID, testSecret)
	logs := &logtest.Buffer{}
	return &testBundle{
		srv:    srv,
		client: &oauth.Client{Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: clock.Now},
		clock:  clock,
		logs:   logs,
		cfg: oauth.Config{Provider: oauth.Microsoft, TenantID: testTenant,
			AuthorityURL: srv.URL(), ClientID: testClientID, ClientSecret: testSecret,
			Protocol: "imap"},
	}
}

// refreshToken issues a refresh token for testUser with the IMAP scope.
func (b *testBundle) refreshToken() string {
	return b.srv.IssueRefreshToken(testClientID, testUser, "offline_access", imapScope)
}
