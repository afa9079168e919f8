package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the output of this run")

// statusNow is the clock of the golden tests (FETCHER_TEST_NOW).
var statusNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Secrets of the status fixture: distinctive, so that finding one in the
// output is never a coincidence.
const (
	fixtureClientSecret = "FixtureClientSecret~9a8b7c6d"
	fixtureRefreshToken = "FixtureRefreshToken.M.C5_BAY.0.U.-q1w2e3r4"
	fixtureAccessToken  = "FixtureAccessToken.eyJ0eXAiOiJKV1Qi"
	fixturePassword     = "FixturePassword!4f5g6h"
	fixtureSMTPToken    = "FixtureSMTPAccessToken.eyJhbGci"
)

// billingError is a failing mailbox's last_error: long, several lines.
const billingError = "log in to imap outlook.office365.com:993: connection reset by peer while reading the greeting\n" +
	"the server closed the connection before the login; this happens when a firewall between this machine and the server drops the connection\n" +
	"Do this: check that outbound port 993 is open to outlook.office365.com"

// statusFixture fills a Postgres database with mailboxes in every state
// status tells apart, with plain SQL at fixed times around statusNow, and
// returns the environment of the fetcher pointed at it.
func statusFixture(t *testing.T) (*store.DB, map[string]string) {
	t.Helper()
	ctx := context.Background()
	db := storetest.Postgres(t)
	at := func(d time.Duration) time.Time { return statusNow.Add(d) }
	run := func(sql string, args ...any) {
		t.Helper()
		require.NoError(t, db.Exec(ctx, sql, args...))
	}
	const cols = `(name, protocol, host, port, username, oauth_provider, tenant_id, client_id, client_secret,
		refresh_token, access_token, access_token_expires_at, client_secret_expires_at, status, last_success_at,
		last_error, last_error_at, created_at, updated_at)`
	const vals = `VALUES (?, 'imap', 'outlook.office365.com', 993, ?, 'microsoft', 'contoso.onmicrosoft.com',
		'11111111-2222-3333-4444-555555555555', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	created := at(-90 * 24 * time.Hour)
	// 1: active, fetched 12 minutes ago.
	run(`INSERT INTO mailboxes `+cols+vals, "Support", "support@contoso.com", fixtureClientSecret, fixtureRefreshToken,
		fixtureAccessToken, at(40*time.Minute), time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), "active", at(-12*time.Minute), nil, nil, created, created)
	// 2: failing for two days, backing off, with a long error of three lines.
	run(`INSERT INTO mailboxes `+cols+vals, "Billing", "billing@contoso.com", fixtureClientSecret, fixtureRefreshToken,
		nil, nil, nil, "failing", at(-49*time.Hour), billingError, at(-10*time.Minute), created, created)
	run(`UPDATE mailboxes SET next_attempt_at = ?, consecutive_failures = 9 WHERE name = 'Billing'`, at(20*time.Minute))
	// 3: needs re-authorization, parked until its settings change.
	run(`INSERT INTO mailboxes `+cols+vals, "Sales", "sales@contoso.com", fixtureClientSecret, fixtureRefreshToken,
		nil, at(-9*24*time.Hour), nil, "needs_reauth", at(-9*24*time.Hour),
		"the refresh token has expired or was revoked (AADSTS70008). Do this: run fetcher authorize \"Sales\"", at(-9*24*time.Hour), created, created)
	run(`UPDATE mailboxes SET reauth_fingerprint = 'v1:0123abcd', consecutive_failures = 1 WHERE name = 'Sales'`)
	// 4: disabled, a POP3 mailbox with a password.
	run(`INSERT INTO mailboxes (name, protocol, host, port, username, auth_type, password, enabled, status,
		last_success_at, created_at, updated_at) VALUES ('Archive', 'pop3', 'pop.example.net', 995, 'archive@example.net',
		'password', ?, false, 'active', ?, ?, ?)`, fixturePassword, at(-30*24*time.Hour), created, created)
	// 5: sends, with a notification waiting and the SMTP login refused.
	run(`INSERT INTO mailboxes `+cols+vals, "Helpdesk", "helpdesk@contoso.com", fixtureClientSecret, fixtureRefreshToken,
		fixtureAccessToken, at(25*time.Minute), nil, "active", at(-8*time.Minute), nil, nil, created, created)
	run(`UPDATE mailboxes SET smtp_enabled = true, smtp_access_token = ?, smtp_last_error = ?, smtp_last_error_at = ?,
		smtp_last_success_at = ? WHERE name = 'Helpdesk'`, fixtureSMTPToken,
		"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Do this: run Set-CASMailbox -SmtpClientAuthenticationDisabled $false",
		at(-8*time.Minute), at(-26*time.Hour))
	run(`INSERT INTO outbox (mailbox_id, kind, recipient, recipient_key, subject, body_text, message_id, status,
		next_attempt_at, created_at, updated_at) SELECT id, 'new_ticket', 'lead@contoso.com', 'lead@contoso.com',
		'[#7] New ticket: Printer', 'A new ticket', '<n7@contoso.com>', 'pending', ?, ?, ? FROM mailboxes WHERE name = 'Helpdesk'`,
		at(2*time.Minute), at(-time.Hour), at(-8*time.Minute))
	run(`INSERT INTO outbox (mailbox_id, kind, recipient, recipient_key, subject, body_text, message_id, status,
		created_at, updated_at, sent_at) SELECT id, 'acknowledgement', 'anna@example.org', 'anna@example.org',
		'[#6] Login', 'Thanks', '<a6@contoso.com>', 'sent', ?, ?, ? FROM mailboxes WHERE name = 'Helpdesk'`,
		at(-27*time.Hour), at(-26*time.Hour), at(-26*time.Hour))
	run(`INSERT INTO ticket_types (name, mailbox_id, admin_email, acknowledge) SELECT 'IT support', id, 'lead@contoso.com', true
		FROM mailboxes WHERE name = 'Helpdesk'`)
	// 6: its client secret expires in 10 days.
	run(`INSERT INTO mailboxes `+cols+vals, "Expiring", "expiring@contoso.com", fixtureClientSecret, fixtureRefreshToken,
		fixtureAccessToken, at(50*time.Minute), at(10*24*time.Hour), "active", at(-5*time.Minute), nil, nil, created, created)
	run(`UPDATE mailboxes SET warning = ? WHERE name = 'Expiring'`,
		"the client secret expires on 2026-12-02 (in 10 days). Do this: create a new secret under the app registration's Certificates & secrets")
	// 7: app-only with a certificate credential.
	run(`INSERT INTO mailboxes (name, protocol, host, port, username, oauth_provider, oauth_grant, tenant_id, client_id,
		client_certificate, status, last_success_at, created_at, updated_at) VALUES ('Reports', 'imap', 'outlook.office365.com', 993,
		'reports@contoso.com', 'microsoft', 'client_credentials', 'contoso.onmicrosoft.com', '11111111-2222-3333-4444-555555555555',
		?, 'active', ?, ?, ?)`, certificatePEM(t, time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)), at(-3*time.Minute), created, created)
	return db, map[string]string{"DATABASE_URL": db.URL(), "FETCHER_TEST_NOW": statusNow.Format(time.RFC3339), "FETCHER_LOG_FORMAT": "text"}
}

// certificatePEM is a self-signed certificate valid until notAfter.
func certificatePEM(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fetcher"},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// runBinary runs the real fetcher process (this test binary as main, see
// TestMain) with env on top of a clean environment, and returns its exit
// status and output.
func runBinary(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"FETCHER_TEST_AS_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errOut.String()}
}

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create it", t.Name())
	require.Equal(t, string(want), got, "the output differs from %s (go test -update rewrites it)", path)
}

// TestStatusGolden runs the real binary over mailboxes in every state and
// compares its output with the golden files.
func TestStatusGolden(t *testing.T) {
	t.Parallel()
	_, env := statusFixture(t)
	tests := []struct {
		golden   string
		args     []string
		wantCode int
	}{
		{"status.txt", []string{"status"}, exitFailed},
		{"status-wide.txt", []string{"status", "--wide"}, exitFailed},
		{"status.json", []string{"status", "--format", "json"}, exitFailed},
		{"mailbox-list.txt", []string{"mailbox", "list"}, exitOK},
		{"mailbox-list.json", []string{"mailbox", "list", "--format", "json"}, exitOK},
		{"mailbox-show-helpdesk.txt", []string{"mailbox", "show", "Helpdesk"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, env, tt.args...)
			require.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			golden(t, tt.golden, r.stdout)
			if strings.HasSuffix(tt.golden, ".json") {
				require.True(t, json.Valid([]byte(r.stdout)))
			}
			if tt.wantCode == exitFailed {
				require.Contains(t, r.stderr, "1 enabled mailboxes failing, 1 needing re-authorization")
			}
		})
	}
}

func TestStatusJSONFields(t *testing.T) {
	t.Parallel()
	_, env := statusFixture(t)
	r := runBinary(t, env, "status", "--format", "json")
	require.Equal(t, exitFailed, r.code, r.stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 7)
	byName := map[string]map[string]any{}
	for _, row := range rows {
		byName[row["name"].(string)] = row
	}
	require.Equal(t, "2026-11-22T11:48:00Z", byName["Support"]["last_success_at"])
	require.Equal(t, billingError, byName["Billing"]["last_error"], "the whole error, lines and all")
	require.Equal(t, true, byName["Sales"]["waits_for_new_settings"])
	require.Equal(t, false, byName["Archive"]["enabled"])
	require.Nil(t, byName["Archive"]["access_token_expires_at"])
	require.Equal(t, "2026-12-02T12:00:00Z", byName["Expiring"]["credential_expires_at"])
	require.Equal(t, "client_secret", byName["Expiring"]["credential"])
	require.Equal(t, "certificate", byName["Reports"]["credential"])
	require.Equal(t, "2027-01-15T00:00:00Z", byName["Reports"]["credential_expires_at"])
	sending := byName["Helpdesk"]["sending"].(map[string]any)
	require.Equal(t, "failing", sending["state"])
	require.InDelta(t, 1, sending["outbox_pending"], 0)
	require.Equal(t, []any{true, false}, []any{byName["Billing"]["overdue"], byName["Support"]["overdue"]})
}

// TestStatusExitStatus: 1 while an enabled mailbox is failing or needs
// re-authorization, 0 once they are disabled; and the enable/disable round
// trip that gets there.
func TestStatusExitStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := statusFixture(t)
	r := runBinary(t, env, "status")
	require.Equal(t, exitFailed, r.code)

	for _, ref := range []string{"Billing", "3"} { // by name, and Sales by id
		r = runBinary(t, env, "mailbox", "disable", ref)
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "disabled: the workers stop fetching it")
	}
	r = runBinary(t, env, "mailbox", "disable", "Billing")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `Mailbox 2 "Billing" was already disabled.`)
	r = runBinary(t, env, "status")
	require.Equal(t, exitOK, r.code, "only healthy mailboxes are enabled now: %s", r.stderr)
	require.Contains(t, r.stdout, "7 mailboxes: 4 active, 0 failing, 0 need re-authorization; 3 disabled.")

	r = runBinary(t, env, "mailbox", "enable", "Sales")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `Mailbox 3 "Sales" enabled: the workers fetch it from their next pass (status now: needs_reauth).`)
	r = runBinary(t, env, "status")
	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stderr, "0 enabled mailboxes failing, 1 needing re-authorization")

	var enabled bool
	var status string
	require.NoError(t, db.QueryRow(ctx, "SELECT enabled, status FROM mailboxes WHERE name = 'Billing'", nil, &enabled, &status))
	require.Equal(t, []any{false, "failing"}, []any{enabled, status}, "disabling keeps the status")
}

func TestMailboxShowHidesSecrets(t *testing.T) {
	t.Parallel()
	_, env := statusFixture(t)
	secrets := []string{fixtureClientSecret, fixtureRefreshToken, fixtureAccessToken, fixturePassword, fixtureSMTPToken}
	for _, ref := range []string{"Support", "2", "3", "Archive", "Helpdesk", "Expiring", "Reports"} {
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return env[k] }, Now: func() time.Time { return statusNow }}
		require.Equal(t, exitOK, m.Run(context.Background(), []string{"mailbox", "show", ref}), out.String())
		text := out.String()
		for _, s := range secrets {
			//nolint:testifylint // NotContains would print the secret on failure
			require.False(t, strings.Contains(text, s), "mailbox show %s printed a secret (%.10s…)", ref, s)
		}
		require.Contains(t, text, "refresh_token")
	}
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return env[k] }, Now: func() time.Time { return statusNow }}
	require.Equal(t, exitOK, m.Run(context.Background(), []string{"mailbox", "show", "Billing"}))
	text := out.String()
	require.Contains(t, text, "  password                      not set\n")
	require.Contains(t, text, "  client_secret                 set\n")
	require.Contains(t, text, "  refresh_token                 set\n")
	require.Contains(t, text, "  last_error                    log in to imap outlook.office365.com:993: connection reset by peer while reading the greeting\n"+
		"                                the server closed the connection")
	require.Contains(t, text, "  next_attempt_at               2026-11-22 12:20Z (in 20m)\n")
}

func TestOperatorCommandUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantText string
	}{
		{"status help", nil, []string{"status", "--help"}, exitOK, "-ready-max-age"},
		{"status max age below interval", nil, []string{"status", "--ready-max-age", "5m"}, exitUsage, "FETCHER_READY_MAX_AGE / --ready-max-age"},
		{"status help names exit status", nil, []string{"status", "--help"}, exitOK, "Exit status: 0, or 1 when any enabled mailbox"},
		{"status bad format", nil, []string{"status", "--format", "yaml"}, exitUsage, `--format "yaml": use table or json`},
		{"status bad overdue env", map[string]string{"FETCHER_READY_MAX_AGE": "soon"}, []string{"status"}, exitUsage, "FETCHER_READY_MAX_AGE"},
		{"status bad interval env", map[string]string{"FETCHER_INTERVAL": "often"}, []string{"status"}, exitUsage, "FETCHER_INTERVAL"},
		{"status stray argument", nil, []string{"status", "Support"}, exitUsage, "takes no arguments"},
		{"mailbox help", nil, []string{"mailbox", "--help"}, exitOK, "fetcher mailbox test [--refresh] NAME|ID"},
		{"mailbox without command", nil, []string{"mailbox"}, exitUsage, "mailbox needs a command"},
		{"mailbox unknown command", nil, []string{"mailbox", "remove"}, exitUsage, `unknown mailbox command "remove"`},
		{"seed needs a file", nil, []string{"seed"}, exitUsage, "seed takes one file, got 0"},
		{"seed of a missing file", nil, []string{"seed", "/nonexistent/seed.yaml"}, exitUsage, "read seed file: open /nonexistent/seed.yaml"},
		{"mailbox add needs a name", nil, []string{"mailbox", "add", "--host", "x"}, exitUsage, "mailbox add takes one mailbox"},
		{"mailbox list help", nil, []string{"mailbox", "list", "--help"}, exitOK, "-format"},
		{"mailbox list bad format", nil, []string{"mailbox", "list", "--format", "csv"}, exitUsage, "--format"},
		{"mailbox show without name", nil, []string{"mailbox", "show"}, exitUsage, "takes one mailbox"},
		{"mailbox show two names", nil, []string{"mailbox", "show", "a", "b"}, exitUsage, "takes one mailbox"},
		{"mailbox test help", nil, []string{"mailbox", "test", "--help"}, exitOK, "-refresh"},
		{"mailbox test bad timeout env", map[string]string{"FETCHER_COMMAND_TIMEOUT": "1ms"}, []string{"mailbox", "test", "x"}, exitUsage, "FETCHER_COMMAND_TIMEOUT"},
		{"mailbox enable help", nil, []string{"mailbox", "enable", "--help"}, exitOK, "Sets mailboxes.enabled"},
		{"status without a database", map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "none.db")},
			[]string{"status"}, exitCheck, "no database at"},
		{"mailbox list without a database", map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "none.db")},
			[]string{"mailbox", "list"}, exitCheck, "no database at"},
		{"status with the database down", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"},
			[]string{"status"}, exitCheck, "connect"},
		{"top-level usage lists status", nil, []string{"help"}, exitOK, "fetcher status"},
		{"top-level usage lists mailbox", nil, []string{"help"}, exitOK, "fetcher mailbox add|set|list|show|enable|disable|test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, context.Background(), tt.env, tt.args...)
			require.Equal(t, tt.wantCode, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout+r.stderr, tt.wantText)
			if url := tt.env["DATABASE_URL"]; strings.HasPrefix(url, "sqlite:") {
				_, err := os.Stat(strings.TrimPrefix(url, "sqlite:"))
				require.True(t, os.IsNotExist(err), "a read-only command created %s", url)
			}
		})
	}
}

func TestMailboxUnknownNameListsTheOthers(t *testing.T) {
	t.Parallel()
	_, env := statusFixture(t)
	r := runMain(t, context.Background(), env, "mailbox", "show", "Nope")
	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stderr, `no mailbox has the name or id "Nope"; there are: 1 "Support", 2 "Billing"`)
}

func TestRelativeTimes(t *testing.T) {
	t.Parallel()
	now := statusNow
	tests := []struct {
		t    time.Time
		want string
	}{
		{now.Add(-3*time.Hour - 20*time.Minute), "2026-11-22 08:40Z (3h ago)"},
		{now.Add(52*time.Minute + 30*time.Second), "2026-11-22 12:52Z (in 52m)"},
		{now.Add(-40 * time.Second), "2026-11-22 11:59Z (40s ago)"},
		{now.Add(10 * 24 * time.Hour), "2026-12-02 12:00Z (in 10d)"},
		{now.Add(-47 * time.Hour), "2026-11-20 13:00Z (47h ago)"},
		{time.Time{}, "-"},
		{now.In(time.FixedZone("CET", 3600)), "2026-11-22 12:00Z (in 0s)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, when(tt.t, now))
	}
	require.Equal(t, "ab…", cut("abcdef", 3))
	require.Equal(t, "abc", cut("abc", 3))
	require.Equal(t, "one two three", oneLine("one\ntwo\n  three\n"))
}
