package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
)

// TestDovecotIMAPStartTLS logs in to a real Dovecot over STARTTLS on its
// plain IMAP port (RFC 9051 section 6.2.1), with XOAUTH2 and with a
// password, with the protocol trace on: the message arrives byte for byte
// and the trace shows the conversation, never a credential.
func TestDovecotIMAPStartTLS(t *testing.T) {
	t.Parallel()
	d := startPOP3Dovecot(t) // the same Dovecot serves IMAP
	raw := message(1)
	for _, tt := range []struct {
		name, user, token, password string
	}{
		{name: "XOAUTH2", user: "oauth-starttls@example.com", token: goodToken + ":oauth-starttls@example.com"},
		{name: "LOGIN", user: "pw@example.com", password: pop3Password},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, d.Deliver(tt.user, raw))
			var trace bytes.Buffer
			acct := mailbox.Account{
				Protocol: "imap", Host: "127.0.0.1", Port: d.Ports["imap"], Security: mailbox.StartTLS,
				Username: tt.user, AccessToken: tt.token, Password: tt.password,
			}
			opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 10 * time.Second, DebugWriter: &trace}
			ctx := context.Background()
			s, err := mailbox.Open(ctx, acct, opts)
			require.NoError(t, err, d.Log())
			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, list.Messages, 1)
			got, err := s.Fetch(ctx, list.Messages[0])
			require.NoError(t, err)
			require.Equal(t, raw, got)
			require.NoError(t, s.Close())

			text := trace.String()
			require.Contains(t, text, "C: T0 STARTTLS")
			require.Contains(t, text, "UID FETCH")
			require.NotContains(t, text, pop3Password)
			if tt.token != "" {
				require.NotContains(t, text, tt.token)
			}
		})
	}
}
