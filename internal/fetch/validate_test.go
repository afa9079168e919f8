package fetch_test

import (
	"context"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// validateRow checks a row as a pass does: every column first (Validate),
// then, for OAuth, the provider settings before a token is requested.
func validateRow(mb store.Mailbox) error {
	if err := fetch.Validate(mb); err != nil {
		return err
	}
	if mb.AuthType != "oauth2" {
		return nil
	}
	return fetch.OAuthConfig(mb).ValidateAt(time.Now())
}

// columnOf is the column a validation error names.
func columnOf(err error) string {
	var ce *fetch.ConfigError
	var oe *oauth.ConfigError
	switch {
	case errors.As(err, &ce):
		return ce.Column
	case errors.As(err, &oe):
		return oe.Column
	}
	return ""
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cert, err := mailboxtest.NewCert()
	require.NoError(t, err)
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not really a key")}))
	junkCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	good := store.Mailbox{Protocol: "imap", Host: "outlook.office365.com", Port: 993, UseSSL: true,
		Username: "s@example.com", AuthType: "oauth2", Folder: "INBOX", AfterFetch: "mark_seen",
		OAuthProvider: "microsoft", OAuthGrant: "refresh_token", TenantID: "contoso.onmicrosoft.com",
		ClientID: "11111111-2222-3333-4444-555555555555", RefreshBeforeSeconds: 300}
	pop3 := func(m *store.Mailbox) { m.Protocol, m.Port = "pop3", 995 }
	tests := []struct {
		name   string
		change func(*store.Mailbox)
		column string // "" means valid
		fix    string // a piece of the advice the error must give
	}{
		{"valid", func(*store.Mailbox) {}, "", ""},
		{"starttls", func(m *store.Mailbox) { m.UseSSL, m.StartTLS, m.Port = false, true, 143 }, "", ""},
		{"use_ssl and starttls: starttls is ignored", func(m *store.Mailbox) { m.StartTLS = true }, "", ""},
		{"TLS on another port", func(m *store.Mailbox) { m.Port = 10993 }, "", ""},
		{"plain allowed", func(m *store.Mailbox) { m.UseSSL, m.Port, m.AllowPlaintext = false, 3143, true }, "", ""},
		{"plain allowed on 143", func(m *store.Mailbox) { m.UseSSL, m.Port, m.AllowPlaintext = false, 143, true }, "", ""},
		{"IPv4 address", func(m *store.Mailbox) { m.Host = "192.0.2.10" }, "", ""},
		{"IPv6 address", func(m *store.Mailbox) { m.Host = "2001:db8::10" }, "", ""},
		{"fully qualified name", func(m *store.Mailbox) { m.Host = "imap.gmail.com." }, "", ""},
		{"pop3", func(m *store.Mailbox) { pop3(m); m.AfterFetch = "delete" }, "", ""},
		{"pop3 with the default mark_seen", pop3, "", ""},
		{"pop3 has no folder", func(m *store.Mailbox) { pop3(m); m.Folder = "" }, "", ""},
		{"size limit", func(m *store.Mailbox) { m.MaxMessageBytes = 10 << 20 }, "", ""},
		{"no refresh margin", func(m *store.Mailbox) { m.RefreshBeforeSeconds = 0 }, "", ""},
		{"largest refresh margin", func(m *store.Mailbox) { m.RefreshBeforeSeconds = fetch.MaxRefreshBeforeSeconds }, "", ""},
		{"password", func(m *store.Mailbox) { m.AuthType, m.Password, m.OAuthProvider = "password", "pw", "" }, "", ""},
		{"password ignores the refresh margin", func(m *store.Mailbox) { m.AuthType, m.Password, m.RefreshBeforeSeconds = "password", "pw", -1 }, "", ""},
		{"own CA", func(m *store.Mailbox) { m.TLSCACert = string(cert.PEM) }, "", ""},
		{"own CA twice", func(m *store.Mailbox) { m.TLSCACert = string(cert.PEM) + "\n" + string(cert.PEM) }, "", ""},
		{"skip verify", func(m *store.Mailbox) { m.TLSSkipVerify = true }, "", ""},

		{"protocol", func(m *store.Mailbox) { m.Protocol = "imaps" }, "protocol", "use imap or pop3"},
		{"host empty", func(m *store.Mailbox) { m.Host = " " }, "host", "set the mail server's name"},
		{"host with spaces", func(m *store.Mailbox) { m.Host = "outlook.office365.com " }, "host", "contains spaces"},
		{"host with a scheme", func(m *store.Mailbox) { m.Host = "imaps://outlook.office365.com" }, "host", "scheme"},
		{"host with a port", func(m *store.Mailbox) { m.Host = "outlook.office365.com:993" }, "host", "put the port in the port column"},
		{"host with a path", func(m *store.Mailbox) { m.Host = "outlook.office365.com/owa" }, "host", "has a path"},
		{"host in brackets", func(m *store.Mailbox) { m.Host = "[2001:db8::10]" }, "host", "without them"},
		{"host with an empty label", func(m *store.Mailbox) { m.Host = "mail..example.com" }, "host", "not a valid host name"},
		{"host label starting with a hyphen", func(m *store.Mailbox) { m.Host = "-mail.example.com" }, "host", "not a valid host name"},
		{"host not in its xn-- form", func(m *store.Mailbox) { m.Host = "mail.bücher.example" }, "host", "xn--"},
		{"port 0", func(m *store.Mailbox) { m.Port = 0 }, "port", "use 993"},
		{"port too large", func(m *store.Mailbox) { m.Port = 70000 }, "port", "use 993"},
		{"imap on the POP3 TLS port", func(m *store.Mailbox) { m.Port = 995 }, "port", "protocol pop3"},
		{"imap on the POP3 port", func(m *store.Mailbox) { m.UseSSL, m.StartTLS, m.Port = false, true, 110 }, "port", "set port 993"},
		{"pop3 on the IMAP TLS port", func(m *store.Mailbox) { pop3(m); m.Port = 993 }, "port", "set port 995"},
		{"pop3 on the IMAP port", func(m *store.Mailbox) { pop3(m); m.UseSSL, m.StartTLS, m.Port = false, true, 143 }, "port", "protocol imap"},
		{"use_ssl on the STARTTLS port", func(m *store.Mailbox) { m.Port = 143 }, "use_ssl", "set port 993"},
		{"use_ssl on the POP3 STARTTLS port", func(m *store.Mailbox) { pop3(m); m.Port = 110 }, "use_ssl", "set port 995"},
		{"no use_ssl on the TLS port", func(m *store.Mailbox) { m.UseSSL, m.StartTLS = false, true }, "use_ssl", "set use_ssl = true"},
		{"plain over the network", func(m *store.Mailbox) { m.UseSSL, m.Port = false, 3143 }, "use_ssl", "allow_plaintext"},
		{"plain on loopback needs allow_plaintext", func(m *store.Mailbox) { m.UseSSL, m.Port, m.Host = false, 3143, "127.0.0.1" }, "use_ssl", "starttls = true"},
		{"username", func(m *store.Mailbox) { m.Username = "" }, "username", "set the mailbox address"},
		{"auth_type", func(m *store.Mailbox) { m.AuthType = "basic" }, "auth_type", "use oauth2 or password"},
		{"password missing", func(m *store.Mailbox) { m.AuthType = "password" }, "password", "set the password"},
		{"folder", func(m *store.Mailbox) { m.Folder = "" }, "folder", "set it to INBOX"},
		{"after_fetch", func(m *store.Mailbox) { m.AfterFetch = "archive" }, "after_fetch", "use one of keep"},
		{"move without folder", func(m *store.Mailbox) { m.AfterFetch = "move" }, "move_to_folder", "name the folder"},
		{"pop3 cannot move", func(m *store.Mailbox) { pop3(m); m.AfterFetch, m.MoveToFolder = "move", "Done" }, "after_fetch", "POP3: keep or delete"},
		{"size limit too small", func(m *store.Mailbox) { m.MaxMessageBytes = 1000 }, "max_message_bytes", "use at least"},
		{"size limit negative", func(m *store.Mailbox) { m.MaxMessageBytes = -1 }, "max_message_bytes", "use at least"},
		{"refresh margin negative", func(m *store.Mailbox) { m.RefreshBeforeSeconds = -1 }, "refresh_before_seconds", "use 0 to 1800"},
		{"refresh margin of a token's life", func(m *store.Mailbox) { m.RefreshBeforeSeconds = 3600 }, "refresh_before_seconds", "use 0 to 1800"},
		{"CA not PEM", func(m *store.Mailbox) { m.TLSCACert = "MIIB...pasted without its lines" }, "tls_ca_cert", "-----BEGIN CERTIFICATE-----"},
		{"CA with a key", func(m *store.Mailbox) { m.TLSCACert = string(cert.PEM) + key }, "tls_ca_cert", "never a key"},
		{"CA that does not parse", func(m *store.Mailbox) { m.TLSCACert = junkCert }, "tls_ca_cert", "paste the server's CA certificate again"},
		{"provider missing", func(m *store.Mailbox) { m.OAuthProvider = "" }, "oauth_provider", "set it to microsoft, google or custom"},
		{"provider unknown", func(m *store.Mailbox) { m.OAuthProvider = "azure" }, "oauth_provider", "set it to microsoft, google or custom"},
		{"grant unknown", func(m *store.Mailbox) { m.OAuthGrant = "password" }, "oauth_grant", "set it to refresh_token or client_credentials"},
		{"client_id", func(m *store.Mailbox) { m.ClientID = "" }, "client_id", "application (client) id"},
		{"tenant for app-only", func(m *store.Mailbox) { m.OAuthGrant, m.ClientSecret, m.TenantID = "client_credentials", "s", "common" }, "tenant_id", "directory (tenant) id"},
		{"secret for app-only", func(m *store.Mailbox) { m.OAuthGrant = "client_credentials" }, "client_secret", "create a client secret"},
		{"scopes for app-only", func(m *store.Mailbox) {
			m.OAuthGrant, m.ClientSecret, m.Scopes = "client_credentials", "s", "https://outlook.office.com/IMAP.AccessAsUser.All"
		}, "scopes", "/.default"},
		{"authority_url", func(m *store.Mailbox) { m.AuthorityURL = "login.microsoftonline.com" }, "authority_url", "https://"},
		{"custom without token_url", func(m *store.Mailbox) { m.OAuthProvider = "custom" }, "token_url", "endpoint URL"},
	}
	for _, tt := range tests {
		mb := good
		tt.change(&mb)
		err := validateRow(mb)
		if tt.column == "" {
			require.NoError(t, err, tt.name)
			continue
		}
		require.Error(t, err, tt.name)
		require.Equal(t, tt.column, columnOf(err), "%s: %v", tt.name, err)
		require.Contains(t, err.Error(), tt.column, tt.name)
		require.Contains(t, err.Error(), tt.fix, tt.name)
		require.NotContains(t, err.Error(), "BEGIN CERTIFICATE-----\nMII", "%s: the error must not quote the column", tt.name)
	}
}

// TestInvalidRowsNameTheirColumn: a pass over rows that cannot work leaves
// on each a last_error naming the column and the fix, and parks it until
// the row changes, while the valid mailbox runs.
func TestInvalidRowsNameTheirColumn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		const goodUser = "good@example.com"
		good := b.addMailbox(t, "Good", goodUser, b.tokens.IssueRefreshToken(clientID, goodUser))
		b.deliver(t, goodUser, mail(1, ""))
		invalid := []struct {
			name, set string
			arg       any
			says      []string
		}{
			{"Plain", "use_ssl = false, port = ?", 3143, []string{"use_ssl", "allow_plaintext"}},
			{"Bad CA", "tls_ca_cert = ?", "MIIB pasted without its PEM lines", []string{"tls_ca_cert", "-----BEGIN CERTIFICATE-----"}},
			{"Host with scheme", "host = ?", "imaps://" + b.imap.Host(), []string{"host", "scheme"}},
			{"Grant typo", "oauth_grant = ?", "client_credential", []string{"oauth_grant", "set it to refresh_token or client_credentials"}},
		}
		ids := map[string]int64{}
		for _, row := range invalid {
			user := strings.ToLower(strings.ReplaceAll(row.name, " ", "-")) + "@example.com"
			ids[row.name] = b.addMailbox(t, row.name, user, b.tokens.IssueRefreshToken(clientID, user))
			require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET "+row.set+" WHERE id = ?", row.arg, ids[row.name]))
		}

		sum, err := b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, sum.Failed, len(invalid), "%v", sum.Failed)
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", good))
		require.Equal(t, 1, b.imap.Logins(), "only the valid mailbox connects")
		for _, row := range invalid {
			mb, err := db.Mailboxes().Get(ctx, ids[row.name])
			require.NoError(t, err)
			require.Equal(t, store.StatusFailing, mb.Status, row.name)
			require.NotEmpty(t, mb.ReauthFingerprint, "%s waits for its row to change", row.name)
			for _, s := range row.says {
				require.Contains(t, mb.LastError, s, row.name)
			}
		}

		// Fixing the column is all it takes: the next pass runs the row.
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET tls_ca_cert = ? WHERE id = ?", string(b.imap.Cert.PEM), ids["Bad CA"]))
		b.deliver(t, "bad-ca@example.com", mail(2, ""))
		sum, err = b.runner.RunOnce(ctx)
		require.NoError(t, err)
		require.NotContains(t, sum.Failed, ids["Bad CA"])
		require.Equal(t, int64(1), count(t, db, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = ?", ids["Bad CA"]))
	})
}
