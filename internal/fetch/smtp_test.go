package fetch_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
)

func TestSMTPServerOf(t *testing.T) {
	ms := store.Mailbox{AuthType: "oauth2", OAuthProvider: "microsoft"}
	tests := []struct {
		name string
		edit func(*store.Mailbox)
		want fetch.SMTPServer
		col  string // the column a ConfigError names; "" for none
	}{
		{"Microsoft default", func(*store.Mailbox) {}, fetch.SMTPServer{"smtp.office365.com", 587, mailbox.StartTLS}, ""},
		{"US Government cloud", func(m *store.Mailbox) { m.AuthorityURL = "https://login.microsoftonline.us" },
			fetch.SMTPServer{"smtp.office365.us", 587, mailbox.StartTLS}, ""},
		{"China cloud", func(m *store.Mailbox) { m.AuthorityURL = "https://login.partner.microsoftonline.cn" },
			fetch.SMTPServer{"smtp.partner.outlook.cn", 587, mailbox.StartTLS}, ""},
		{"Google default", func(m *store.Mailbox) { m.OAuthProvider = "google" }, fetch.SMTPServer{"smtp.gmail.com", 465, mailbox.TLS}, ""},
		{"Google over STARTTLS", func(m *store.Mailbox) { m.OAuthProvider, m.SMTPPort = "google", 587 },
			fetch.SMTPServer{"smtp.gmail.com", 587, mailbox.StartTLS}, ""},
		{"port 465 means TLS", func(m *store.Mailbox) { m.SMTPPort = 465 }, fetch.SMTPServer{"smtp.office365.com", 465, mailbox.TLS}, ""},
		{"tls without a port", func(m *store.Mailbox) { m.SMTPSecurity = "TLS" }, fetch.SMTPServer{"smtp.office365.com", 465, mailbox.TLS}, ""},
		{"own host and port", func(m *store.Mailbox) { m.SMTPHost, m.SMTPPort = " mail.example.com ", 2525 },
			fetch.SMTPServer{"mail.example.com", 2525, mailbox.StartTLS}, ""},
		{"custom provider needs a host", func(m *store.Mailbox) { m.OAuthProvider = "custom" }, fetch.SMTPServer{}, "smtp_host"},
		{"password mailbox needs a host", func(m *store.Mailbox) { m.AuthType = "password" }, fetch.SMTPServer{}, "smtp_host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := ms
			tt.edit(&mb)
			got, err := fetch.SMTPServerOf(mb)
			if tt.col != "" {
				requireConfigError(t, err, tt.col)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func requireConfigError(t *testing.T, err error, column string) {
	t.Helper()
	var ce *fetch.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, column, ce.Column, "%v", err)
}

func TestValidateSMTP(t *testing.T) {
	tests := []struct {
		name string
		edit func(*store.Mailbox)
		col  string
	}{
		{"defaults", func(*store.Mailbox) {}, ""},
		{"everything set", func(m *store.Mailbox) {
			m.SMTPHost, m.SMTPPort, m.SMTPSecurity, m.SMTPFrom, m.SMTPFromName = "smtp.example.com", 587, "starttls", "help@example.com", "Help Desk"
		}, ""},
		{"host with a scheme", func(m *store.Mailbox) { m.SMTPHost = "smtp://smtp.example.com" }, "smtp_host"},
		{"host with a port", func(m *store.Mailbox) { m.SMTPHost = "smtp.example.com:587" }, "smtp_host"},
		{"port out of range", func(m *store.Mailbox) { m.SMTPPort = 70000 }, "smtp_port"},
		{"unknown security", func(m *store.Mailbox) { m.SMTPSecurity = "ssl" }, "smtp_security"},
		{"starttls on 465", func(m *store.Mailbox) { m.SMTPSecurity, m.SMTPPort = "starttls", 465 }, "smtp_security"},
		{"tls on 587", func(m *store.Mailbox) { m.SMTPSecurity, m.SMTPPort = "tls", 587 }, "smtp_security"},
		{"none without allow_plaintext", func(m *store.Mailbox) { m.SMTPSecurity = "none" }, "smtp_security"},
		{"none with allow_plaintext", func(m *store.Mailbox) { m.SMTPSecurity, m.AllowPlaintext = "none", true }, ""},
		{"from with a display name", func(m *store.Mailbox) { m.SMTPFrom = "Help <help@example.com>" }, "smtp_from"},
		{"from not an address", func(m *store.Mailbox) { m.SMTPFrom = "help desk" }, "smtp_from"},
		{"from name with a line break", func(m *store.Mailbox) { m.SMTPFromName = "Help\r\nBcc: x@evil.test" }, "smtp_from_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := store.Mailbox{AuthType: "oauth2", OAuthProvider: "microsoft", SMTPEnabled: true}
			tt.edit(&mb)
			err := fetch.ValidateSMTP(mb)
			if tt.col == "" {
				require.NoError(t, err)
				return
			}
			requireConfigError(t, err, tt.col)
		})
	}
}

func TestSendingScopes(t *testing.T) {
	const (
		imap = "https://outlook.office.com/IMAP.AccessAsUser.All"
		pop  = "https://outlook.office.com/POP.AccessAsUser.All"
		send = "https://outlook.office.com/SMTP.Send"
	)
	tests := []struct {
		name          string
		mb            store.Mailbox
		send, consent []string
	}{
		{"Microsoft delegated IMAP",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "microsoft", SMTPEnabled: true},
			[]string{"offline_access", send}, []string{"offline_access", imap, send}},
		{"Microsoft delegated POP3",
			store.Mailbox{Protocol: "pop3", AuthType: "oauth2", OAuthProvider: "microsoft", SMTPEnabled: true},
			[]string{"offline_access", send}, []string{"offline_access", pop, send}},
		{"not sending: consent to fetching only",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "microsoft"},
			[]string{"offline_access", send}, []string{"offline_access", imap}},
		{"Microsoft app-only: one .default token",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "microsoft", OAuthGrant: "client_credentials", SMTPEnabled: true},
			[]string{"https://outlook.office365.com/.default"}, []string{"https://outlook.office365.com/.default"}},
		{"Google: one token",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "google", SMTPEnabled: true},
			[]string{"https://mail.google.com/"}, []string{"https://mail.google.com/"}},
		{"custom: the fetching scopes",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "custom", Scopes: "mail offline", SMTPEnabled: true},
			[]string{"mail", "offline"}, []string{"mail", "offline"}},
		{"smtp_scopes win",
			store.Mailbox{Protocol: "imap", AuthType: "oauth2", OAuthProvider: "custom", Scopes: "imap", SMTPScopes: "smtp", SMTPEnabled: true},
			[]string{"smtp"}, []string{"imap", "smtp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.send, fetch.SendOAuthConfig(tt.mb).EffectiveScopes())
			require.Equal(t, tt.consent, fetch.AuthorizeConfig(tt.mb).EffectiveScopes())
		})
	}
}
