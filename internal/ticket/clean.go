package ticket

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
)

// clean returns s as valid UTF-8 without NUL bytes, fit for a Postgres text
// column. Bytes that are not UTF-8 are read as windows-1252, and so are C1
// control characters (U+0080–U+009F): both come from the most common
// mislabel, windows-1252 sent as ISO-8859-1 or as nothing at all, so "caf\xe9"
// becomes "café" and a decoded "\u0093quoted\u0094" gets its curly quotes.
func clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0:
		case r == utf8.RuneError && size == 1:
			b.WriteRune(charmap.Windows1252.DecodeByte(s[i]))
		case r >= 0x80 && r <= 0x9f:
			b.WriteRune(charmap.Windows1252.DecodeByte(byte(r)))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isClean reports whether clean would return s unchanged.
func isClean(s string) bool {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return false
	}
	// A C1 control is encoded as 0xC2 followed by 0x80–0x9F.
	for rest := s; ; {
		i := strings.IndexByte(rest, 0xc2)
		if i < 0 || i+1 >= len(rest) {
			return true
		}
		if rest[i+1] <= 0x9f {
			return false
		}
		rest = rest[i+1:]
	}
}

// oneLine makes a header value a single line: CR, LF and TAB become spaces
// and the ends are trimmed.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// normalizeNewlines turns CRLF and lone CR into LF.
func normalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// lookupCharset finds the decoder for a MIME charset name. WHATWG names come
// first, so "iso-8859-1" and "us-ascii" mean windows-1252 and "gb2312" means
// GBK, as browsers and mail clients read them. It returns nil when the name
// is unknown.
func lookupCharset(name string) encoding.Encoding {
	name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"'`))
	if name == "" {
		return nil
	}
	if e, err := htmlindex.Get(name); err == nil {
		return e
	}
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return e
	}
	return nil
}

// decodeCharset converts s from charset to UTF-8. It returns s unchanged for
// UTF-8 (clean repairs stray bytes better than a decoder's U+FFFD) and when
// the charset is unknown or the conversion fails.
func decodeCharset(s, charset string) string {
	e := lookupCharset(charset)
	if e == nil || isUTF8(e) {
		return s
	}
	out, err := e.NewDecoder().String(s)
	if err != nil {
		return s
	}
	return out
}

// isUTF8 reports whether e is the UTF-8 encoding.
func isUTF8(e encoding.Encoding) bool {
	name, err := htmlindex.Name(e)
	return err == nil && name == "utf-8"
}

// rawToUTF8 decodes a header value that may carry unencoded 8-bit bytes,
// which RFC 5322 forbids but many mailers send. Valid UTF-8 is kept (RFC
// 6532); 7-bit ISO-2022-JP escape sequences are decoded; other bytes are
// read in hint, the charset of the message's text.
func rawToUTF8(s, hint string) string {
	if strings.Contains(s, "\x1b$B") || strings.Contains(s, "\x1b$@") {
		if out, err := japanese.ISO2022JP.NewDecoder().String(s); err == nil {
			return out
		}
	}
	if utf8.ValidString(s) {
		return s
	}
	return decodeCharset(s, hint)
}

// Clean makes s safe for a text column: valid UTF-8 (stray bytes read as
// windows-1252) without NUL bytes.
func Clean(s string) string { return clean(s) }
