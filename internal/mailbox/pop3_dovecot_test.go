package mailbox_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// startPOP3Dovecot starts a real Dovecot whose XOAUTH2 logins accept
// goodToken for any user.
func startPOP3Dovecot(t *testing.T) *mailboxtest.Dovecot {
	t.Helper()
	return mailboxtest.DovecotForTest(t, func(token string) (string, bool) {
		return strings.CutPrefix(token, goodToken+":")
	}, map[string]string{"pw@example.com": pop3Password})
}

// TestDovecotPOP3 runs the POP3 session against Dovecot's pop3 server:
// implicit TLS and STLS, XOAUTH2 in the two-line form and USER/PASS,
// byte-exact messages, and DELE taking effect at QUIT.
func TestDovecotPOP3(t *testing.T) {
	t.Parallel()
	d := startPOP3Dovecot(t)
	long := strings.Repeat("0123456789", 1000)
	raw := []byte("From: a@example.org\r\nSubject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\n" + long + "\r\n8-bit: Grüße\r\nend\r\n")
	tests := []struct {
		name     string
		listener string
		security mailbox.Security
		user     string
		token    string
		password string
	}{
		{name: "pop3s XOAUTH2", listener: "pop3s", security: mailbox.TLS, user: "oauth-tls@example.com", token: goodToken + ":oauth-tls@example.com"},
		{name: "STLS XOAUTH2", listener: "pop3", security: mailbox.StartTLS, user: "oauth-stls@example.com", token: goodToken + ":oauth-stls@example.com"},
		{name: "pop3s USER/PASS", listener: "pop3s", security: mailbox.TLS, user: "pw@example.com", password: pop3Password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, d.Deliver(tt.user, raw))
			require.NoError(t, d.Deliver(tt.user, message(2)))
			acct := mailbox.Account{
				Protocol: "pop3", Host: "127.0.0.1", Port: d.Ports[tt.listener], Security: tt.security,
				Username: tt.user, AccessToken: tt.token, Password: tt.password,
			}
			opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 10 * time.Second}
			ctx := context.Background()
			s, err := mailbox.Open(ctx, acct, opts)
			require.NoError(t, err, d.Log())
			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, list.Messages, 2)
			require.True(t, list.Complete)
			got, err := s.Fetch(ctx, list.Messages[0])
			require.NoError(t, err)
			require.Equal(t, string(raw), string(got), "Fetch() must return the delivered bytes")
			_, err = s.Apply(ctx, mailbox.Delete, "", []string{list.Messages[0].Key})
			require.NoError(t, err)
			require.Equal(t, 2, d.MaildirCount(tt.user), "nothing is deleted before QUIT")
			require.NoError(t, s.Close())
			require.Equal(t, 1, d.MaildirCount(tt.user), "QUIT deletes what DELE marked")

			// The next session sees the same key for the message left,
			// under a new message number.
			s, err = mailbox.Open(ctx, acct, opts)
			require.NoError(t, err)
			again, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, again.Messages, 1)
			require.Equal(t, list.Messages[1].Key, again.Messages[0].Key)
			require.Equal(t, uint32(1), again.Messages[0].UID)
			require.NoError(t, s.Close())
		})
	}
}

// TestDovecotPOP3RefusedToken: Dovecot answers a refused token with the
// XOAUTH2 error challenge; the client answers it with an empty line and
// reports the final -ERR.
func TestDovecotPOP3RefusedToken(t *testing.T) {
	t.Parallel()
	d := startPOP3Dovecot(t)
	_, err := mailbox.Open(context.Background(), mailbox.Account{
		Protocol: "pop3", Host: "127.0.0.1", Port: d.Ports["pop3s"], Security: mailbox.TLS,
		Username: "helpdesk@example.com", AccessToken: "revoked-token",
	}, &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 10 * time.Second})
	var ae *mailbox.AuthError
	require.ErrorAs(t, err, &ae, d.Log())
	require.Equal(t, "XOAUTH2", ae.Mechanism)
	require.Equal(t, "-ERR [AUTH] Authentication failed.", ae.ServerText)
	require.Contains(t, ae.Detail, "status 401", "the error challenge was read and answered")
	require.NotContains(t, err.Error(), "revoked-token")
}
