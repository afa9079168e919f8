package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestReadReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		code    int
		lines   []string
		wantErr string
	}{
		{in: "220 mx.example.com ESMTP\r\n", code: 220, lines: []string{"mx.example.com ESMTP"}},
		{in: "250-mx.example.com\r\n250-STARTTLS\r\n250 AUTH XOAUTH2\r\n", code: 250, lines: []string{"mx.example.com", "STARTTLS", "AUTH XOAUTH2"}},
		{in: "334\r\n", code: 334, lines: []string{""}},
		{in: "250-a\r\n251 b\r\n", wantErr: "malformed"},
		{in: "hello\r\n", wantErr: "malformed"},
		{in: "2500 x\r\n", wantErr: "malformed"},
		{in: "199 x\r\n", wantErr: "malformed"},
		{in: "+12 x\r\n", wantErr: "malformed"},
		{in: strings.Repeat("250-x\r\n", maxReplyLines+1), wantErr: "longer than"},
		{in: "250-x\r\n", wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		r, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, "readReply(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "readReply(%q)", tt.in)
		require.Equal(t, smtpReply{code: tt.code, lines: tt.lines}, r, "readReply(%q)", tt.in)
	}
}

func TestReplyText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r              smtpReply
		enhanced, text string
	}{
		{smtpReply{550, []string{"5.1.1 User unknown"}}, "5.1.1", "User unknown"},
		{smtpReply{550, []string{"4.1.1 User unknown"}}, "", "4.1.1 User unknown"},
		{smtpReply{554, []string{"5.7.1 first", "5.7.1 second"}}, "5.7.1", "first second"},
		{smtpReply{421, []string{"mx closing"}}, "", "mx closing"},
		{smtpReply{220, nil}, "", ""},
	}
	for _, tt := range tests {
		enhanced, text := tt.r.text()
		require.Equal(t, tt.enhanced, enhanced, "%v", tt.r)
		require.Equal(t, tt.text, text, "%v", tt.r)
	}
	require.True(t, smtpReply{250, []string{"mx", "starttls", "AUTH PLAIN"}}.offers("STARTTLS"))
	require.False(t, smtpReply{250, []string{"STARTTLS is not here"}}.offers("STARTTLS"), "the first line is the greeting")
}

func TestBoundText(t *testing.T) {
	t.Parallel()
	s := &Submission{hider: newSecretHider(Account{Password: "hunter2-secret"})}
	long := s.boundText(strings.Repeat("ü", 400) + "\xff")
	require.LessOrEqual(t, len(long), maxReplyText)
	require.True(t, utf8.ValidString(long))
	require.True(t, strings.HasSuffix(long, "…"))
	require.Equal(t, "a b c\ufffd d [redacted]", s.boundText("a\r\nb\tc\xff d hunter2-secret\r\n"))
}

func TestValidDomain(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"localhost", "mail.example.com", "a1-b2", "ci-runner-7f9c"} {
		require.True(t, validDomain(ok), ok)
	}
	for _, bad := range []string{"", "-a", "a-", "a..b", "a b", "a\r\nMAIL", "host_name", strings.Repeat("a", 64)} {
		require.False(t, validDomain(bad), bad)
	}
	require.True(t, validDomain(ehloName()))
}

// TestSMTPXOAUTH2Client: no initial response; the response goes after the
// first 334; the error challenge is kept and answered empty; a third
// challenge aborts.
func TestSMTPXOAUTH2Client(t *testing.T) {
	t.Parallel()
	c := &smtpXOAUTH2{username: "support@contoso.com", token: "tok"}
	mech, ir, err := c.Start()
	require.NoError(t, err)
	require.Equal(t, "XOAUTH2", mech)
	require.Nil(t, ir, "go-smtp sends no initial response for nil")
	resp, err := c.Next([]byte{})
	require.NoError(t, err)
	require.Equal(t, XOAUTH2Response("support@contoso.com", "tok"), resp)
	resp, err = c.Next([]byte(`{"status":"401"}`))
	require.NoError(t, err)
	require.NotNil(t, resp)
	require.Empty(t, resp)
	require.JSONEq(t, `{"status":"401"}`, string(c.challenge))
	_, err = c.Next(nil)
	require.Error(t, err)
}

// TestSMTPTraceState: AUTH hides client lines until a reply other than
// 334; the message between 354 and "." is text, not commands.
func TestSMTPTraceState(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tr := &smtpTrace{out: &out, secrets: newSecretHider(Account{Password: "pw-0123456789"})}
	for _, step := range []struct{ c, s string }{
		{c: "AUTH PLAIN AHVzZXIAcHctMDEyMzQ1Njc4OQ==\r\n", s: "535 5.7.8 no\r\n"},
		{c: "AUTH LOGIN\r\n", s: "334 VXNlcm5hbWU6\r\n"},
		{c: "dXNlcg==\r\n", s: "334 UGFzc3dvcmQ6\r\n"},
		{c: "pw-0123456789\r\n", s: "235 2.0.0 ok\r\n"},
		{c: "DATA\r\n", s: "354 go ahead\r\n"},
		{c: "AUTH is what this line talks about\r\n"},
		{c: "..\r\n.\r\n", s: "250 2.0.0 queued\r\n"},
		{c: "QUIT\r\n", s: "221 bye\r\n"},
	} {
		tr.sent([]byte(step.c))
		tr.received([]byte(step.s))
	}
	require.Equal(t, strings.Join([]string{
		"C: AUTH PLAIN [redacted]", "S: 535 5.7.8 no",
		"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6",
		"C: [redacted]", "S: 334 UGFzc3dvcmQ6",
		"C: [redacted]", "S: 235 2.0.0 ok",
		"C: DATA", "S: 354 go ahead",
		"C: AUTH is what this line talks about",
		"C: ..", "C: .", "S: 250 2.0.0 queued",
		"C: QUIT", "S: 221 bye",
	}, "\n")+"\n", out.String())
}

// smtpScript serves a scripted SMTP server in clear: answer gets each
// command line and returns the reply. It returns the account to reach it
// and the lines it saw.
func smtpScript(t *testing.T, greeting string, answer func(line string) string) (Account, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	host, port := scriptServer(t, greeting, func(line string) string {
		mu.Lock()
		seen = append(seen, line)
		mu.Unlock()
		if strings.EqualFold(line, "QUIT") {
			return "221 bye\r\n\x00"
		}
		return answer(line)
	})
	acct := Account{Protocol: "smtp", Host: host, Port: port, Security: Plain, AllowPlaintext: true,
		Username: "support@example.com", AccessToken: "token-0123456789abcdef-secret"}
	return acct, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

var smtpTestOpts = &Options{DialTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second}

// TestSubmissionSTARTTLSRefused: a 454 to STARTTLS ends the session before
// any login; it is temporary (RFC 3207 section 4).
func TestSubmissionSTARTTLSRefused(t *testing.T) {
	t.Parallel()
	acct, seen := smtpScript(t, "220 mx ESMTP\r\n", func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO "):
			return "250-mx\r\n250-STARTTLS\r\n250 AUTH XOAUTH2\r\n"
		case line == "STARTTLS":
			return "454 4.7.0 TLS not available due to temporary reason\r\n"
		}
		return "500 5.5.1 unexpected\r\n"
	})
	acct.Security = StartTLS
	_, err := OpenSubmission(context.Background(), acct, smtpTestOpts)
	var se *SMTPError
	require.ErrorAs(t, err, &se)
	require.Equal(t, SMTPError{Host: "127.0.0.1", Stage: "starttls", Code: 454, Enhanced: "4.7.0", Text: "TLS not available due to temporary reason"}, *se)
	require.ErrorContains(t, err, "refused STARTTLS: 454 4.7.0")
	require.ErrorContains(t, err, "no login was sent in clear")
	require.True(t, IsTemporary(err))
	for _, line := range seen() {
		require.NotContains(t, line, "AUTH")
	}
}

// TestSubmissionEchoedSecret: a server that quotes the XOAUTH2 response
// in its refusal does not get it into the error.
func TestSubmissionEchoedSecret(t *testing.T) {
	t.Parallel()
	acct, _ := smtpScript(t, "220 mx ESMTP\r\n", func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO "):
			return "250-mx\r\n250 AUTH XOAUTH2\r\n"
		case line == "AUTH XOAUTH2":
			return "334 \r\n"
		}
		return "535 5.7.8 bad credentials " + line + "\r\n"
	})
	_, err := OpenSubmission(context.Background(), acct, smtpTestOpts)
	var ae *AuthError
	require.ErrorAs(t, err, &ae)
	var se *SMTPError
	require.ErrorAs(t, err, &se)
	ir := base64.StdEncoding.EncodeToString(XOAUTH2Response(acct.Username, acct.AccessToken))
	for _, text := range []string{err.Error(), ae.ServerText, se.Text} {
		require.Contains(t, text, "bad credentials [redacted]")
		require.NotContains(t, text, ir[:16])
		require.NotContains(t, text, ir[len(ir)-16:])
	}
}

// TestSubmissionEndlessReply: a reply that does not end fails the read
// instead of filling memory.
func TestSubmissionEndlessReply(t *testing.T) {
	t.Parallel()
	line := "250-" + strings.Repeat("x", 996) + "\r\n"
	acct, _ := smtpScript(t, "220 mx ESMTP\r\n", func(string) string {
		return strings.Repeat(line, 2*maxReplyBytes/len(line)) + "250 end\r\n"
	})
	_, err := OpenSubmission(context.Background(), acct, smtpTestOpts)
	require.ErrorIs(t, err, errReplyTooLong)
	var ne *NetError
	require.ErrorAs(t, err, &ne)
}

// TestSubmissionBadGreeting: a server that does not speak SMTP.
func TestSubmissionBadGreeting(t *testing.T) {
	t.Parallel()
	acct, _ := smtpScript(t, "+OK POP3 ready\r\n", func(string) string { return "" })
	_, err := OpenSubmission(context.Background(), acct, smtpTestOpts)
	require.ErrorIs(t, err, errMalformedReply)
	var se *SMTPError
	require.NotErrorAs(t, err, &se)
}
