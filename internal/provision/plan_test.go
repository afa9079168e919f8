package provision_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/provision"
	"github.com/fetcherhq/fetcher/internal/secret"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

var seedEnv = map[string]string{"HELPDESK_CLIENT_SECRET": "s3cret"}

func getenv(k string) string { return seedEnv[k] }

func seed(t *testing.T, db *store.DB, path string) *provision.Plan {
	t.Helper()
	f, err := provision.ParseFile(path, getenv)
	require.NoError(t, err)
	plan, err := planner(db).PlanFile(context.Background(), f)
	require.NoError(t, err)
	require.NoError(t, plan.Apply(context.Background(), db))
	return plan
}

func planner(db *store.DB) *provision.Planner {
	return &provision.Planner{DB: db, Now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }}
}

func writeSeed(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seed.yaml")
	require.NoError(t, writeFile(path, text))
	return path
}

// TestSeedCreatesThenChangesNothing: the example seed file creates its two
// mailboxes and ticket types as written, with defaults for what it leaves
// out and secrets sealed; applying it again changes nothing.
func TestSeedCreatesThenChangesNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, err := secret.NewKeyring(bytes.Repeat([]byte{7}, secret.KeySize))
		require.NoError(t, err)
		db.SetKeyring(keys)

		plan := seed(t, db, "testdata/seed.yaml")
		require.True(t, plan.Mailboxes[0].Create)
		require.Equal(t, []string{`sign mailbox "helpdesk" in once: fetcher authorize helpdesk`}, plan.Next,
			"a delegated mailbox without a refresh token must be signed in; a password one need not")

		help, err := db.Mailboxes().GetByName(ctx, "helpdesk")
		require.NoError(t, err)
		require.Equal(t, "s3cret", help.ClientSecret)
		require.Equal(t, 993, help.Port, "the IMAPS port when none is given")
		require.True(t, help.UseSSL)
		require.True(t, help.Enabled)
		require.Equal(t, "INBOX", help.Folder)
		require.Equal(t, "move", help.AfterFetch)
		require.Equal(t, store.StatusActive, help.Status)
		require.True(t, help.SMTPEnabled)
		require.Equal(t, time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC), help.ClientSecretExpiresAt.UTC())
		require.Equal(t, 300, help.RefreshBeforeSeconds)

		var stored string
		require.NoError(t, db.QueryRow(ctx, "SELECT client_secret FROM mailboxes WHERE name = 'helpdesk'", nil, &stored))
		require.NotContains(t, stored, "s3cret", "the secret is sealed in the table")
		var nulls int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM mailboxes WHERE name = 'helpdesk' AND "+
			"last_error IS NULL AND last_success_at IS NULL AND refresh_token IS NULL AND smtp_host IS NULL", nil, &nulls))
		require.Equal(t, 1, nulls, "columns the file leaves out are NULL, not empty text or year 1")

		billing, err := db.Mailboxes().GetByName(ctx, "billing")
		require.NoError(t, err)
		require.Equal(t, 995, billing.Port)
		require.Equal(t, "pop-secret", billing.Password)

		support, err := db.TicketTypeByName(ctx, "Support")
		require.NoError(t, err)
		require.Equal(t, help.ID, *support.MailboxID)
		require.True(t, support.NotifyNew, "notify_new defaults to true")
		require.True(t, support.Acknowledge)
		require.Equal(t, "simple_storage", support.Task)
		bill, err := db.TicketTypeByName(ctx, "Billing")
		require.NoError(t, err)
		require.False(t, bill.NotifyNew, "an explicit false is written, not the column default")

		again := seed(t, db, "testdata/seed.yaml")
		for _, w := range again.Mailboxes {
			require.False(t, w.Create)
			require.Empty(t, w.Columns, w.Mailbox.Name)
		}
		for _, w := range again.TicketTypes {
			require.False(t, w.Create)
			require.Empty(t, w.Columns, w.TicketType.Name)
		}
	})
}

// TestSeedUpdateKeepsState: a later seed changes only what it names; the
// state columns stay, and a new server drops the cached access tokens but
// keeps the refresh token.
func TestSeedUpdateKeepsState(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db, "testdata/seed.yaml")
		help, err := db.Mailboxes().GetByName(ctx, "helpdesk")
		require.NoError(t, err)
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = 'rt', access_token = 'at', "+
			"smtp_access_token = 'st', status = 'failing', last_error = 'boom', folder = 'Support' WHERE id = ?", help.ID))
		require.NoError(t, db.Tickets().SaveCursor(ctx, store.Cursor{MailboxID: help.ID, Folder: "Support", UIDValidity: 7, LastUID: 40}))

		path := writeSeed(t, `
mailboxes:
  - name: helpdesk
    host: outlook.office365.us
    tenant_id: contoso.onmicrosoft.com
ticket_types:
  - name: Support
    acknowledge: false
`)
		plan := seed(t, db, path)
		require.Equal(t, []string{"host"}, plan.Mailboxes[0].Columns)
		require.True(t, plan.Mailboxes[0].DropTokens)
		require.True(t, plan.Mailboxes[0].ForgetCursors)
		cur, err := db.Tickets().Cursor(ctx, help.ID, "Support")
		require.NoError(t, err)
		require.Zero(t, cur.LastUID, "another server's UIDs: the folder is read from the start")
		require.Equal(t, []string{"acknowledge"}, plan.TicketTypes[0].Columns)

		got, err := db.Mailboxes().GetByName(ctx, "helpdesk")
		require.NoError(t, err)
		require.Equal(t, "outlook.office365.us", got.Host)
		require.Equal(t, "rt", got.RefreshToken)
		require.Empty(t, got.AccessToken)
		require.Empty(t, got.SMTPAccessToken)
		require.Equal(t, "failing", got.Status)
		require.Equal(t, "boom", got.LastError)
		require.Equal(t, "Support", got.Folder, "a column the file does not name is left as it is")
		require.Equal(t, "s3cret", got.ClientSecret)
		tt, err := db.TicketTypeByName(ctx, "Support")
		require.NoError(t, err)
		require.False(t, tt.Acknowledge)
		require.Equal(t, help.ID, *tt.MailboxID)
	})
}

// TestSeedRejectsWhatAPassWould: a row the worker would refuse is refused
// with the file, the line and the setting, and nothing is written.
func TestSeedRejectsWhatAPassWould(t *testing.T) {
	t.Parallel()
	ok := "  - name: good\n    protocol: imap\n    host: imap.example.org\n    username: u@example.org\n    auth_type: password\n    password: pw\n"
	tests := []struct {
		name, entry, want string
	}{
		{"protocol", "    protocol: smtp\n", `seed.yaml:8: mailbox "bad": mailbox setting protocol: "smtp" is not a protocol`},
		{"host with scheme", "    host: imaps://imap.example.org\n", "mailbox setting host"},
		{"port", "    port: 99999\n", "mailbox setting port: 99999 is not a port"},
		{"not a number", "    port: 993a\n", `port: "993a" is not a whole number`},
		{"bool", "    use_ssl: maybe\n", `use_ssl: "maybe" is not true or false`},
		{"date", "    client_secret_expires_at: next year\n", "is not a date"},
		{"provider", "    auth_type: oauth2\n    oauth_provider: yahoo\n    client_id: x\n", `oauth_provider "yahoo" is unknown`},
		{"smtp", "    smtp_enabled: true\n    smtp_security: tls\n    smtp_port: 587\n", "smtp"},
		{"move without folder", "    after_fetch: move\n", "move_to_folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, store.SQLite)
			bad := strings.Replace(ok, "good", "bad", 1)
			var lines []string
			for _, l := range strings.Split(strings.TrimSuffix(bad, "\n"), "\n") {
				key := strings.SplitN(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")), ":", 2)[0]
				if !strings.Contains(tt.entry, "    "+key+":") {
					lines = append(lines, l)
				}
			}
			src := "mailboxes:\n" + ok + strings.Join(lines, "\n") + "\n" + tt.entry
			f, err := provision.Parse([]byte(src), "seed.yaml", getenv)
			require.NoError(t, err)
			_, err = planner(db).PlanFile(context.Background(), f)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			all, err := db.Mailboxes().List(context.Background())
			require.NoError(t, err)
			require.Empty(t, all, "nothing is written when any entry is refused")
		})
	}
}

// TestSeedIsAllOrNothing: a failure while writing (here a trigger on
// ticket_types) leaves none of the file's rows behind.
func TestSeedIsAllOrNothing(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	require.NoError(t, db.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql`))
	require.NoError(t, db.Exec(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON ticket_types
FOR EACH ROW WHEN (NEW.name = 'Billing') EXECUTE FUNCTION refuse()`))
	f, err := provision.ParseFile("testdata/seed.yaml", getenv)
	require.NoError(t, err)
	plan, err := planner(db).PlanFile(ctx, f)
	require.NoError(t, err)
	err = plan.Apply(ctx, db)
	require.ErrorContains(t, err, "refused by test")
	var n int
	require.NoError(t, db.QueryRow(ctx, "SELECT (SELECT count(*) FROM mailboxes) + (SELECT count(*) FROM ticket_types)", nil, &n))
	require.Zero(t, n)
}

// TestTicketTypeNeedsItsMailbox: a ticket type names a mailbox of the file
// or of the database.
func TestTicketTypeNeedsItsMailbox(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	f, err := provision.Parse([]byte("ticket_types:\n  - name: T\n    mailbox: nowhere\n"), "seed.yaml", getenv)
	require.NoError(t, err)
	_, err = planner(db).PlanFile(context.Background(), f)
	require.ErrorContains(t, err, `seed.yaml:2: ticket type "T": mailbox: no mailbox is named "nowhere"`)

	f, err = provision.Parse([]byte("ticket_types:\n  - name: T\n    admin_email: not an address\n"), "seed.yaml", getenv)
	require.NoError(t, err)
	_, err = planner(db).PlanFile(context.Background(), f)
	require.ErrorContains(t, err, "admin_email")
}

// TestPlanMailboxSet: set changes the named columns only, renames, and
// may disable a row that no longer validates.
func TestPlanMailboxSet(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db, "testdata/seed.yaml")
		p := planner(db)
		plan, err := p.PlanMailbox(ctx, "billing", provision.Entry{Name: "accounts", Settings: []provision.Setting{
			{Key: "name", Text: "accounts"}, {Key: "port", Text: "1995"},
		}}, false)
		require.NoError(t, err)
		require.Equal(t, []string{"name", "port"}, plan.Mailboxes[0].Columns)
		require.False(t, plan.Mailboxes[0].DropTokens)
		require.NoError(t, plan.Apply(ctx, db))
		got, err := db.Mailboxes().GetByName(ctx, "accounts")
		require.NoError(t, err)
		require.Equal(t, 1995, got.Port)
		require.Equal(t, "pop-secret", got.Password)

		_, err = p.PlanMailbox(ctx, "accounts", provision.Entry{Name: "accounts", Settings: []provision.Setting{{Key: "protocol", Text: "pop4"}}}, false)
		require.ErrorContains(t, err, "protocol")
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET protocol = 'pop4' WHERE name = 'accounts'"))
		plan, err = p.PlanMailbox(ctx, "accounts", provision.Entry{Name: "accounts", Settings: []provision.Setting{{Key: "enabled", Text: "false"}}}, false)
		require.NoError(t, err, "a broken row can always be switched off")
		require.NoError(t, plan.Apply(ctx, db))

		_, err = p.PlanMailbox(ctx, "helpdesk", provision.Entry{Name: "helpdesk"}, true)
		require.ErrorContains(t, err, "exists already")
		_, err = p.PlanMailbox(ctx, "nobody", provision.Entry{Name: "nobody"}, false)
		require.ErrorContains(t, err, "no mailbox is named")
	})
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

func planEntry(t *testing.T, db *store.DB, src string) (*provision.Plan, error) {
	t.Helper()
	f, err := provision.Parse([]byte(src), "seed.yaml", getenv)
	require.NoError(t, err)
	return planner(db).PlanFile(context.Background(), f)
}

func apply(t *testing.T, db *store.DB, src string) *provision.Plan {
	t.Helper()
	plan, err := planEntry(t, db, src)
	require.NoError(t, err)
	require.NoError(t, plan.Apply(context.Background(), db))
	return plan
}

const pwBox = "mailboxes:\n  - name: m\n    protocol: imap\n    host: imap.example.org\n    username: u\n    auth_type: password\n    password: pw\n"

// TestSeedKeepsARotatedRefreshToken: a seed applied on every deploy must
// not put back the refresh token it started with once the provider has
// rotated it; mailbox set may replace it on purpose.
func TestSeedKeepsARotatedRefreshToken(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	src := "mailboxes:\n  - name: m\n    protocol: imap\n    host: outlook.office365.com\n    username: u@contoso.com\n" +
		"    oauth_provider: microsoft\n    tenant_id: contoso.onmicrosoft.com\n    client_id: c\n    refresh_token: original\n"
	apply(t, db, src)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET refresh_token = 'rotated', access_token = 'at' WHERE name = 'm'"))
	plan := apply(t, db, src)
	require.Empty(t, plan.Mailboxes[0].Columns)
	mb, err := db.Mailboxes().GetByName(ctx, "m")
	require.NoError(t, err)
	require.Equal(t, "rotated", mb.RefreshToken)

	plan, err = planner(db).PlanMailbox(ctx, "m", provision.Entry{Name: "m", Settings: []provision.Setting{{Key: "refresh_token", Text: "new"}}}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"refresh_token"}, plan.Mailboxes[0].Columns)
	require.True(t, plan.Mailboxes[0].DropTokens, "the cached access token belongs to the old grant")
}

// TestEmptyValueRestoresTheDefault: ~ sets a column back to its schema
// default, true for enabled, use_ssl and notify_new.
func TestEmptyValueRestoresTheDefault(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	apply(t, db, pwBox+"    enabled: false\n    use_ssl: false\n    starttls: true\n    port: 143\n    folder: Support\n"+
		"ticket_types:\n  - name: T\n    notify_new: false\n")
	apply(t, db, pwBox+"    enabled: ~\n    use_ssl: ~\n    starttls: ~\n    folder: ~\n    port: 993\nticket_types:\n  - name: T\n    notify_new: ~\n")
	mb, err := db.Mailboxes().GetByName(ctx, "m")
	require.NoError(t, err)
	require.True(t, mb.Enabled)
	require.True(t, mb.UseSSL)
	require.Equal(t, "INBOX", mb.Folder)
	tt, err := db.TicketTypeByName(ctx, "T")
	require.NoError(t, err)
	require.True(t, tt.NotifyNew)
}

// TestSeedRepairsAnUndecryptableSecret: a secret sealed under a key that
// is gone reads as empty when planning, and giving it again stores it;
// a dry run writes nothing, not even the sealing of a plain value.
func TestSeedRepairsAnUndecryptableSecret(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	apply(t, db, pwBox)
	var plain string
	require.NoError(t, db.QueryRow(ctx, "SELECT password FROM mailboxes WHERE name = 'm'", nil, &plain))
	require.Equal(t, "pw", plain, "no key yet: stored plain")

	keys, err := secret.NewKeyring(bytes.Repeat([]byte{1}, secret.KeySize))
	require.NoError(t, err)
	db.SetKeyring(keys)
	plan, err := planEntry(t, db, pwBox+"    folder: Other\n")
	require.NoError(t, err, "planning is a dry run")
	require.Equal(t, []string{"folder"}, plan.Mailboxes[0].Columns)
	require.NoError(t, db.QueryRow(ctx, "SELECT password FROM mailboxes WHERE name = 'm'", nil, &plain))
	require.Equal(t, "pw", plain, "planning wrote nothing")

	_, err = db.Mailboxes().GetByName(ctx, "m") // seals it under key 1
	require.NoError(t, err)
	other, err := secret.NewKeyring(bytes.Repeat([]byte{2}, secret.KeySize))
	require.NoError(t, err)
	db.SetKeyring(other)
	plan, err = planEntry(t, db, strings.Replace(pwBox, "password: pw", "folder: INBOX", 1))
	require.NoError(t, err)
	require.Equal(t, []string{`mailbox "m": its password cannot be decrypted with the configured keys (docs/security.md): give it again`}, plan.Next)
	plan = apply(t, db, strings.Replace(pwBox, "password: pw", "password: new", 1))
	require.Equal(t, []string{"password"}, plan.Mailboxes[0].Columns)
	require.Empty(t, plan.Next)
	mb, err := db.Mailboxes().GetByName(ctx, "m")
	require.NoError(t, err)
	require.Equal(t, "new", mb.Password)
}

// TestRenameAndProtocolChange: a rename onto another mailbox's name is
// refused before writing; a new protocol drops the cached tokens and the
// cursor, whose UIDs are the old protocol's.
func TestRenameAndProtocolChange(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	apply(t, db, pwBox+"  - name: n\n    protocol: imap\n    host: h.example.org\n    username: u\n    auth_type: password\n    password: x\n")
	_, err := planner(db).PlanMailbox(ctx, "m", provision.Entry{Name: "n", Settings: []provision.Setting{{Key: "name", Text: "n"}}}, false)
	require.ErrorContains(t, err, `name: another mailbox is named "n" already`)

	plan := apply(t, db, strings.Replace(pwBox, "protocol: imap", "protocol: pop3\n    port: 995", 1))
	require.Equal(t, []string{"protocol", "port"}, plan.Mailboxes[0].Columns[:2])
	require.True(t, plan.Mailboxes[0].DropTokens)
	require.True(t, plan.Mailboxes[0].ForgetCursors)
}
