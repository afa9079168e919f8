package notify

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return tm
}

func newOutgoing(t *testing.T) Outgoing {
	return Outgoing{
		Kind:       KindAck,
		TicketID:   42,
		From:       mail.Address{Name: "Example Support", Address: "support@example.org"},
		To:         "jane@example.com",
		Subject:    "[#42] Printer broken",
		Body:       "Hello,\n\nwe got it.\n",
		MessageID:  "<fetcher.42.0123456789abcdef@example.org>",
		InReplyTo:  "<m1@mail.example.com>",
		References: "<r1@example.com> <m1@mail.example.com>",
		Date:       mustTime(t, "2024-05-25T10:14:15Z"),
	}
}

// fieldNames are the header fields Build writes, each exactly once.
var fieldNames = []string{
	"Date", "From", "To", "Subject", "Message-Id", "In-Reply-To", "References",
	"Mime-Version", "Content-Type", "Content-Transfer-Encoding",
	"Auto-Submitted", "X-Auto-Response-Suppress", "Precedence", "X-Fetcher-Notification",
}

func build(t *testing.T, o Outgoing) (*mail.Message, []byte) {
	t.Helper()
	raw, err := Build(o)
	require.NoError(t, err)
	checkLines(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	return msg, raw
}

// checkLines asserts CRLF line ends and RFC 5322 line lengths.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	require.True(t, bytes.HasSuffix(raw, []byte("\r\n")))
	lines := strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n")
	for _, l := range lines {
		require.NotContains(t, l, "\r", "bare CR")
		require.NotContains(t, l, "\n", "bare LF")
		require.LessOrEqual(t, len(l), maxLine)
	}
}

func headerLines(raw []byte) []string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return strings.Split(string(head), "\r\n")
}

func TestBuild(t *testing.T) {
	t.Parallel()
	msg, raw := build(t, newOutgoing(t))
	keys := make([]string, 0, len(msg.Header))
	for k, v := range msg.Header {
		require.Len(t, v, 1, k)
		keys = append(keys, k)
	}
	require.ElementsMatch(t, fieldNames, keys)
	want := map[string]string{
		"Date":                      "Sat, 25 May 2024 10:14:15 +0000",
		"From":                      `"Example Support" <support@example.org>`,
		"To":                        "<jane@example.com>",
		"Subject":                   "[#42] Printer broken",
		"Message-Id":                "<fetcher.42.0123456789abcdef@example.org>",
		"In-Reply-To":               "<m1@mail.example.com>",
		"References":                "<r1@example.com> <m1@mail.example.com>",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-replied",
		"X-Auto-Response-Suppress":  "All",
		"Precedence":                "bulk",
		"X-Fetcher-Notification":    "acknowledgement; ticket=42",
	}
	for k, v := range want {
		require.Equal(t, v, msg.Header.Get(k), k)
	}
	again, err := Build(newOutgoing(t))
	require.NoError(t, err)
	require.Equal(t, raw, again, "deterministic")
}

func TestBuildKinds(t *testing.T) {
	t.Parallel()
	for kind, auto := range map[string]string{KindAck: "auto-replied", KindNewTicket: "auto-generated", KindReply: "auto-generated"} {
		o := newOutgoing(t)
		o.Kind, o.TicketID, o.InReplyTo = kind, 7, ""
		msg, _ := build(t, o)
		require.Equal(t, auto, msg.Header.Get("Auto-Submitted"), kind)
		require.Equal(t, kind+"; ticket=7", msg.Header.Get("X-Fetcher-Notification"))
		require.Empty(t, msg.Header["In-Reply-To"])
	}
}

// TestBuildInjection: nothing in a subject, name or id can add a header field.
func TestBuildInjection(t *testing.T) {
	t.Parallel()
	o := newOutgoing(t)
	o.Subject = "Hello\r\nBcc: victim@example.net\r\n\r\nbody"
	o.From.Name = "Evil\r\nBcc: victim@example.net"
	o.InReplyTo = "<a@b.example>\r\nBcc: victim@example.net"
	o.References = "<c@d.example>\nBcc: victim@example.net <bad id@x> <e@f.example>\r\n"
	o.To = "Jane\t<jane@example.com>"
	msg, raw := build(t, o)
	keys := make([]string, 0, len(msg.Header))
	for k, v := range msg.Header {
		require.Len(t, v, 1, k)
		keys = append(keys, k)
	}
	require.ElementsMatch(t, fieldNames, keys)
	require.Empty(t, msg.Header["Bcc"])
	for _, l := range headerLines(raw) {
		require.False(t, strings.HasPrefix(strings.ToLower(l), "bcc"), l)
	}
	require.Equal(t, "Hello Bcc: victim@example.net body", msg.Header.Get("Subject"))
	require.Equal(t, "<a@b.example>", msg.Header.Get("In-Reply-To"))
	require.Equal(t, "<c@d.example> <e@f.example>", msg.Header.Get("References"))
	from, err := msg.Header.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Evil Bcc: victim@example.net", Address: "support@example.org"}}, from)
	to, err := msg.Header.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Jane", Address: "jane@example.com"}}, to)
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]func(o *Outgoing){
		"To with CRLF":         func(o *Outgoing) { o.To = "jane@example.com\r\nBcc: victim@example.net" },
		"To with LF":           func(o *Outgoing) { o.To = "jane@example.com\nBcc: victim@example.net" },
		"two To addresses":     func(o *Outgoing) { o.To = "jane@example.com, joe@example.com" },
		"empty To":             func(o *Outgoing) { o.To = "" },
		"To without domain":    func(o *Outgoing) { o.To = "jane" },
		"From with CRLF":       func(o *Outgoing) { o.From.Address = "support@example.org\r\nBcc: v@x.example" },
		"From no address":      func(o *Outgoing) { o.From.Address = "support" },
		"From two addresses":   func(o *Outgoing) { o.From.Address = "a@example.org, b@example.org" },
		"unknown kind":         func(o *Outgoing) { o.Kind = "spam" },
		"no message id":        func(o *Outgoing) { o.MessageID = "" },
		"message id no angles": func(o *Outgoing) { o.MessageID = "x@example.org" },
		"message id with CRLF": func(o *Outgoing) { o.MessageID = "<x@example.org>\r\nBcc: v@x.example" },
		"message id space":     func(o *Outgoing) { o.MessageID = "<x @example.org>" },
	}
	for name, change := range tests {
		o := newOutgoing(t)
		change(&o)
		raw, err := Build(o)
		require.Error(t, err, name)
		require.Nil(t, raw, name)
	}
}

// TestBuildFolding: long subjects fold at whitespace within 78 characters
// and decode back to the cleaned subject.
func TestBuildFolding(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"cyrillic":          strings.Repeat("Принтер не печатает ", 25),
		"mostly ascii":      strings.Repeat("Grüße aus Köln, the printer is broken again ", 12),
		"emoji and CJK":     strings.Repeat("打印机坏了🖨️", 60),
		"ascii":             strings.Repeat("printer broken ", 35),
		"encoded-word look": "=?utf-8?q?not_encoded?= says the customer",
		"control chars":     strings.Repeat("a\r\nb\x00c\tü ", 80),
	}
	for name, subject := range tests {
		o := newOutgoing(t)
		o.Subject = subject
		msg, raw := build(t, o)
		for _, l := range headerLines(raw) {
			require.LessOrEqual(t, len(l), foldAt, "%s: %q", name, l)
		}
		var dec mime.WordDecoder
		got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		require.NoError(t, err, name)
		require.Equal(t, cleanSubject(subject, maxSubject), got, name)
	}
}

// TestBuildLongWord: a word longer than a line cannot fold; it stays whole
// within the 998 characters RFC 5322 allows.
func TestBuildLongWord(t *testing.T) {
	t.Parallel()
	o := newOutgoing(t)
	o.Subject = "x " + strings.Repeat("y", 390)
	msg, _ := build(t, o)
	require.Equal(t, cleanSubject(o.Subject, maxSubject), msg.Header.Get("Subject"))
}

func TestBuildBody(t *testing.T) {
	t.Parallel()
	body := "Grüße,\r\ntrailing spaces   \nequals = sign =3D\rtab\there\x00\x1b\n" +
		strings.Repeat("long line with ümlauts ", 30) + "\n.\nFrom me\nno final newline"
	o := newOutgoing(t)
	o.Body = body
	msg, raw := build(t, o)
	_, encoded, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, l := range strings.Split(strings.TrimSuffix(string(encoded), "\r\n"), "\r\n") {
		require.LessOrEqual(t, len(l), 76, "RFC 2045 section 6.7 line length")
	}
	got, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	require.NoError(t, err)
	want := strings.ReplaceAll(cleanText(body)+"\n", "\n", "\r\n")
	require.Equal(t, want, string(got))
	require.Contains(t, string(got), "trailing spaces   \r\n")
}

// TestBuildIsFetcherMail: what Build makes, the ticket package recognises
// as fetcher mail, and Plan never answers it.
func TestBuildIsFetcherMail(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindAck, KindNewTicket, KindReply} {
		o := newOutgoing(t)
		o.Kind = kind
		o.To = "support@example.org" // it comes back to the mailbox
		raw, err := Build(o)
		require.NoError(t, err)
		m := ticket.Parse(raw)
		require.Empty(t, m.ParseError)
		require.True(t, m.FromFetcher, kind)
		require.True(t, m.NoAutoResponse, kind)
		require.Equal(t, kind == KindAck, m.IsAutoReply, kind)
		n, ok := m.TicketTag()
		require.True(t, ok)
		require.Equal(t, int64(42), n)
		require.Equal(t, "Hello,\n\nwe got it.\n", m.BodyText)
		for _, created := range []bool{true, false} {
			ev := newEvent()
			ev.Message, ev.Created = m, created
			require.Empty(t, Plan(allOn(), testSender, ev), kind)
		}
	}
}

func TestBuildNonASCIIName(t *testing.T) {
	t.Parallel()
	o := newOutgoing(t)
	o.From.Name = "Service Client Société Générale — Support Technique Très Long Nom " + strings.Repeat("é", 40)
	msg, raw := build(t, o)
	for _, l := range headerLines(raw) {
		require.LessOrEqual(t, len(l), foldAt, l)
	}
	from, err := msg.Header.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, cut(cleanLine(o.From.Name), maxName), from[0].Name)
}

func TestNewMessageID(t *testing.T) {
	t.Parallel()
	id := NewMessageID(42, "Support@Example.ORG")
	require.Regexp(t, `^<fetcher\.42\.[0-9a-f]{16}@example\.org>$`, id)
	require.NotEqual(t, id, NewMessageID(42, "support@example.org"))
	require.Equal(t, id, validID(id))
	for _, addr := range []string{"", "support", "a@", "a@bad domain", "a@exämple.de", "a@x..y", "a@x.org>\r\nBcc: v@x"} {
		require.True(t, strings.HasSuffix(NewMessageID(1, addr), "@fetcher.invalid>"), addr)
	}
}

func TestMsgIDs(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"<a@x>", "<b@y>"}, msgIDs(" <a@x> (comment) <b@y>,<a@x> <> <c d@z>"))
	require.Nil(t, msgIDs(""))
	long := "<" + strings.Repeat("a", maxIDLen) + "@x>"
	require.Empty(t, msgIDs(long))
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = string(rune('a'+i%26)) + strings.Repeat("x", i)
	}
	trimmed := trimRefs(ids)
	require.Len(t, trimmed, maxRefs)
	require.Equal(t, ids[0], trimmed[0])
	require.Equal(t, ids[len(ids)-9:], trimmed[1:])
	require.True(t, slices.Equal(ids[:3], trimRefs(ids[:3])))
}

// FuzzBuild: whatever the subject, names and body, Build either fails or
// writes a message with exactly our header fields.
func FuzzBuild(f *testing.F) {
	f.Add("Hello\r\nBcc: x@y", "Evil\nName", "<a@b>\r\nX: y", "body\r\n.\r\n", "jane@example.com")
	f.Add(strings.Repeat("ü ", 300), "", "", "", "Jane <jane@example.com>")
	f.Add("=?utf-8?b?QmNjOiB4?=", "\"quoted\" (comment)", "<x> <y>", "\x00\x1b", "a@b")
	f.Fuzz(func(t *testing.T, subject, name, refs, body, to string) {
		o := Outgoing{Kind: KindReply, TicketID: 1, From: mail.Address{Name: name, Address: "s@example.org"},
			To: to, Subject: subject, Body: body, MessageID: "<x@example.org>", References: refs, InReplyTo: refs,
			Date: time.Unix(0, 0)}
		raw, err := Build(o)
		if err != nil {
			return
		}
		checkLines(t, raw)
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		require.NoError(t, err)
		for k, v := range msg.Header {
			require.Len(t, v, 1, k)
			require.Contains(t, fieldNames, k)
		}
	})
}
