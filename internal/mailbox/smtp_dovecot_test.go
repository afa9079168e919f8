package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// TestDovecotSubmission sends through a real Dovecot submission server
// (dovecot-submissiond, port 587 style: STARTTLS, then AUTH), which
// relays to an in-process SMTP server: XOAUTH2 with a JWT-sized token and
// PLAIN log in and the message arrives; a recipient the relay refuses
// comes back as an SMTPError and the session goes on; a refused token is
// an AuthError with Dovecot's challenge read. And Dovecot does refuse the
// same token as an initial response on the AUTH line, which is why the
// client sends it on a line of its own (RFC 4954 section 4).
func TestDovecotSubmission(t *testing.T) {
	t.Parallel()
	d, relay := mailboxtest.DovecotSubmissionForTest(t, func(token string) (string, bool) {
		rest, ok := strings.CutPrefix(token, goodToken+":")
		u, _, _ := strings.Cut(rest, "#")
		return u, ok
	}, map[string]string{"pw@example.com": pop3Password}, mailboxtest.SMTPOptions{
		OnRcpt: func(to string) *smtp.SMTPError {
			if to == "nobody@example.org" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
			}
			return nil
		},
	})
	const oauthUser = "oauth-submit@example.com"
	// Over 1.5 KB once in the base64 XOAUTH2 string, as a Microsoft JWT is.
	jwt := goodToken + ":" + oauthUser + "#" + strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 60)
	opts := &mailbox.Options{TLSConfig: &tls.Config{RootCAs: d.Cert.Pool}, CommandTimeout: 10 * time.Second}
	acct := func(user, token, password string) mailbox.Account {
		return mailbox.Account{
			Protocol: "smtp", Host: "127.0.0.1", Port: d.Ports["submission"], Security: mailbox.StartTLS,
			Username: user, AccessToken: token, Password: password,
		}
	}
	relayed := func(subject string) *mailboxtest.SMTPMessage {
		for _, m := range relay.Messages() {
			if bytes.Contains(m.Data, []byte("Subject: "+subject+"\r\n")) {
				return &m
			}
		}
		return nil
	}

	t.Run("send", func(t *testing.T) {
		for _, a := range []mailbox.Account{acct(oauthUser, jwt, ""), acct("pw@example.com", "", pop3Password)} {
			var trace lineWriter
			o := *opts
			o.DebugWriter = &trace
			s, err := mailbox.OpenSubmission(context.Background(), a, &o)
			require.NoError(t, err, d.Log())
			msg := notification("dovecot-" + a.Username)
			reply, err := s.Send(context.Background(), a.Username, []string{admin}, msg)
			require.NoError(t, err, d.Log())
			require.NotEmpty(t, reply)
			require.NoError(t, s.Close())
			require.NotContains(t, trace.String(), pop3Password)
			require.NotContains(t, trace.String(), jwt[len(jwt)-40:])
			trace.requireLines(t)

			got := relayed("dovecot-" + a.Username)
			require.NotNil(t, got, "relayed")
			require.Equal(t, a.Username, got.From)
			require.Equal(t, []string{admin}, got.To)
			require.True(t, bytes.HasSuffix(got.Data, msg), "the message arrives whole after Dovecot's Received:\n%s", got.Data)
		}
	})

	t.Run("refused recipient", func(t *testing.T) {
		s, err := mailbox.OpenSubmission(context.Background(), acct("pw@example.com", "", pop3Password), opts)
		require.NoError(t, err, d.Log())
		defer s.Close()
		_, err = s.Send(context.Background(), "pw@example.com", []string{admin, "nobody@example.org"}, notification("refused"))
		var se *mailbox.SMTPError
		require.ErrorAs(t, err, &se, d.Log())
		require.Equal(t, "rcpt", se.Stage)
		require.Equal(t, 550, se.Code)
		require.Equal(t, "5.1.1", se.Enhanced)
		_, err = s.Send(context.Background(), "pw@example.com", []string{admin}, notification("after-refusal"))
		require.NoError(t, err, "RSET and a new EHLO keep the login: %s", d.Log())
		require.NoError(t, s.Close())
		require.Nil(t, relayed("refused"))
		require.NotNil(t, relayed("after-refusal"))
	})

	t.Run("refused token", func(t *testing.T) {
		_, err := mailbox.OpenSubmission(context.Background(), acct(oauthUser, "revoked-token", ""), opts)
		var ae *mailbox.AuthError
		require.ErrorAs(t, err, &ae, d.Log())
		require.Equal(t, "XOAUTH2", ae.Mechanism)
		require.Equal(t, "535 5.7.8 Authentication failed.", ae.ServerText)
		require.Contains(t, ae.Detail, "status 401", "the error challenge was read and answered")
		require.NotContains(t, err.Error(), "revoked-token")
	})

	t.Run("initial response on the AUTH line", func(t *testing.T) {
		c, err := smtp.DialStartTLS(d.Addr("submission"), &tls.Config{RootCAs: d.Cert.Pool, ServerName: "127.0.0.1"})
		require.NoError(t, err)
		defer c.Close()
		err = c.Auth(mailbox.NewXOAUTH2Client(oauthUser, jwt)) // "AUTH XOAUTH2 <1.5 KB>"
		var se *smtp.SMTPError
		require.ErrorAs(t, err, &se, "Dovecot must refuse the long AUTH line")
		require.Equal(t, 500, se.Code)
		require.Contains(t, se.Message, "Line too long")
	})
}
