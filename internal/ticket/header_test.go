package ticket

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parseHeader parses a message made of the given header lines and a short
// body, with CRLF line endings.
func parseHeader(lines ...string) *Message {
	raw := strings.Join(lines, "\r\n") + "\r\n\r\nbody\r\n"
	return Parse([]byte(raw))
}

func TestParseHeaderFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		check func(t *testing.T, m *Message)
	}{
		{
			name:  "bare message-id gets brackets",
			lines: []string{"Message-ID: abc@example.com"},
			check: func(t *testing.T, m *Message) { require.Equal(t, "<abc@example.com>", m.MessageID) },
		},
		{
			name:  "message-id comment dropped",
			lines: []string{"Message-ID: <abc@example.com> (added by relay)"},
			check: func(t *testing.T, m *Message) { require.Equal(t, "<abc@example.com>", m.MessageID) },
		},
		{
			name:  "empty message-id is synthesised",
			lines: []string{"Message-ID: <>"},
			check: func(t *testing.T, m *Message) {
				require.True(t, strings.HasSuffix(m.MessageID, "@fetcher.invalid>"), "MessageID = %q", m.MessageID)
			},
		},
		{
			name:  "unparseable date",
			lines: []string{"Date: sometime last week"},
			check: func(t *testing.T, m *Message) {
				require.True(t, m.SentAt.IsZero(), "SentAt = %v, want zero", m.SentAt)
				require.Contains(t, m.ParseError, "date: cannot parse")
			},
		},
		{
			name:  "implausible year",
			lines: []string{"Date: Mon, 3 Jun 0024 10:00:00 +0000"},
			check: func(t *testing.T, m *Message) {
				require.True(t, m.SentAt.IsZero(), "SentAt = %v, want zero", m.SentAt)
				require.Contains(t, m.ParseError, "date: cannot parse")
			},
		},
		{
			name:  "ctime date",
			lines: []string{"Date: Mon Jun  3 10:00:00 2024"},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC), m.SentAt)
			},
		},
		{
			name:  "date converted to utc",
			lines: []string{"Date: Mon, 3 Jun 2024 10:00:00 -0500 (EST)"},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, time.Date(2024, 6, 3, 15, 0, 0, 0, time.UTC), m.SentAt)
				require.Equal(t, time.UTC, m.SentAt.Location())
			},
		},
		{
			name:  "encoded word inside quoted name",
			lines: []string{`From: "=?utf-8?Q?M=C3=BCller,_Hans?=" <hans@example.com>`},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "Müller, Hans", m.FromName)
				require.Equal(t, "hans@example.com", m.FromEmail)
			},
		},
		{
			name:  "address without domain",
			lines: []string{"From: Mail Delivery System <MAILER-DAEMON>"},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "MAILER-DAEMON", m.FromEmail)
				require.Equal(t, "Mail Delivery System", m.FromName)
			},
		},
		{
			name:  "list without commas",
			lines: []string{"To: a@example.com b@example.com"},
			check: func(t *testing.T, m *Message) { require.Equal(t, "a@example.com, b@example.com", m.To) },
		},
		{
			name:  "repeated to and undisclosed recipients",
			lines: []string{"To: a@example.com", "To: Bob <b@example.com>", "Cc: undisclosed-recipients:;"},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "a@example.com, Bob <b@example.com>", m.To)
				require.Empty(t, m.Cc)
			},
		},
		{
			name:  "names with commas are quoted",
			lines: []string{"To: =?utf-8?Q?Doe=2C_Jane?= <jane@example.com>"},
			check: func(t *testing.T, m *Message) { require.Equal(t, `"Doe, Jane" <jane@example.com>`, m.To) },
		},
		{
			name:  "unknown charset passes bytes through",
			lines: []string{"Subject: =?x-made-up?Q?Hello_World?="},
			check: func(t *testing.T, m *Message) { require.Equal(t, "Hello World", m.Subject) },
		},
		{
			name:  "broken encoded word kept, good one decoded",
			lines: []string{"Subject: =?utf-8?B?@@@?= and =?utf-8?Q?caf=C3=A9?="},
			check: func(t *testing.T, m *Message) { require.Equal(t, "=?utf-8?B?@@@?= and café", m.Subject) },
		},
		{
			name:  "nul and bad utf-8 inside an encoded word",
			lines: []string{"Subject: =?utf-8?Q?a=00b_caf=E9_=0D=0Ax?="},
			// net/mime turns bad UTF-8 in a utf-8 word into U+FFFD itself.
			check: func(t *testing.T, m *Message) { require.Equal(t, "ab caf\uFFFD   x", m.Subject) },
		},
		{
			name:  "folded in-reply-to and references unfolded",
			lines: []string{"In-Reply-To:", " <a@example.com>", "References: <b@example.com>", "\t<a@example.com>"},
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "<a@example.com>", m.InReplyTo)
				require.Equal(t, "<b@example.com> <a@example.com>", m.References)
			},
		},
		{
			name:  "filename directories stripped",
			lines: []string{"Content-Type: application/pdf", `Content-Disposition: attachment; filename="C:\\Users\\x\\doc.pdf"`},
			check: func(t *testing.T, m *Message) {
				require.Len(t, m.Attachments, 1)
				require.Equal(t, "doc.pdf", m.Attachments[0].Filename)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, parseHeader(tt.lines...))
		})
	}
}

func TestParseBroken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		wantError bool
	}{
		{"empty", "", true},
		{"nul bytes only", "\x00\x00\x00", true},
		{"header without body", "From: a@example.com\r\nSubject: hi", false},
		{"body without header", "\r\njust text", false},
		{"binary garbage", "\xff\xfe\x00\x01\x80\x81 : \r\n\r\n\xc3", true},
		{"header line starting with colon", ": oops\r\nFrom: a@example.com\r\n\r\nbody", true},
		{"multipart without boundary", "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n", true},
		{"nested multipart cut short", "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi", true},
		{"unknown transfer encoding", "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := Parse([]byte(tt.raw))
			require.NotNil(t, m)
			require.Equal(t, int64(len(tt.raw)), m.Size)
			require.NotEmpty(t, m.MessageID)
			require.Equal(t, tt.wantError, m.ParseError != "", "ParseError = %q", m.ParseError)
			requireClean(t, m)
		})
	}
}

func TestParseSyntheticIDDeterministic(t *testing.T) {
	t.Parallel()
	raw := readFixture(t, "no-message-id")
	first := Parse(raw).MessageID
	require.Regexp(t, `^<[0-9a-f]{32}@fetcher\.invalid>$`, first)
	for range 3 {
		require.Equal(t, first, Parse(raw).MessageID, "synthetic id changed between runs")
	}
	other := append([]byte("X-Extra: 1\r\n"), raw...)
	require.NotEqual(t, first, Parse(other).MessageID, "different bytes got the same synthetic id")
}
