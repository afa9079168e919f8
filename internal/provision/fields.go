// Package provision writes mailboxes and ticket types from an admin's
// settings: a seed file (fetcher seed) or command-line flags (fetcher
// mailbox add|set). One table of settings serves both, so a seed key, a
// flag and a column always have the same name (flags with - for _).
package provision

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
)

// Kind is how a setting's text is read.
type Kind int

// The kinds of settings.
const (
	Text   Kind = iota
	Secret      // never printed; from a file or the environment on the command line
	PEM         // certificates: long, so also read from a file
	Int
	Bool
	Time // RFC 3339, or a date
)

// Field is one admin-writable column of mailboxes.
type Field struct {
	Key  string // the column, the seed key; the flag is Key with - for _
	Kind Kind
	Help string
	// Identity marks the settings a cached access token was issued for:
	// a change drops the cached tokens, so the next pass asks anew.
	Identity bool
	// Default is the schema's default, which an empty value (YAML ~, or
	// --flag "") restores; "" means the zero value (NULL, false, 0).
	Default string
	ptr     func(*store.Mailbox) any
}

// Flag is the field's command-line flag name.
func (f Field) Flag() string { return strings.ReplaceAll(f.Key, "_", "-") }

// Mailbox fields, in the order of docs/schema.md.
var Fields = []Field{
	{Key: "name", Help: "the mailbox's unique name", ptr: func(m *store.Mailbox) any { return &m.Name }},
	{Key: "protocol", Help: "imap or pop3", Identity: true, ptr: func(m *store.Mailbox) any { return &m.Protocol }},
	{Key: "host", Help: "the mail server, e.g. outlook.office365.com", Identity: true, ptr: func(m *store.Mailbox) any { return &m.Host }},
	{Key: "port", Kind: Int, Help: "993 for IMAPS, 995 for POP3S", ptr: func(m *store.Mailbox) any { return &m.Port }},
	{Key: "use_ssl", Kind: Bool, Help: "TLS from the first byte (default true)", Default: "true", ptr: func(m *store.Mailbox) any { return &m.UseSSL }},
	{Key: "starttls", Kind: Bool, Help: "upgrade a plain connection with STARTTLS", ptr: func(m *store.Mailbox) any { return &m.StartTLS }},
	{Key: "username", Help: "the mailbox's address or login", Identity: true, ptr: func(m *store.Mailbox) any { return &m.Username }},
	{Key: "auth_type", Help: "oauth2 (default) or password", ptr: func(m *store.Mailbox) any { return &m.AuthType }},
	{Key: "password", Kind: Secret, Help: "the password of a password mailbox", ptr: func(m *store.Mailbox) any { return &m.Password }},
	{Key: "oauth_provider", Help: "microsoft, google or custom", Identity: true, ptr: func(m *store.Mailbox) any { return &m.OAuthProvider }},
	{Key: "oauth_grant", Help: "refresh_token (default, delegated) or client_credentials (app-only)", Identity: true, ptr: func(m *store.Mailbox) any { return &m.OAuthGrant }},
	{Key: "tenant_id", Help: "Microsoft: the directory (tenant) id", Identity: true, ptr: func(m *store.Mailbox) any { return &m.TenantID }},
	{Key: "client_id", Help: "the application (client) id", Identity: true, ptr: func(m *store.Mailbox) any { return &m.ClientID }},
	{Key: "client_secret", Kind: Secret, Help: "the client secret's value", Identity: true, ptr: func(m *store.Mailbox) any { return &m.ClientSecret }},
	{Key: "client_certificate", Kind: PEM, Help: "PEM certificate of a certificate credential", Identity: true, ptr: func(m *store.Mailbox) any { return &m.ClientCertificate }},
	{Key: "client_private_key", Kind: Secret, Help: "PEM private key of a certificate credential", Identity: true, ptr: func(m *store.Mailbox) any { return &m.ClientPrivateKey }},
	{Key: "redirect_url", Help: "the redirect URI registered for fetcher authorize", ptr: func(m *store.Mailbox) any { return &m.RedirectURL }},
	{Key: "scopes", Help: "space-separated scopes; empty means the provider's defaults", Identity: true, ptr: func(m *store.Mailbox) any { return &m.Scopes }},
	{Key: "authority_url", Help: "Microsoft: a sovereign cloud's login host", Identity: true, ptr: func(m *store.Mailbox) any { return &m.AuthorityURL }},
	{Key: "auth_url", Help: "custom provider: the authorization endpoint", ptr: func(m *store.Mailbox) any { return &m.AuthURL }},
	{Key: "token_url", Help: "custom provider: the token endpoint", Identity: true, ptr: func(m *store.Mailbox) any { return &m.TokenURL }},
	{Key: "refresh_token", Kind: Secret, Help: "a refresh token obtained elsewhere (fetcher authorize stores one)", ptr: func(m *store.Mailbox) any { return &m.RefreshToken }},
	{Key: "refresh_before_seconds", Kind: Int, Help: "refresh the access token this long before it expires (default 300)", ptr: func(m *store.Mailbox) any { return &m.RefreshBeforeSeconds }},
	{Key: "client_secret_expires_at", Kind: Time, Help: "when the client secret expires (warned 30 days ahead)", ptr: func(m *store.Mailbox) any { return &m.ClientSecretExpiresAt }},
	{Key: "folder", Help: "IMAP folder to read (default INBOX)", ptr: func(m *store.Mailbox) any { return &m.Folder }},
	{Key: "after_fetch", Help: "mark_seen (default), keep, move or delete", ptr: func(m *store.Mailbox) any { return &m.AfterFetch }},
	{Key: "move_to_folder", Help: "the folder for after_fetch move", ptr: func(m *store.Mailbox) any { return &m.MoveToFolder }},
	{Key: "auto_reply_tickets", Kind: Bool, Help: "let unmatched auto-replies and bounces open tickets", ptr: func(m *store.Mailbox) any { return &m.AutoReplyTickets }},
	{Key: "max_message_bytes", Kind: Int, Help: "size limit; 0 means the fetcher's default", ptr: func(m *store.Mailbox) any { return &m.MaxMessageBytes }},
	{Key: "tls_ca_cert", Kind: PEM, Help: "PEM certificates to trust for this server", ptr: func(m *store.Mailbox) any { return &m.TLSCACert }},
	{Key: "tls_skip_verify", Kind: Bool, Help: "accept any server certificate (warned at every run)", ptr: func(m *store.Mailbox) any { return &m.TLSSkipVerify }},
	{Key: "allow_plaintext", Kind: Bool, Help: "allow credentials over an unencrypted connection", ptr: func(m *store.Mailbox) any { return &m.AllowPlaintext }},
	{Key: "smtp_enabled", Kind: Bool, Help: "send notifications through this account", ptr: func(m *store.Mailbox) any { return &m.SMTPEnabled }},
	{Key: "smtp_host", Help: "SMTP server; empty means the provider's", ptr: func(m *store.Mailbox) any { return &m.SMTPHost }},
	{Key: "smtp_port", Kind: Int, Help: "587 (starttls) or 465 (tls)", ptr: func(m *store.Mailbox) any { return &m.SMTPPort }},
	{Key: "smtp_security", Help: "starttls, tls or none", ptr: func(m *store.Mailbox) any { return &m.SMTPSecurity }},
	{Key: "smtp_username", Help: "SMTP login; empty means username", ptr: func(m *store.Mailbox) any { return &m.SMTPUsername }},
	{Key: "smtp_from", Help: "the sender address; empty means username", ptr: func(m *store.Mailbox) any { return &m.SMTPFrom }},
	{Key: "smtp_from_name", Help: "the sender's display name", ptr: func(m *store.Mailbox) any { return &m.SMTPFromName }},
	{Key: "smtp_scopes", Help: "scopes of the sending token; empty means the provider's", Identity: true, ptr: func(m *store.Mailbox) any { return &m.SMTPScopes }},
	{Key: "enabled", Kind: Bool, Help: "fetch it (default true)", Default: "true", ptr: func(m *store.Mailbox) any { return &m.Enabled }},
}

// FieldByKey finds a mailbox field by its key.
func FieldByKey(key string) (Field, bool) {
	for _, f := range Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// Set parses text into the field of m. Empty text sets the default: the
// field's Default, else the zero value, which for a text column with a
// schema default means that default (see store.MailboxDefaults).
func (f Field) Set(m *store.Mailbox, text string) error {
	if strings.TrimSpace(text) == "" {
		text = f.Default
	}
	switch p := f.ptr(m).(type) {
	case *string:
		*p = text
	case *int:
		n, err := parseInt(text, 32)
		*p = int(n)
		return err
	case *int64:
		n, err := parseInt(text, 64)
		*p = n
		return err
	case *bool:
		b, err := parseBool(text)
		*p = b
		return err
	case *time.Time:
		t, err := parseTime(text)
		*p = t
		return err
	}
	return nil
}

// Get returns the field's value in m, for comparing.
func (f Field) Get(m *store.Mailbox) any {
	switch p := f.ptr(m).(type) {
	case *string:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	case *bool:
		return *p
	case *time.Time:
		return p.UTC()
	}
	return nil
}

func parseInt(text string, bits int) (int64, error) {
	if text == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(text), 10, bits)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a whole number of 0 or more", text)
	}
	return n, nil
}

func parseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", text)
}

func parseTime(text string) (time.Time, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, text); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, text); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date: write 2027-03-31 or 2027-03-31T12:00:00Z", text)
}
