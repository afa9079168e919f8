package fetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/store"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	good := store.Mailbox{Protocol: "imap", Host: "outlook.office365.com", Port: 993, UseSSL: true,
		Username: "s@example.com", AuthType: "oauth2", AfterFetch: "mark_seen"}
	tests := []struct {
		name   string
		change func(*store.Mailbox)
		column string // "" means valid
	}{
		{"valid", func(*store.Mailbox) {}, ""},
		{"starttls", func(m *store.Mailbox) { m.UseSSL, m.StartTLS, m.Port = false, true, 143 }, ""},
		{"plain on loopback", func(m *store.Mailbox) { m.UseSSL, m.Host = false, "127.0.0.1" }, ""},
		{"plain over the network", func(m *store.Mailbox) { m.UseSSL = false }, "use_ssl"},
		{"protocol", func(m *store.Mailbox) { m.Protocol = "imaps" }, "protocol"},
		{"host", func(m *store.Mailbox) { m.Host = " " }, "host"},
		{"port", func(m *store.Mailbox) { m.Port = 0 }, "port"},
		{"username", func(m *store.Mailbox) { m.Username = "" }, "username"},
		{"auth_type", func(m *store.Mailbox) { m.AuthType = "basic" }, "auth_type"},
		{"password missing", func(m *store.Mailbox) { m.AuthType = "password" }, "password"},
		{"after_fetch", func(m *store.Mailbox) { m.AfterFetch = "archive" }, "after_fetch"},
		{"move without folder", func(m *store.Mailbox) { m.AfterFetch = "move" }, "move_to_folder"},
		{"pop3", func(m *store.Mailbox) { m.Protocol, m.Port, m.AfterFetch = "pop3", 995, "delete" }, ""},
		{"pop3 with the default mark_seen", func(m *store.Mailbox) { m.Protocol, m.Port = "pop3", 995 }, ""},
		{"size limit", func(m *store.Mailbox) { m.MaxMessageBytes = 10 << 20 }, ""},
		{"size limit too small", func(m *store.Mailbox) { m.MaxMessageBytes = 1000 }, "max_message_bytes"},
		{"size limit negative", func(m *store.Mailbox) { m.MaxMessageBytes = -1 }, "max_message_bytes"},
		{"pop3 cannot move", func(m *store.Mailbox) { m.Protocol, m.Port, m.AfterFetch, m.MoveToFolder = "pop3", 995, "move", "Done" }, "after_fetch"},
	}
	for _, tt := range tests {
		mb := good
		tt.change(&mb)
		err := Validate(mb)
		if tt.column == "" {
			require.NoError(t, err, tt.name)
			continue
		}
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tt.name)
		require.Equal(t, tt.column, ce.Column, tt.name)
	}
}
