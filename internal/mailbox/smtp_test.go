package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

const (
	admin     = "admin@example.org"
	requester = "requester@example.net"
)

// startSMTP starts a submission server that takes goodToken and
// pop3Password for user, stopped when t ends.
func startSMTP(t *testing.T, opts mailboxtest.SMTPOptions) *mailboxtest.SMTPServer {
	t.Helper()
	if opts.CheckToken == nil {
		opts.CheckToken = func(u, tok string) bool { return u == user && tok == goodToken }
	}
	if opts.Passwords == nil {
		opts.Passwords = map[string]string{user: pop3Password}
	}
	srv, err := mailboxtest.StartSMTP(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func smtpAccount(srv *mailboxtest.SMTPServer, sec mailbox.Security) mailbox.Account {
	return mailbox.Account{
		Protocol: "smtp", Host: srv.Host(), Port: srv.Port(), Security: sec,
		Username: user, AccessToken: goodToken, AllowPlaintext: sec == mailbox.Plain,
	}
}

func smtpOptions(srv *mailboxtest.SMTPServer) *mailbox.Options {
	return &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, DialTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second}
}

func openSubmission(t *testing.T, acct mailbox.Account, opts *mailbox.Options) *mailbox.Submission {
	t.Helper()
	s, err := mailbox.OpenSubmission(context.Background(), acct, opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// notification is a message whose body has lines that need dot-stuffing
// (RFC 5321 section 4.5.2), a lone "." among them.
func notification(subject string) []byte {
	return []byte("From: Helpdesk <" + user + ">\r\nTo: <" + admin + ">\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@example.com>\r\n\r\nHello,\r\n.a line starting with a dot\r\n.\r\n..two dots\r\nbye\r\n")
}

// TestSubmissionXOAUTH2 sends over STARTTLS and implicit TLS, logging in
// with XOAUTH2 to a server that, like Dovecot and Google, refuses the
// response on the AUTH line: the message arrives byte for byte.
func TestSubmissionXOAUTH2(t *testing.T) {
	t.Parallel()
	for name, sec := range map[string]mailbox.Security{"starttls": mailbox.StartTLS, "tls": mailbox.TLS} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: name, NoInitialResponse: true})
			s := openSubmission(t, smtpAccount(srv, sec), smtpOptions(srv))
			msg := notification("xoauth2-" + name)
			reply, err := s.Send(context.Background(), user, []string{admin, requester}, msg)
			require.NoError(t, err)
			require.Equal(t, "2.0.0 OK: queued", reply)
			require.NoError(t, s.Close())

			require.Equal(t, []mailboxtest.SMTPAuth{{Mechanism: "XOAUTH2", OK: true}}, srv.AuthLog(),
				"one login, with the response on its own line")
			got := srv.Messages()
			require.Len(t, got, 1)
			require.Equal(t, user, got[0].User)
			require.Equal(t, user, got[0].From)
			require.Equal(t, []string{admin, requester}, got[0].To)
			require.Equal(t, string(msg), string(got[0].Data))
			requireNoCredentials(t, srv.Received())
		})
	}
}

// TestSMTPServerRefusesInitialResponse: the test server in strict mode
// does refuse an XOAUTH2 response on the AUTH line, so the test above
// proves the client never sends one there.
func TestSMTPServerRefusesInitialResponse(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "tls", NoInitialResponse: true})
	c, err := smtp.DialTLS(srv.Addr, &tls.Config{RootCAs: srv.Cert.Pool})
	require.NoError(t, err)
	defer c.Close()
	err = c.Auth(mailbox.NewXOAUTH2Client(user, goodToken)) // the one-line (SASL-IR) form
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 500, se.Code)
	require.Equal(t, smtp.EnhancedCode{5, 5, 6}, se.EnhancedCode)
	require.Equal(t, []mailboxtest.SMTPAuth{{Mechanism: "XOAUTH2", InitialResponse: true}}, srv.AuthLog())
}

// TestSubmissionRefusedToken: Exchange answers a refused token with the
// JSON error challenge and, after the empty response, 535 5.7.3.
func TestSubmissionRefusedToken(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "starttls"})
	acct := smtpAccount(srv, mailbox.StartTLS)
	acct.AccessToken = "revoked-token-0123456789abcdef"
	_, err := mailbox.OpenSubmission(context.Background(), acct, smtpOptions(srv))
	require.True(t, mailbox.IsAuth(err), "%v", err)
	require.False(t, mailbox.IsTemporary(err))
	var ae *mailbox.AuthError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, mailbox.AuthError{
		Mechanism: "XOAUTH2", Username: user, ServerText: "535 5.7.3 Authentication unsuccessful",
		Detail: "status 401, wanted scope https://outlook.office.com/SMTP.Send",
	}, *ae)
	var se *mailbox.SMTPError
	require.ErrorAs(t, err, &se)
	require.Equal(t, mailbox.SMTPError{Host: "127.0.0.1", Stage: "auth", Code: 535, Enhanced: "5.7.3", Text: "Authentication unsuccessful"}, *se)
	require.Contains(t, err.Error(), "535 5.7.3")
	require.NotContains(t, err.Error(), acct.AccessToken)
	require.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, acct.AccessToken))[:20])
	require.Equal(t, []mailboxtest.SMTPAuth{{Mechanism: "XOAUTH2"}}, srv.AuthLog())
}

// TestSubmissionPassword logs in with PLAIN, or LOGIN where PLAIN is not
// offered; a wrong password is an AuthError.
func TestSubmissionPassword(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		for _, password := range []string{pop3Password, "wrong-password"} {
			t.Run(mech+"/"+password, func(t *testing.T) {
				t.Parallel()
				srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "tls", Mechanisms: []string{"XOAUTH2", mech}})
				acct := smtpAccount(srv, mailbox.TLS)
				acct.AccessToken, acct.Password = "", password
				s, err := mailbox.OpenSubmission(context.Background(), acct, smtpOptions(srv))
				if password != pop3Password {
					var ae *mailbox.AuthError
					require.ErrorAs(t, err, &ae)
					require.Equal(t, mech, ae.Mechanism)
					require.Equal(t, "535 5.7.8 Username and Password not accepted", ae.ServerText)
					require.NotContains(t, err.Error(), password)
					return
				}
				require.NoError(t, err)
				_, err = s.Send(context.Background(), user, []string{admin}, notification("password"))
				require.NoError(t, err)
				require.NoError(t, s.Close())
				require.Equal(t, []mailboxtest.SMTPAuth{{Mechanism: mech, InitialResponse: mech == "PLAIN", OK: true}}, srv.AuthLog())
				require.Len(t, srv.Messages(), 1)
			})
		}
	}
}

// TestSubmissionNoAuthOffered: a server that offers no AUTH, or no XOAUTH2
// for a token, gets no login, and the error says what to check.
func TestSubmissionNoAuthOffered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mechs []string
		says  string
	}{
		{name: "no AUTH", mechs: []string{}, says: "offers no AUTH on this connection"},
		{name: "no XOAUTH2", mechs: []string{"PLAIN", "LOGIN"}, says: "offers no XOAUTH2 (AUTH PLAIN LOGIN)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "starttls", Mechanisms: tt.mechs})
			_, err := mailbox.OpenSubmission(context.Background(), smtpAccount(srv, mailbox.StartTLS), smtpOptions(srv))
			require.ErrorContains(t, err, tt.says)
			require.ErrorContains(t, err, "Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false")
			var se *mailbox.SMTPError
			require.NotErrorAs(t, err, &se, "no server reply refused anything")
			require.False(t, mailbox.IsAuth(err))
			require.Zero(t, srv.AuthAttempts())
		})
	}
}

// TestSubmissionSTARTTLSNotOffered: an account that asks for STARTTLS never
// logs in on a server that does not offer it, even with plain text
// allowed (RFC 3207 section 4.1).
func TestSubmissionSTARTTLSNotOffered(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "plain"})
	acct := smtpAccount(srv, mailbox.StartTLS)
	acct.AllowPlaintext = true
	_, err := mailbox.OpenSubmission(context.Background(), acct, smtpOptions(srv))
	require.ErrorContains(t, err, "does not offer STARTTLS, so no login was sent in clear")
	require.Zero(t, srv.AuthAttempts())
	received := string(srv.Received())
	require.Contains(t, received, "EHLO ")
	require.NotContains(t, received, "AUTH")
	requireNoCredentials(t, []byte(received))
}

// TestSubmissionCertificateRefused: an untrusted certificate ends the
// session before any login, over implicit TLS and STARTTLS.
func TestSubmissionCertificateRefused(t *testing.T) {
	t.Parallel()
	for name, sec := range map[string]mailbox.Security{"starttls": mailbox.StartTLS, "tls": mailbox.TLS} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: name})
			opts := smtpOptions(srv)
			opts.TLSConfig = nil
			_, err := mailbox.OpenSubmission(context.Background(), smtpAccount(srv, sec), opts)
			var te *mailbox.TLSError
			require.ErrorAs(t, err, &te)
			require.Equal(t, mailbox.CertUntrusted, te.Problem)
			require.False(t, mailbox.IsTemporary(err))
			require.Zero(t, srv.AuthAttempts())
		})
	}
}

// TestSubmissionPlaintextWithheld: without AllowPlaintext a Plain account
// does not even connect; with it, the login crosses in clear.
func TestSubmissionPlaintextWithheld(t *testing.T) {
	t.Parallel()
	for _, login := range []string{"XOAUTH2", "password"} {
		t.Run(login, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "plain"})
			acct := smtpAccount(srv, mailbox.Plain)
			if login == "password" {
				acct.AccessToken, acct.Password = "", pop3Password
			}
			acct.AllowPlaintext = false
			_, err := mailbox.OpenSubmission(context.Background(), acct, smtpOptions(srv))
			require.ErrorIs(t, err, mailbox.ErrPlaintext)
			require.False(t, mailbox.IsTemporary(err))
			require.Zero(t, srv.Conns(), "nothing is sent, not even EHLO")

			acct.AllowPlaintext = true
			s := openSubmission(t, acct, smtpOptions(srv))
			require.NoError(t, s.Close())
			require.Equal(t, 1, srv.Logins())
		})
	}
}

// TestSubmissionRefusals: a refused MAIL, RCPT or DATA is an SMTPError
// with the stage and the codes, and the session goes on: the next message
// is sent.
func TestSubmissionRefusals(t *testing.T) {
	t.Parallel()
	unknown := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
	tests := []struct {
		name      string
		opts      mailboxtest.SMTPOptions
		want      mailbox.SMTPError
		temporary bool
		says      string
	}{
		{
			name: "RCPT 550",
			opts: mailboxtest.SMTPOptions{OnRcpt: func(to string) *smtp.SMTPError {
				if to == "nobody@example.org" {
					return unknown
				}
				return nil
			}},
			want: mailbox.SMTPError{Stage: "rcpt", Code: 550, Enhanced: "5.1.1", Text: "User unknown"},
			says: "127.0.0.1 refused RCPT: 550 5.1.1 User unknown",
		},
		{
			name: "DATA 451",
			opts: mailboxtest.SMTPOptions{OnData: func(m mailboxtest.SMTPMessage) *smtp.SMTPError {
				if bytes.Contains(m.Data, []byte("Subject: first")) {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Mail server temporarily rejected message"}
				}
				return nil
			}},
			want:      mailbox.SMTPError{Stage: "data", Code: 451, Enhanced: "4.3.0", Text: "Mail server temporarily rejected message"},
			temporary: true,
			says:      "127.0.0.1 refused DATA: 451 4.3.0 Mail server temporarily rejected message",
		},
		{
			name: "DATA 554 SendAsDenied",
			opts: mailboxtest.SMTPOptions{OnData: func(m mailboxtest.SMTPMessage) *smtp.SMTPError {
				if bytes.Contains(m.Data, []byte("Subject: first")) {
					return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 0},
						Message: "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message"}
				}
				return nil
			}},
			want: mailbox.SMTPError{Stage: "data", Code: 554, Enhanced: "5.2.0",
				Text: "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message"},
		},
		{
			name: "MAIL 550 5.7.60",
			opts: mailboxtest.SMTPOptions{OnMail: func(from string) *smtp.SMTPError {
				if from == "other@example.com" {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "SMTP; Client does not have permissions to send as this sender"}
				}
				return nil
			}},
			want: mailbox.SMTPError{Stage: "mail", Code: 550, Enhanced: "5.7.60", Text: "SMTP; Client does not have permissions to send as this sender"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Security = "starttls"
			srv := startSMTP(t, tt.opts)
			var trace lineWriter
			opts := smtpOptions(srv)
			opts.DebugWriter = &trace
			s := openSubmission(t, smtpAccount(srv, mailbox.StartTLS), opts)
			from, to := user, []string{admin, "nobody@example.org"}
			if tt.want.Stage == "mail" {
				from = "other@example.com"
			}
			_, err := s.Send(context.Background(), from, to, notification("first"))
			var se *mailbox.SMTPError
			require.ErrorAs(t, err, &se)
			tt.want.Host = "127.0.0.1"
			require.Equal(t, tt.want, *se)
			require.Equal(t, tt.temporary, se.Temporary())
			require.Equal(t, tt.temporary, mailbox.IsTemporary(err), "%v", err)
			require.False(t, mailbox.IsAuth(err))
			if tt.says != "" {
				require.Equal(t, tt.says, se.Error())
				require.Contains(t, err.Error(), tt.says)
			}
			if tt.want.Stage != "mail" {
				require.Contains(t, trace.String(), "C: RSET\n", "the transaction is reset")
			}

			msg := notification("second")
			reply, err := s.Send(context.Background(), user, []string{admin}, msg)
			require.NoError(t, err, "the session carries on")
			require.NotEmpty(t, reply)
			got := srv.Messages()
			require.Len(t, got, 1)
			require.Equal(t, []string{admin}, got[0].To)
			require.Equal(t, string(msg), string(got[0].Data))
		})
	}
}

// TestSubmissionGreetingRefused: 554 (no service) and 421 (not now) at
// the greeting (RFC 5321 section 3.1).
func TestSubmissionGreetingRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		greeting  string
		want      mailbox.SMTPError
		temporary bool
	}{
		{"554 5.3.2 No SMTP service here", mailbox.SMTPError{Host: "127.0.0.1", Stage: "greeting", Code: 554, Enhanced: "5.3.2", Text: "No SMTP service here"}, false},
		{"421 4.3.2 Service not available, closing channel", mailbox.SMTPError{Host: "127.0.0.1", Stage: "greeting", Code: 421, Enhanced: "4.3.2", Text: "Service not available, closing channel"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.greeting[:3], func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "tls", Greeting: tt.greeting})
			_, err := mailbox.OpenSubmission(context.Background(), smtpAccount(srv, mailbox.TLS), smtpOptions(srv))
			var se *mailbox.SMTPError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.want, *se)
			require.Equal(t, tt.temporary, mailbox.IsTemporary(err))
			require.ErrorContains(t, err, "127.0.0.1 refused the session at its greeting: "+tt.greeting)
		})
	}
}

// bigMessage is larger than the socket buffers can hold, so that writing
// it blocks while the server does not read.
func bigMessage() []byte {
	line := strings.Repeat("x", 998) + "\r\n"
	return append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte(line), 16<<10)...)
}

// stallData makes a server that stops reading when DATA starts, until the
// test ends; started is closed then.
func stallData(t *testing.T) (opts mailboxtest.SMTPOptions, started <-chan struct{}) {
	release, begun := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	var once sync.Once
	return mailboxtest.SMTPOptions{Security: "starttls", DataStarted: func() {
		once.Do(func() { close(begun) })
		<-release
	}}, begun
}

// TestSubmissionContextCancelMidData: cancelling ctx while the message is
// on its way ends Send at once, and the session with it.
func TestSubmissionContextCancelMidData(t *testing.T) {
	t.Parallel()
	opts, started := stallData(t)
	srv := startSMTP(t, opts)
	s := openSubmission(t, smtpAccount(srv, mailbox.StartTLS), smtpOptions(srv))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err := s.Send(ctx, user, []string{admin}, bigMessage())
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 5*time.Second, "not the 2 minutes of the submission timeout")
	_, err = s.Send(context.Background(), user, []string{admin}, notification("after"))
	require.ErrorIs(t, err, context.Canceled, "the session ended with the context")
	require.NoError(t, s.Close())
}

// TestSubmissionStalledServer: a server that stops reading the message is
// caught by the command timeout, as a temporary failure.
func TestSubmissionStalledServer(t *testing.T) {
	t.Parallel()
	stall, _ := stallData(t)
	srv := startSMTP(t, stall)
	opts := smtpOptions(srv)
	s := openSubmission(t, smtpAccount(srv, mailbox.StartTLS), opts)
	opts.CommandTimeout = 300 * time.Millisecond // read when Send writes
	start := time.Now()
	_, err := s.Send(context.Background(), user, []string{admin}, bigMessage())
	var ne *mailbox.NetError
	require.ErrorAs(t, err, &ne)
	require.True(t, mailbox.IsTemporary(err))
	require.Less(t, time.Since(start), 5*time.Second)
}

// TestSubmissionTrace: the trace shows the conversation line by line, C:
// and S:, with the login hidden: the token, its XOAUTH2 string and the
// password never appear, but AUTH, the mechanism and the replies do.
func TestSubmissionTrace(t *testing.T) {
	t.Parallel()
	// A JWT-sized token: its base64 XOAUTH2 string is over 1.5 KB.
	jwt := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("ZXhhbXBsZS1jbGFpbXM", 60) + ".c2lnbmF0dXJl"
	tests := []struct {
		name, token, password string
		mechs                 []string
		want                  []string
	}{
		{name: "XOAUTH2", token: jwt, want: []string{"C: AUTH XOAUTH2\n", "S: 334 \n", "C: [redacted]\n", "S: 235 2.0.0 Authentication succeeded\n"}},
		{name: "refused XOAUTH2", token: jwt + "-revoked", want: []string{"C: AUTH XOAUTH2\n", "S: 334 " + base64.StdEncoding.EncodeToString(
			[]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`)) + "\n", "C: [redacted]\n", "S: 535 5.7.3 Authentication unsuccessful\n"}},
		{name: "PLAIN", password: pop3Password, want: []string{"C: AUTH PLAIN [redacted]\n", "S: 235 2.0.0 Authentication succeeded\n"}},
		{name: "LOGIN", password: pop3Password, mechs: []string{"LOGIN"},
			want: []string{"C: AUTH LOGIN\n", "S: 334 VXNlcm5hbWU6\n", "C: [redacted]\n", "S: 334 UGFzc3dvcmQ6\n", "C: [redacted]\n", "S: 235 2.0.0 Authentication succeeded\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "starttls", NoInitialResponse: true, Mechanisms: tt.mechs,
				CheckToken: func(u, tok string) bool { return tok == jwt }})
			var trace lineWriter
			opts := smtpOptions(srv)
			opts.DebugWriter = &trace
			acct := smtpAccount(srv, mailbox.StartTLS)
			acct.AccessToken, acct.Password = tt.token, tt.password
			s, err := mailbox.OpenSubmission(context.Background(), acct, opts)
			if err == nil {
				_, err = s.Send(context.Background(), user, []string{admin}, notification("traced"))
				require.NoError(t, err)
				require.NoError(t, s.Close())
			}
			got := trace.String()
			trace.requireLines(t)
			for _, want := range append(tt.want, "C: EHLO ", "S: 250-STARTTLS\n", "C: STARTTLS\n", "S: 220 2.0.0 Ready to start TLS\n") {
				require.Contains(t, got, want)
			}
			require.NotContains(t, got, "greeting already read", "go-smtp's stand-in greeting is not traced")
			if err == nil {
				require.Contains(t, got, "C: MAIL FROM:<"+user+">")
				require.Contains(t, got, "C: ..a line starting with a dot\n", "the message shows as sent")
				require.Contains(t, got, "S: 221 2.0.0 Bye\n")
			}
			secrets := []string{pop3Password, base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pop3Password))}
			if tt.token != "" {
				ir := base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, tt.token))
				secrets = append(secrets, tt.token[:16], tt.token[len(tt.token)-16:], ir[:16], ir[len(ir)/2:len(ir)/2+16])
			}
			for _, secret := range secrets {
				require.NotContains(t, got, secret)
			}
		})
	}
}

// lineWriter keeps each Write of a trace.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.writes, "")
}

// requireLines checks that each Write is one line that says who sent it.
func (w *lineWriter) requireLines(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotEmpty(t, w.writes)
	for _, line := range w.writes {
		require.True(t, strings.HasSuffix(line, "\n") && strings.Count(line, "\n") == 1, "write %q is not one line", line)
		require.True(t, strings.HasPrefix(line, "C: ") || strings.HasPrefix(line, "S: "), "line %q without C: or S:", line)
	}
}

// TestSubmissionBadAddress: an address that would break out of its
// command is refused before anything is sent.
func TestSubmissionBadAddress(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "starttls"})
	var trace lineWriter
	opts := smtpOptions(srv)
	opts.DebugWriter = &trace
	s := openSubmission(t, smtpAccount(srv, mailbox.StartTLS), opts)
	tests := []struct {
		name string
		from string
		to   []string
	}{
		{"CRLF in recipient", user, []string{admin + ">\r\nRCPT TO:<victim@example.com"}},
		{"LF in sender", user + "\nRSET", []string{admin}},
		{"header in sender", user + "\r\nBcc: victim@example.com", []string{admin}},
		{"space", user, []string{"admin @example.org"}},
		{"angle bracket", "<" + user + ">", []string{admin}},
		{"no recipients", user, nil},
		{"empty recipient", user, []string{""}},
		{"NUL", user, []string{"admin\x00@example.org"}},
		{"too long", user, []string{strings.Repeat("a", 300) + "@example.org"}},
	}
	before := trace.String()
	for _, tt := range tests {
		_, err := s.Send(context.Background(), tt.from, tt.to, notification("bad"))
		require.Error(t, err, tt.name)
		var se *mailbox.SMTPError
		require.NotErrorAs(t, err, &se, "%s: %v", tt.name, err)
	}
	require.Equal(t, before, trace.String(), "nothing was sent")
	_, err := s.Send(context.Background(), "", []string{admin}, notification("null-sender"))
	require.NoError(t, err, "the null reverse-path <> is allowed")
	require.Empty(t, srv.Messages()[0].From)
}

// TestSubmissionSMTPUTF8: a non-ASCII address is sent with SMTPUTF8 (RFC
// 6531) where the server offers it, and refused before MAIL otherwise,
// as the sender's or the recipient's fault.
func TestSubmissionSMTPUTF8(t *testing.T) {
	t.Parallel()
	const to = "jürgen@bücher.example"
	for _, offered := range []bool{true, false} {
		t.Run(fmt.Sprint(offered), func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "tls", SMTPUTF8: offered})
			s := openSubmission(t, smtpAccount(srv, mailbox.TLS), smtpOptions(srv))
			_, err := s.Send(context.Background(), user, []string{to}, notification("utf8"))
			if offered {
				require.NoError(t, err)
				got := srv.Messages()
				require.Len(t, got, 1)
				require.True(t, got[0].UTF8)
				require.Equal(t, []string{to}, got[0].To)
				return
			}
			var se *mailbox.SMTPError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "rcpt", se.Stage, "the recipient's fault: the next message may pass")
			require.Equal(t, 553, se.Code)
			require.Equal(t, "5.6.7", se.Enhanced)
			require.False(t, mailbox.IsTemporary(err))
			require.EqualError(t, err, "127.0.0.1: RCPT not sent: 553 5.6.7 the server does not offer SMTPUTF8 (RFC 6531), "+
				"which the non-ASCII recipient address needs; use its ASCII form")
			_, err = s.Send(context.Background(), "søren@example.com", []string{admin}, notification("utf8-sender"))
			require.ErrorAs(t, err, &se)
			require.Equal(t, "mail", se.Stage)
			require.Empty(t, srv.Messages())
			_, err = s.Send(context.Background(), user, []string{admin}, notification("ascii"))
			require.NoError(t, err)
		})
	}
}

// TestSubmissionConcurrentSends: Sends from several goroutines take turns
// on the one connection.
func TestSubmissionConcurrentSends(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, mailboxtest.SMTPOptions{Security: "tls"})
	s := openSubmission(t, smtpAccount(srv, mailbox.TLS), smtpOptions(srv))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := s.Send(context.Background(), user, []string{admin}, notification(fmt.Sprint("n", i)))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Len(t, srv.Messages(), 8)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "a second Close is harmless")
	_, err := s.Send(context.Background(), user, []string{admin}, notification("closed"))
	require.ErrorContains(t, err, "closed")
}

// TestOpenSubmissionProtocol: OpenSubmission is for smtp accounts with a
// known security only.
func TestOpenSubmissionProtocol(t *testing.T) {
	t.Parallel()
	_, err := mailbox.OpenSubmission(context.Background(), mailbox.Account{Protocol: "imap", Host: "127.0.0.1"}, nil)
	require.ErrorContains(t, err, `needs protocol smtp, not "imap"`)
	_, err = mailbox.OpenSubmission(context.Background(), mailbox.Account{Protocol: "smtp", Host: "127.0.0.1", Security: 9}, nil)
	require.ErrorContains(t, err, "unknown security security(9) for 127.0.0.1")
}
