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

// TestIMAPTrace feeds imapTrace the two directions of a session as the
// conn sees them: "C" bytes written by the client, "S" bytes read from the
// server, in the pieces and order given.
func TestIMAPTrace(t *testing.T) {
	t.Parallel()
	const password = "pässwörd-Secret-1234"
	acct := Account{Username: fuzzUser, AccessToken: fuzzToken, Password: password}
	type step struct{ dir, data string }
	tests := []struct {
		name string
		in   []step
		want string
	}{
		{name: "synchronizing literal after the server's +",
			in: []step{{"C", "T1 LOGIN \"u\" {22}\r\n"}, {"S", "+ Ready\r\n"}, {"C", password + "\r\n"},
				{"S", "T1 OK LOGIN completed\r\n"}, {"C", "T2 SELECT INBOX\r\n"}},
			want: "C: T1 LOGIN [redacted]\nS: + Ready\nC: [redacted]\nS: T1 OK LOGIN completed\nC: T2 SELECT INBOX\n"},
		{name: "non-synchronizing literal in the same write",
			in:   []step{{"C", "T1 LOGIN u {22+}\r\n" + password + "\r\n"}, {"S", "T1 OK done\r\n"}},
			want: "C: T1 LOGIN [redacted]\nC: [redacted]\nS: T1 OK done\n"},
		{name: "partial lines in both directions do not merge",
			in: []step{{"C", "T1 LOGIN u {22}\r\n"}, {"S", "+ Rea"}, {"C", "pässw"}, {"S", "dy\r\n"},
				{"C", "örd-Secret-1234\r\n"}, {"S", "T1 OK"}, {"S", " done\r\n"}},
			want: "C: T1 LOGIN [redacted]\nS: + Ready\nC: [redacted]\nS: T1 OK done\n"},
		{name: "a reply to another tag does not end the hiding",
			in: []step{{"C", "T2 LOGIN u {5}\r\n"}, {"S", "T1 OK old\r\n+ go\r\n"}, {"C", "abcde\r\n"},
				{"S", "T2 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"}},
			want: "C: T2 LOGIN [redacted]\nS: T1 OK old\nS: + go\nC: [redacted]\nS: T2 NO [AUTHENTICATIONFAILED] Invalid credentials\n"},
		{name: "XOAUTH2 with an error challenge and the empty response",
			in: []step{{"C", "T3 AUTHENTICATE XOAUTH2 " + fuzzIR + "\r\n"}, {"S", "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"}, {"C", "\r\n"},
				{"S", "T3 NO [AUTHENTICATIONFAILED] bad token\r\n"}, {"C", "T4 LOGOUT\r\n"}},
			want: "C: T3 AUTHENTICATE XOAUTH2 [redacted]\nS: + eyJzdGF0dXMiOiI0MDEifQ==\nC: [redacted]\nS: T3 NO [AUTHENTICATIONFAILED] bad token\nC: T4 LOGOUT\n"},
		{name: "XOAUTH2 without SASL-IR",
			in:   []step{{"C", "T1 AUTHENTICATE XOAUTH2\r\n"}, {"S", "+ \r\n"}, {"C", fuzzIR + "\r\n"}, {"S", "T1 OK\r\n"}},
			want: "C: T1 AUTHENTICATE XOAUTH2\nS: + \nC: [redacted]\nS: T1 OK\n"},
		{name: "a server echoing the response or the token",
			in: []step{{"C", "T1 AUTHENTICATE XOAUTH2 " + fuzzIR + "\r\n"},
				{"S", "T1 BAD Unknown command: " + fuzzIR + "\r\n* BYE token " + fuzzToken + " or " + password + " refused\r\n"}},
			want: "C: T1 AUTHENTICATE XOAUTH2 [redacted]\nS: T1 BAD Unknown command: [redacted]\nS: * BYE token [redacted] or [redacted] refused\n"},
		{name: "ordinary commands and responses pass",
			in:   []step{{"C", "T5 UID FETCH 1:* (UID RFC822.SIZE)\r\n"}, {"S", "* 1 FETCH (UID 7 RFC822.SIZE 60)\r\nT5 OK Fetch completed\r\n"}},
			want: "C: T5 UID FETCH 1:* (UID RFC822.SIZE)\nS: * 1 FETCH (UID 7 RFC822.SIZE 60)\nS: T5 OK Fetch completed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out lineRecorder
			tr := newIMAPTrace(&Options{DebugWriter: &out}, acct)
			for _, x := range tt.in {
				if x.dir == "C" {
					tr.sent([]byte(x.data))
				} else {
					tr.received([]byte(x.data))
				}
			}
			require.Equal(t, tt.want, strings.Join(out.writes, ""))
			for _, w := range out.writes {
				require.Equal(t, 1, strings.Count(w, "\n"), "one line per Write: %q", w)
			}
		})
	}
}

// lineRecorder keeps each Write apart.
type lineRecorder struct{ writes []string }

func (r *lineRecorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestSecretHider(t *testing.T) {
	t.Parallel()
	h := newSecretHider(Account{Username: fuzzUser, AccessToken: fuzzToken, Password: "hunter2"})
	tests := []struct {
		in, want string
	}{
		{"-ERR Unknown command: " + fuzzIR, "-ERR Unknown command: [redacted]"},
		{"token " + fuzzToken[:20] + "… cut", "token [redacted]… cut"},
		{"a short piece " + fuzzToken[:15], "a short piece " + fuzzToken[:15]},
		{"PASS hunter2 hunter2", "PASS [redacted] [redacted]"},
		{"* 3 EXISTS", "* 3 EXISTS"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(h.hide([]byte(tt.in))), "hide(%q)", tt.in)
	}
	// A password under 4 bytes would hide ordinary words.
	require.Equal(t, "PASS abc", string(newSecretHider(Account{Password: "abc"}).hide([]byte("PASS abc"))))
}

func TestRedactorHidesEchoedSecrets(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	r := redactingWriter(&Options{DebugWriter: &out}, Account{Username: fuzzUser, AccessToken: fuzzToken})
	_, _ = r.Write([]byte("-ERR Unknown command: " + fuzzIR + "\r\n-ERR token " + fuzzToken + " expired\r\n"))
	require.Equal(t, "-ERR Unknown command: [redacted]\n-ERR token [redacted] expired\n", out.String())
}
