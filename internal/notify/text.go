package notify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// maxTicketSubject bounds the customer's subject inside the subjects we
	// send: it comes from the requester and may be anything.
	maxTicketSubject = 200
	// maxName bounds display names and attachment names.
	maxName = 100
	// maxAddress is the longest address SMTP carries (RFC 5321 section
	// 4.5.3.1.3: a path of 256 octets including the angle brackets).
	maxAddress = 254
)

// cleanLine returns s as one line of valid UTF-8: CR, LF, tabs and other
// white space become one space, control characters and bidirectional
// overrides vanish, and the ends are trimmed. Header values and every line
// we compose from foreign text pass through it, so a decoded subject that
// holds "\r\nBcc: x" can never start a header field of its own.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case unicode.IsControl(r) || isBidiControl(r):
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isBidiControl reports the embedding, override and isolate characters
// that can make a subject display as something else than it says.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') ||
		r == '\u200E' || r == '\u200F' || r == '\u061C' // marks: LRM, RLM, ALM
}

// cleanText returns s as text with "\n" line ends and no control
// characters but tabs, for mail bodies.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || isBidiControl(r)) {
			return -1
		}
		return r
	}, s)
}

// cut returns s shortened to at most n runes, the last one "…" when
// anything was cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return strings.TrimRightFunc(s[:i], unicode.IsSpace) + "…"
}

// cleanSubject returns a customer-controlled subject fit to be put in the
// subjects we send: one clean line of at most n runes.
func cleanSubject(s string, n int) string {
	s = cut(cleanLine(s), n)
	if s == "" {
		return "(no subject)"
	}
	return s
}
