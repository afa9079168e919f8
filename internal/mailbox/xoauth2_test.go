package mailbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestXOAUTH2Client(t *testing.T) {
	t.Parallel()
	c := NewXOAUTH2Client("support@contoso.com", "eyJ0eXAi.token")
	mech, ir, err := c.Start()
	require.NoError(t, err)
	require.Equal(t, "XOAUTH2", mech)
	require.Equal(t, "user=support@contoso.com\x01auth=Bearer eyJ0eXAi.token\x01\x01", string(ir))

	// The error challenge is answered with an empty response and kept.
	challenge := []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}`)
	resp, err := c.Next(challenge)
	require.NoError(t, err)
	require.NotNil(t, resp)
	require.Empty(t, resp)
	require.Equal(t, "status 401, wanted scope https://outlook.office.com/IMAP.AccessAsUser.All",
		describeChallenge(c.(*xoauth2Client).challenge))
}

func TestDescribeChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{``, ``},
		{`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, `status 400, wanted scope https://mail.google.com/`},
		{`{"status":"401"}`, `status 401`},
		{`not json`, `server challenge "not json"`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, describeChallenge([]byte(tt.in)), "describeChallenge(%q)", tt.in)
	}
}

func TestRedactLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"T1 AUTHENTICATE XOAUTH2 dXNlcj1hQGIBYXV0aD1CZWFyZXIgeHl6AQE=", "T1 AUTHENTICATE XOAUTH2 [redacted]"},
		{"T1 AUTHENTICATE XOAUTH2", "T1 AUTHENTICATE XOAUTH2"},
		{"T2 LOGIN support@example.com hunter2", "T2 LOGIN [redacted]"},
		{"dXNlcj1hQGIBYXV0aD1CZWFyZXIgeHl6AQE=", "[redacted]"},
		{"=", "[redacted]"},
		{"AUTH XOAUTH2", "AUTH XOAUTH2"},
		{"USER support@example.com", "USER [redacted]"},
		{"PASS hunter2", "PASS [redacted]"},
		{"* 3 EXISTS", "* 3 EXISTS"},
		{"T3 UID FETCH 1:* (UID RFC822.SIZE)", "T3 UID FETCH 1:* (UID RFC822.SIZE)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(redactLine([]byte(tt.in))), "redactLine(%q)", tt.in)
	}
}

func TestTokenExpired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&NetError{Op: "fetch", Err: errors.New("unexpected EOF"), Bye: "Session invalidated - AccessTokenExpired"}, true},
		{&NetError{Op: "fetch", Err: errors.New("unexpected EOF"), Bye: "Autologout; idle for too long"}, false},
		{&NetError{Op: "fetch", Err: errors.New("unexpected EOF")}, false},
		{errors.New("AccessTokenExpired"), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, TokenExpired(tt.err), "TokenExpired(%v)", tt.err)
	}
}

func TestRedactorHidesLiteralPassword(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	r := &redactor{out: &out}
	_, _ = r.Write([]byte("T1 LOGIN support@example.com {15}\r\n"))
	_, _ = r.Write([]byte("Grüße-geheim-42\r\n"))
	_, _ = r.Write([]byte("T1 OK LOGIN completed\r\n"))
	require.NotContains(t, out.String(), "geheim")
	require.Contains(t, out.String(), "T1 OK LOGIN completed")
}
