package notify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// foldAt is the line length RFC 5322 section 2.1.1 asks for (78
	// characters without CRLF); maxLine the one it requires (998).
	foldAt, maxLine = 78, 998
	// maxSubject bounds the Subject field as a whole; the ticket subject
	// inside it is already cut to maxTicketSubject.
	maxSubject = 400
	// maxWordBytes is the UTF-8 bytes one B-encoded word carries: 42 bytes
	// are 56 base64 characters, 68 with "=?utf-8?b?" and "?=", within the
	// 75 of RFC 2047 section 2 and short enough to follow "Subject: " on
	// the first line.
	maxWordBytes = 42
)

// Outgoing is one notification ready to be built.
type Outgoing struct {
	Kind          string
	TicketID      int64
	From          mail.Address
	To            string // one address
	Subject, Body string
	MessageID     string // "<...>", from NewMessageID
	InReplyTo     string
	References    string
	Date          time.Time // zero means now
}

// Build returns the message as RFC 5322 bytes with CRLF line ends: a
// text/plain UTF-8 body in quoted-printable, and the header fields that
// keep auto-responders and other fetchers from answering it.
//
// Every header value is cleaned of line breaks and control characters, so
// nothing in a subject or name can add a header field. Build fails for a
// From or To that is not exactly one address, an unknown Kind and a
// missing or malformed MessageID; malformed ids in InReplyTo and
// References are left out.
func Build(o Outgoing) ([]byte, error) {
	h, err := header(o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, f := range h {
		line := fold(f[0], f[1])
		if longest(line) > maxLine {
			return nil, fmt.Errorf("notify: header field %s is longer than %d characters", f[0], maxLine)
		}
		buf.WriteString(line)
	}
	buf.WriteString("\r\n")
	if err := writeBody(&buf, o.Body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// header returns the header fields of o, in order, as name and value.
func header(o Outgoing) ([][2]string, error) {
	auto, err := autoSubmitted(o.Kind)
	if err != nil {
		return nil, err
	}
	from, err := addressField(o.From.Name, o.From.Address)
	if err != nil {
		return nil, fmt.Errorf("notify: From: %w", err)
	}
	to, err := addressField("", o.To)
	if err != nil {
		return nil, fmt.Errorf("notify: To: %w", err)
	}
	id := validID(o.MessageID)
	if id == "" {
		return nil, fmt.Errorf("notify: Message-ID %q is not a msg-id", cleanLine(o.MessageID))
	}
	date := o.Date
	if date.IsZero() {
		date = time.Now()
	}
	h := [][2]string{
		{"Date", date.Format(time.RFC1123Z)},
		{"From", from},
		{"To", to},
		{"Subject", encodeSubject(cleanSubject(o.Subject, maxSubject))},
		{"Message-ID", id},
	}
	if ids := msgIDs(o.InReplyTo); len(ids) > 0 {
		h = append(h, [2]string{"In-Reply-To", strings.Join(ids, " ")})
	}
	if ids := trimRefs(msgIDs(o.References)); len(ids) > 0 {
		h = append(h, [2]string{"References", strings.Join(ids, " ")})
	}
	return append(h, loopFields(auto, o)...), nil
}

// loopFields are the MIME fields and the ones that stop answers:
//   - Auto-Submitted (RFC 3834 section 5): "auto-replied" for the
//     acknowledgement, a response to the requester's message (section
//     5.2), "auto-generated" for admin notifications, which answer nobody;
//     either way RFC 3834 responders do not answer;
//   - X-Auto-Response-Suppress: All, which keeps Exchange and Outlook from
//     sending out-of-office and other automatic replies (MS-OXCMAIL
//     section 2.2.3.2.20);
//   - Precedence: bulk, the only sign older vacation programs honour;
//   - X-Fetcher-Notification, by which any fetcher knows its kind's mail
//     (ticket.Message.FromFetcher) and never answers it.
func loopFields(auto string, o Outgoing) [][2]string {
	return [][2]string{
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", auto},
		{"X-Auto-Response-Suppress", "All"},
		{"Precedence", "bulk"},
		{"X-Fetcher-Notification", fmt.Sprintf("%s; ticket=%d", o.Kind, o.TicketID)},
	}
}

func autoSubmitted(kind string) (string, error) {
	switch kind {
	case KindAck:
		return "auto-replied", nil
	case KindNewTicket, KindReply:
		return "auto-generated", nil
	}
	return "", fmt.Errorf("notify: unknown kind %q", kind)
}

// addressField returns a From or To value: the one address in addr,
// checked, with the display name (name, else the one in addr) cleaned;
// mail.Address.String encodes a non-ASCII name (RFC 2047) and quotes one
// with special characters.
func addressField(name, addr string) (string, error) {
	a, err := parseAddress(strings.TrimSpace(addr))
	if err != nil {
		return "", err
	}
	name = cut(cleanLine(name), maxName)
	if name == "" {
		name = cut(cleanLine(a.Name), maxName)
	}
	// An ASCII name is written as it is, so one that looks like an
	// encoded word would be decoded by the reader's mailer (RFC 2047).
	name = strings.ReplaceAll(name, "=?", "= ?")
	return (&mail.Address{Name: name, Address: a.Address}).String(), nil
}

// encodeSubject returns s as an unstructured field value: printable ASCII
// words stay as they are, so "[#42]" and most of a subject stay readable,
// and each run of other words becomes RFC 2047 encoded words, Q for
// Latin-script text, which stays readable, B for the rest, which stays
// shorter. A word that
// looks like an encoded word ("=?") is encoded too, or the reader's mailer
// would decode what the customer wrote. The space between an encoded word
// and a plain one is kept by decoders, the one between two encoded words
// dropped (RFC 2047 section 6.2), so runs are encoded as a whole.
func encodeSubject(s string) string {
	words := strings.Split(s, " ")
	out := make([]string, 0, len(words))
	for i := 0; i < len(words); {
		j := i
		for j < len(words) && needsEncoding(words[j]) {
			j++
		}
		if j == i {
			out = append(out, words[i])
			i++
			continue
		}
		out = append(out, encodeRun(strings.Join(words[i:j], " ")))
		i = j
	}
	return strings.Join(out, " ")
}

func needsEncoding(w string) bool {
	return strings.Contains(w, "=?") || strings.ContainsFunc(w, func(r rune) bool { return r >= utf8.RuneSelf })
}

func encodeRun(s string) string {
	nonASCII := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			nonASCII++
		}
	}
	// Latin-script text has at most about half its bytes outside ASCII;
	// Cyrillic, Greek or CJK nearly all, and B is a third shorter there.
	if nonASCII > 0 && nonASCII*3 <= len(s)*2 {
		return mime.QEncoding.Encode("utf-8", s)
	}
	return bWords(s)
}

// bWords returns s as B-encoded words of at most maxWordBytes bytes each,
// split between runes and separated by spaces, where the header may be
// folded; readers drop the space between encoded words (RFC 2047 section
// 6.2). mime.BEncoding would leave ASCII text as it is.
func bWords(s string) string {
	var words []string
	for s != "" {
		n := min(len(s), maxWordBytes)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// fold returns "Name: value\r\n", folded before spaces so that lines stay
// within foldAt characters where the words allow (RFC 5322 section 2.2.3).
// Values are cleaned, so they hold single spaces only, and a fold does not
// change them: unfolding removes just the CRLF.
func fold(name, value string) string {
	var b strings.Builder
	b.WriteString(name + ":")
	lineLen := b.Len()
	for _, w := range strings.Split(value, " ") {
		// Even the first word moves to a line of its own when it does not
		// fit after the name: the space after the colon is folding white
		// space too (RFC 5322 sections 2.2.3 and 3.2.2).
		if lineLen+1+len(w) > foldAt {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteString(" " + w)
		lineLen += 1 + len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// longest returns the length of the longest line of a folded field.
func longest(field string) int {
	n := 0
	for _, l := range strings.Split(field, "\r\n") {
		n = max(n, len(l))
	}
	return n
}

// writeBody writes the body in quoted-printable: lines of at most 76
// characters, CRLF line ends (the writer turns "\n" into CRLF), any bytes
// safe through 7-bit servers (RFC 2045 section 6.7).
func writeBody(w io.Writer, body string) error {
	body = cleanText(body)
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	qp := quotedprintable.NewWriter(w)
	_, err := io.WriteString(qp, body)
	if err == nil {
		err = qp.Close()
	}
	if err != nil {
		return fmt.Errorf("notify: body: %w", err)
	}
	return nil
}
